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

Faults, set at any time with ``receiver.set(kind, **options)``:

* ``ok`` answers at once (``metrics_status=`` answers metrics requests with
  that HTTP status); ``slow`` waits ``delay`` seconds per trace request;
* ``refuse`` answers HTTP ``status`` (503 or 429, with ``retry_after`` as
  ``Retry-After``) or the gRPC equivalent (UNAVAILABLE / RESOURCE_EXHAUSTED),
  for ``seconds`` (then ok), or for good;
* ``hang`` never answers (for at most ``for`` seconds; counts nothing);
* ``late`` accepts and counts a trace request at once, then answers only after
  ``delay`` seconds (longer than the client's OTLP timeout: the client cannot
  know the request was processed); a new mode cuts the wait short;
* ``too_large`` refuses a trace request whose (decompressed) body is over
  ``max_bytes``: HTTP 413, gRPC RESOURCE_EXHAUSTED "received message larger
  than max", as collectors do; smaller ones are accepted;
* ``bad_request`` refuses every trace request for good: HTTP 400, gRPC
  INVALID_ARGUMENT (an HTTP body that is not a trace request gets 400 in
  every mode, as from a collector);
* ``restart``: after ``after`` accepted requests, closes both listening ports
  for ``down`` seconds, then listens again on the same ports (setting a new
  mode waits for a restart under way to finish);
* a closed port is a port nothing listens on (``_procs.free_port()``).

The gRPC server receives messages up to ``grpc_max_receive`` bytes: by
default grpcio's own 4 MiB, what a collector left at its defaults accepts; a
bigger one is refused with RESOURCE_EXHAUSTED before the servicer sees it.
"""

from __future__ import annotations

import gzip
import multiprocessing
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._procs import LOOPBACK, STALL_S, TOTAL_S, free_port, wait_for_progress

__all__ = ["Received", "Receiver", "Stats", "otlp_receiver", "otlp_receiver_process"]

TRACES_PATH = "/v1/traces"
GRPC_TRACES_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_METRICS_PATH = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

# A collector restarting answers what it already accepted: stopping gRPC at once
# would cancel the request that triggered the restart after counting it, so the
# client sends it again and it is counted twice (a crash, which OTLP leaves at
# least once).
_GRACE_S = 1.0
_START_S = 60.0  # a spawned interpreter importing grpc on a loaded machine
_HANG_S = 60.0
GRPC_MAX_RECEIVE = 4 * 1024 * 1024  # grpcio's default, and a collector's


@dataclass(frozen=True)
class Received:
    """One request: its path (gRPC: the method's), headers (lowercase names) and
    decompressed body."""

    path: str
    headers: dict[str, str]
    body: bytes

    def spans(self) -> list[tuple[str, Any]]:
        """``(scope name, span)`` of a traces request."""
        request = ExportTraceServiceRequest.FromString(self.body)
        return [
            (scope_spans.scope.name, span)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


class Stats(NamedTuple):
    distinct: int  # spans accepted, each (trace id, span id) once
    total: int  # spans accepted, duplicates included
    requests: int  # trace requests accepted
    refused: int  # trace requests refused


class _Server:
    """Both listeners, the counts and the current fault; threads serve the requests."""

    def __init__(
        self,
        http_port: int,
        grpc_port: int | None,
        record: bool,
        grpc_max_receive: int = GRPC_MAX_RECEIVE,
    ) -> None:
        self.http_port, self.grpc_port, self.record = http_port, grpc_port, record
        self.grpc_max_receive = grpc_max_receive
        self.lock = threading.Lock()
        self.ids: set[tuple[bytes, bytes]] = set()
        self.total = self.requests = self.refused = 0
        self.received: list[Received] = []
        self.mode: dict[str, Any] = {"kind": "ok"}
        self.mode_since = time.monotonic()
        self.release = threading.Event()
        self.listening = threading.Event()  # clear while a restart has the ports closed
        self._http: ThreadingHTTPServer | None = None
        self._grpc: Any = None

    # -- what every request goes through ---------------------------------------------------

    def fault(self) -> dict[str, Any]:
        with self.lock:
            mode, since = dict(self.mode), self.mode_since
        seconds = mode.get("seconds")
        if seconds is not None and time.monotonic() - since > seconds:
            return {"kind": "ok", "metrics_status": mode.get("metrics_status", 200)}
        return mode

    def verdict(self, mode: dict[str, Any], size: int) -> str | None:
        """None to accept; "hang", "refuse", "too_large" or "bad_request" after any delay
        the fault asks for (``size``: the request's decompressed bytes)."""
        kind = mode["kind"]
        if kind == "slow":
            time.sleep(float(mode["delay"]))
        elif kind == "hang":
            self.release.wait(float(mode.get("for", _HANG_S)))
            return "hang"
        elif kind in ("refuse", "bad_request") or (
            kind == "too_large" and size > int(mode["max_bytes"])
        ):
            self.count_refused()
            return "too_large" if kind == "too_large" else kind
        return None

    def count_refused(self) -> None:
        with self.lock:
            self.refused += 1

    def answer_late(self, mode: dict[str, Any]) -> None:
        """In ``late`` mode, after the request was accepted: wait before answering."""
        if mode["kind"] == "late":
            self.release.wait(float(mode["delay"]))

    def note(self, received: Received) -> None:
        if self.record:
            with self.lock:
                self.received.append(received)

    def accept(self, request: ExportTraceServiceRequest) -> None:
        ids = [
            (span.trace_id, span.span_id)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self.lock:
            self.ids.update(ids)
            self.total += len(ids)
            self.requests += 1
            requests = self.requests
            mode = self.mode
            restart = mode["kind"] == "restart" and requests == mode["after"]
            if restart:
                self.mode = {"kind": "ok"}
                self.listening.clear()  # now, so that a new mode set next waits for it
        if restart:
            threading.Thread(target=self._restart, args=(float(mode["down"]),), daemon=True).start()

    # -- the listeners ---------------------------------------------------------------------

    def listen(self) -> None:
        self._http = ThreadingHTTPServer((LOOPBACK, self.http_port), _http_handler(self))
        self._http.daemon_threads = True
        self.http_port = int(self._http.server_address[1])
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        if self.grpc_port is not None:
            self._grpc = _grpc_server(self)
            self.grpc_port = int(self._grpc.add_insecure_port(f"{LOOPBACK}:{self.grpc_port}"))
            self._grpc.start()
        self.listening.set()

    def close(self) -> None:
        self.listening.clear()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._grpc is not None:
            self._grpc.stop(_GRACE_S).wait()
            self._grpc = None

    def _restart(self, down: float) -> None:
        self.close()
        time.sleep(down)
        self.listen()

    # -- the handle's commands -------------------------------------------------------------

    def command(self, name: str, argument: Any) -> Any:
        if name == "mode":
            # a new mode means "from now on": a restart under way finishes first
            self.listening.wait(_START_S)
            self.release.set()
            self.release = threading.Event()
            with self.lock:
                self.mode, self.mode_since = dict(argument), time.monotonic()
            return None
        with self.lock:
            if name == "stats":
                return Stats(len(self.ids), self.total, self.requests, self.refused)
            if name == "ids":
                return sorted(self.ids)
            if name == "received":
                return list(self.received)
            if name == "reset":
                self.ids.clear()
                self.total = self.requests = self.refused = 0
                self.received.clear()
                return None
        raise ValueError(f"unknown receiver command {name!r}")


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


def _http_handler(server: _Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = _decompress(raw, self.headers.get("Content-Encoding", ""))
            headers = {name.lower(): value for name, value in self.headers.items()}
            mode = server.fault()
            if self.path != TRACES_PATH:
                server.note(Received(self.path, headers, body))
                self._reply(int(mode.get("metrics_status", 200)))
                return
            verdict = server.verdict(mode, len(body))
            if verdict == "hang":
                self.close_connection = True
                return
            if verdict is not None:
                status = {"too_large": 413, "bad_request": 400}.get(verdict)
                self._reply(status or int(mode.get("status", 503)), mode.get("retry_after"))
                return
            try:
                request = ExportTraceServiceRequest.FromString(body)
            except DecodeError:
                server.count_refused()
                self._reply(400)
                return
            server.accept(request)
            server.note(Received(self.path, headers, body))
            server.answer_late(mode)
            self._reply(200)

        def _reply(self, status: int, retry_after: Any = None) -> None:
            # an empty Export*ServiceResponse serializes to no bytes at all
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def _grpc_server(server: _Server) -> Any:
    import grpc  # type: ignore[import-untyped]  # noqa: PLC0415  # only when gRPC is asked for
    from opentelemetry.proto.collector.metrics.v1 import (  # noqa: PLC0415
        metrics_service_pb2,
        metrics_service_pb2_grpc,
    )
    from opentelemetry.proto.collector.trace.v1 import (  # noqa: PLC0415
        trace_service_pb2,
        trace_service_pb2_grpc,
    )

    def metadata(context: Any) -> dict[str, str]:
        return {str(key).lower(): str(value) for key, value in context.invocation_metadata()}

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # gRPC's name
            mode = server.fault()
            size = request.ByteSize()
            verdict = server.verdict(mode, size)
            if verdict == "hang":
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "hung")
            if verdict == "too_large":
                limit = int(mode["max_bytes"])
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"grpc: received message larger than max ({size} vs. {limit})",
                )
            if verdict == "bad_request":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused by the test receiver")
            if verdict == "refuse":
                code = (
                    grpc.StatusCode.RESOURCE_EXHAUSTED
                    if int(mode.get("status", 503)) == 429
                    else grpc.StatusCode.UNAVAILABLE
                )
                context.abort(code, "refused by the test receiver")
            server.accept(request)
            server.note(Received(GRPC_TRACES_PATH, metadata(context), request.SerializeToString()))
            server.answer_late(mode)
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # gRPC's name
            server.note(Received(GRPC_METRICS_PATH, metadata(context), request.SerializeToString()))
            return metrics_service_pb2.ExportMetricsServiceResponse()

    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[("grpc.max_receive_message_length", server.grpc_max_receive)],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), grpc_server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), grpc_server)  # type: ignore[no-untyped-call]
    return grpc_server


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
    server = _Server(http_port, grpc_port if grpc else None, record, grpc_max_receive)
    server.listen()
    try:
        yield Receiver(server.http_port, server.grpc_port, server.command)
    finally:
        server.close()


def _serve(
    http_port: int, grpc_port: int | None, record: bool, grpc_max_receive: int, control: Any
) -> None:
    """The own process's main: serve, answer the handle's commands until killed."""
    server = _Server(http_port, grpc_port, record, grpc_max_receive)
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
        if not ours.poll(_START_S):
            raise RuntimeError(f"the OTLP receiver did not start within {_START_S:.0f} s")
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
    server = _Server(args.http_port, grpc_port, record=False)
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
