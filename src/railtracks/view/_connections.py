"""The viewer's connections: a bounded number, and none holds a thread while its client is slow.

``http.server`` gives each connection a thread for its whole life, so slow
or idle clients hold threads. Here the thread running ``serve_forever``
accepts connections and reads each request (head and body) without
blocking; a request goes to one of a fixed few worker threads only once it
has fully arrived, and a kept-alive connection comes back between requests.
A connection must deliver its request within ``timeout`` seconds of starting
to wait (plus one second per MiB of announced body), or it is closed: a
client sending its head a byte at a time costs a socket, never a thread.
When ``max_connections`` are open, the one waiting longest is closed to
admit a new one; if none is waiting (all are being answered), the new one is.
"""

from __future__ import annotations

import contextlib
import queue
import re
import selectors
import socket
import socketserver
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final

MAX_HEAD: Final = 64 * 1024
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH: Final = re.compile(rb"\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?\n", re.I)
_EXPECT: Final = re.compile(rb"\nexpect[ \t]*:", re.I)
_BYTES_PER_SECOND: Final = 1024 * 1024  # the slowest body upload still waited for


class Connection:
    """One client connection and the bytes received on it not yet read by a handler."""

    __slots__ = ("address", "body_end", "buffer", "deadline", "over_budget", "reserved", "sock")

    def __init__(self, sock: socket.socket, address: Any, timeout: float) -> None:
        self.sock = sock
        self.address = address
        self.buffer = bytearray()
        self.deadline = time.monotonic() + timeout
        self.body_end = -1  # where this request ends in ``buffer``, once its head is known
        self.reserved = 0  # bytes of the server's body budget held for this request
        self.over_budget = False  # its body would not fit the budget: answered 429, unread

    def complete(self, max_body: int, reserve: Callable[[Connection, int], bool]) -> bool:
        """Whether the request is ready for a handler (or is known to be refused)."""
        buffer = self.buffer
        if self.body_end < 0:
            end = _HEAD_END.search(buffer, 0, MAX_HEAD + 4)
            if end is None:
                return len(buffer) > MAX_HEAD  # an over-long head is answered (and refused) now
            head = bytes(buffer[: end.end()])
            length = _CONTENT_LENGTH.search(head)
            size = int(length.group(1)) if length else 0
            if size > max_body or _EXPECT.search(head):
                return True  # refused unread, or the client waits for a 100 Continue
            if size and not reserve(self, size):
                self.over_budget = True
                return True
            self.body_end = end.end() + size
            self.deadline += size / _BYTES_PER_SECOND
        return len(buffer) >= self.body_end

    def wanted(self) -> int:
        """How many bytes to receive next: the rest of the body, or a piece of the head."""
        return min(1 << 20, self.body_end - len(self.buffer)) if self.body_end >= 0 else 1 << 16


class SocketReader:
    """``rfile`` for a handler: the bytes already received, then the socket (with a deadline)."""

    def __init__(self, connection: Connection, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline

    def readline(self, limit: int = -1) -> bytes:
        buffer = self.connection.buffer
        end = buffer.find(b"\n")
        size = len(buffer) if end < 0 else end + 1
        if limit >= 0:
            size = min(size, limit)
        line = bytes(buffer[:size])
        del buffer[:size]
        return line

    def read(self, size: int = -1) -> bytes:
        buffer = self.connection.buffer
        sock = self.connection.sock
        while size >= 0 and len(buffer) < size:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request body not received in time")
            previous = sock.gettimeout()
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(min(size - len(buffer), 1 << 20))
            finally:
                sock.settimeout(previous)
            if not chunk:
                break
            buffer += chunk
        taken = bytes(buffer if size < 0 else buffer[:size])
        del buffer[: len(taken)]
        return taken


class SocketWriter:
    """``wfile`` for a handler: each write is sent whole (the socket's timeout bounds it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> int:
        self.sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        return


class ConnectionServer(socketserver.TCPServer):
    """A TCP server whose handlers run on ``workers`` threads, only for requests that arrived."""

    request_queue_size = 128
    allow_reuse_address = True
    max_body = 0  # bodies announced over it are not read (the handler refuses them)
    max_pending_bytes = 0  # request bodies held at once, received or being handled

    def __init__(
        self,
        address: tuple[str, int],
        handler: Any,
        *,
        timeout: float,
        max_connections: int,
        workers: int,
    ) -> None:
        self.request_timeout = timeout
        self.max_connections = max_connections
        self._waiting: OrderedDict[socket.socket, Connection] = OrderedDict()
        self._returned: deque[Connection] = deque()
        self._ready: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._open = 0  # connections accepted and not yet closed
        self._pending = 0  # bytes of request bodies reserved
        self._count_lock = threading.Lock()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._workers: list[threading.Thread] = []
        super().__init__(address, handler)  # binds and listens (closes itself if it cannot)
        self._workers += [
            threading.Thread(target=self._work, name=f"railtracks-view-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._workers:
            thread.start()

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def pending_bytes(self) -> int:
        return self._pending

    # -- the accepting thread ------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stop.clear()
        self._stopped.clear()
        self.socket.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_read, selectors.EVENT_READ)
                while not self._stop.is_set():
                    for key, _ in selector.select(poll_interval):
                        if key.fileobj is self.socket:
                            self._accept(selector)
                        elif key.fileobj is self._wake_read:
                            self._take_returned(selector)
                        else:
                            self._receive(selector, self._waiting[key.fileobj])  # type: ignore[index]
                    self._expire(selector)
        finally:
            for connection in list(self._waiting.values()):
                self._close(connection)
            self._waiting.clear()
            self._stopped.set()

    def shutdown(self) -> None:
        self._stop.set()
        self._wake()
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            self._ready.put(None)
        self._wake_read.close()
        self._wake_write.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        while True:
            try:
                sock, address = self.get_request()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of descriptors, or the client gave up: try again on the next event
            if self._open >= self.max_connections:
                if not self._waiting:
                    sock.close()  # every open connection is being answered
                    continue
                oldest = next(iter(self._waiting.values()))
                selector.unregister(oldest.sock)
                del self._waiting[oldest.sock]
                self._close(oldest)
            with self._count_lock:
                self._open += 1
            # small responses go out at once, not after the client's delayed ACK (Nagle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self._wait(selector, Connection(sock, address, self.request_timeout))

    def _wait(self, selector: selectors.BaseSelector, connection: Connection) -> None:
        if connection.complete(self.max_body, self._reserve):
            self._ready.put(connection)
            return
        self._waiting[connection.sock] = connection
        selector.register(connection.sock, selectors.EVENT_READ)

    def _receive(self, selector: selectors.BaseSelector, connection: Connection) -> None:
        try:
            chunk = connection.sock.recv(connection.wanted())
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if chunk:
            connection.buffer += chunk
            if not connection.complete(self.max_body, self._reserve):
                return
        selector.unregister(connection.sock)
        del self._waiting[connection.sock]
        if chunk:
            self._ready.put(connection)
        else:
            self._close(connection)

    def _take_returned(self, selector: selectors.BaseSelector) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self._returned:
            connection = self._returned.popleft()
            connection.deadline = time.monotonic() + self.request_timeout
            connection.body_end = -1
            connection.over_budget = False
            self._wait(selector, connection)

    def _expire(self, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        late = [c for c in self._waiting.values() if c.deadline <= now]
        for connection in late:
            selector.unregister(connection.sock)
            del self._waiting[connection.sock]
            self._close(connection)

    def _wake(self) -> None:
        # already closed, or the pipe is full (then a wake-up is pending anyway)
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    def _close(self, connection: Connection) -> None:
        self.release(connection)
        try:
            connection.sock.close()
        finally:
            with self._count_lock:
                self._open -= 1

    # -- worker threads ----------------------------------------------------------

    def _work(self) -> None:
        while (connection := self._ready.get()) is not None:
            keep = False
            try:
                connection.sock.settimeout(
                    self.request_timeout
                )  # for sending: a client that never reads
                make: Any = self.RequestHandlerClass
                handler = make(connection, connection.address, self)
                keep = not handler.close_connection and not self._stop.is_set()
            except Exception:
                self.handle_error(connection.sock, connection.address)
            self.release(connection)
            if keep:
                connection.sock.setblocking(False)
                self._returned.append(connection)
                self._wake()
            else:
                self._close(connection)

    def _reserve(self, connection: Connection, size: int) -> bool:
        with self._count_lock:
            if self._pending + size > self.max_pending_bytes:
                return False
            self._pending += size
            connection.reserved += size
            return True

    def release(self, connection: Connection) -> None:
        """Give back the body budget a connection holds."""
        with self._count_lock:
            self._pending -= connection.reserved
            connection.reserved = 0
