"""The one OTLP receiver of railtracks' tests and benchmarks, on 127.0.0.1.

Private: not part of ``railtracks.testing``'s public API, and never imported by
it (this module imports grpc). It listens for OTLP/HTTP (protobuf, gzip or
deflate bodies) and, when asked, OTLP/gRPC at once, counts the trace spans it
accepts by (trace id, span id) (``distinct``; ``total`` counts duplicates too)
and, when asked, records every request (path, headers, body).

Two ways to run it, with the same handle (:class:`Receiver`):

* ``otlp_receiver()``: in this process (threads), recording every request;
* ``otlp_receiver_process()``: in its own spawned process, so the receiver
  costs the measured process nothing (benchmarks, and the fault tests whose
  exporter runs in the test process).

The server side, its faults and what it answers, is ``_otlp_server``.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._otlp_server import (
    GRPC_MAX_RECEIVE,
    GRPC_TRACES_PATH,
    START_S,
    TRACES_PATH,
    OtlpServer,
    Received,
    Stats,
)
from ._procs import LOOPBACK, STALL_S, TOTAL_S, free_port, wait_for_progress

__all__ = ["Received", "Receiver", "Stats", "otlp_receiver", "otlp_receiver_process"]


class Receiver:
    """The test side, the same for both ways of running: endpoints, faults, counts."""

    def __init__(
        self, http_port: int, grpc_port: int | None, ask: Callable[[str, Any], Any]
    ) -> None:
        self.http_endpoint = f"http://{LOOPBACK}:{http_port}"
        self._grpc_endpoint = None if grpc_port is None else f"http://{LOOPBACK}:{grpc_port}"
        self._ask = ask
        self._lock = threading.Lock()

    @property
    def grpc_endpoint(self) -> str:
        if self._grpc_endpoint is None:
            raise RuntimeError("this receiver was started without gRPC (grpc=True)")
        return self._grpc_endpoint

    def endpoint(self, protocol: str = "http/protobuf") -> str:
        """The base URL an exporter of ``protocol`` is given (OTLP/HTTP appends /v1/traces)."""
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint

    def _command(self, name: str, argument: Any = None) -> Any:
        with self._lock:
            return self._ask(name, argument)

    def set(self, kind: str, **options: Any) -> None:
        self._command("mode", {"kind": kind, **options})

    def stats(self) -> Stats:
        return Stats(*self._command("stats"))

    def ids(self) -> list[tuple[bytes, bytes]]:
        return list(self._command("ids"))

    def received(self) -> list[Received]:
        """Every request recorded so far (``record=True``), in arrival order."""
        return list(self._command("received"))

    def posts(self, path: str) -> list[Received]:
        return [post for post in self.received() if post.path == path]

    def spans(self) -> list[tuple[str, Any]]:
        """``(scope name, span)`` of every recorded trace request, OTLP/HTTP and gRPC."""
        return [
            span
            for post in self.received()
            if post.path in (TRACES_PATH, GRPC_TRACES_PATH)
            for span in post.spans()
        ]

    def reset(self) -> None:
        """Back to ``ok``, every count and recorded request forgotten."""
        self.set("ok")
        self._command("reset")

    def wait_for(self, distinct: int, *, stall: float = STALL_S, total: float = TOTAL_S) -> int:
        """Wait until ``distinct`` spans arrived, as long as more keep arriving; the count."""
        return wait_for_progress(
            lambda: self.stats().distinct, distinct, stall=stall, total=total, poll_max=0.2
        )


@contextmanager
def otlp_receiver(
    *,
    grpc: bool = False,
    record: bool = True,
    http_port: int = 0,
    grpc_port: int = 0,
    grpc_max_receive: int = GRPC_MAX_RECEIVE,
) -> Iterator[Receiver]:
    """The receiver in this process, on free ports unless given; stopped afterwards."""
    server = OtlpServer(http_port, grpc_port if grpc else None, record, grpc_max_receive)
    server.listen()
    try:
        yield Receiver(server.http_port, server.grpc_port, server.command)
    finally:
        server.close()


def _serve(
    http_port: int, grpc_port: int | None, record: bool, grpc_max_receive: int, control: Any
) -> None:
    """The own process's main: serve, answer the handle's commands until killed."""
    server = OtlpServer(http_port, grpc_port, record, grpc_max_receive)
    server.listen()
    control.send((server.http_port, server.grpc_port))
    while True:
        name, argument = control.recv()
        control.send(server.command(name, argument))


@contextmanager
def otlp_receiver_process(
    *,
    grpc: bool = True,
    record: bool = False,
    http_port: int = 0,
    grpc_port: int = 0,
    grpc_max_receive: int = GRPC_MAX_RECEIVE,
) -> Iterator[Receiver]:
    """The receiver in its own spawned process; stopped afterwards.

    Ports are fixed before the process starts (free ones unless given), so a
    restart listens on the same ones again.
    """
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    ports = (http_port or free_port(), (grpc_port or free_port()) if grpc else None)
    process = context.Process(
        target=_serve, args=(*ports, record, grpc_max_receive, theirs), daemon=True
    )
    process.start()
    try:
        if not ours.poll(START_S):
            raise RuntimeError(f"the OTLP receiver did not start within {START_S:.0f} s")
        http, grpc_bound = ours.recv()

        def ask(name: str, argument: Any) -> Any:
            ours.send((name, argument))
            return ours.recv()

        yield Receiver(http, grpc_bound, ask)
    finally:
        process.terminate()
        process.join(5)


def main(argv: list[str] | None = None) -> int:
    """``python -m railtracks.testing._receiver``: serve until Ctrl-C, then print the counts."""
    import argparse  # noqa: PLC0415  # only when run as a program

    parser = argparse.ArgumentParser(prog="python -m railtracks.testing._receiver")
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--no-grpc", action="store_true")
    args = parser.parse_args(argv)
    grpc_port = None if args.no_grpc else args.grpc_port
    server = OtlpServer(args.http_port, grpc_port, record=False)
    server.listen()
    print(f"OTLP/HTTP  http://{LOOPBACK}:{server.http_port}", flush=True)
    if server.grpc_port is not None:
        print(f"OTLP/gRPC  http://{LOOPBACK}:{server.grpc_port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print(server.command("stats", None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
