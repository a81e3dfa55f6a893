"""The OTLP server behind :mod:`railtracks.testing._receiver`'s handle, on 127.0.0.1.

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
import threading
import time
import zlib
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._procs import LOOPBACK

__all__ = [
    "GRPC_MAX_RECEIVE",
    "GRPC_TRACES_PATH",
    "START_S",
    "TRACES_PATH",
    "OtlpServer",
    "Received",
    "Stats",
]

TRACES_PATH = "/v1/traces"
GRPC_TRACES_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_METRICS_PATH = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

# A collector restarting answers what it already accepted: stopping gRPC at once
# would cancel the request that triggered the restart after counting it, so the
# client sends it again and it is counted twice (a crash, which OTLP leaves at
# least once).
_GRACE_S = 1.0
START_S = 60.0  # a spawned interpreter importing grpc on a loaded machine
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


class OtlpServer:
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
            self.listening.wait(START_S)
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


def _http_handler(server: OtlpServer) -> type[BaseHTTPRequestHandler]:
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


def _grpc_server(server: OtlpServer) -> Any:
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
