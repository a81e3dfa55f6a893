"""A fault-injecting OTLP trace receiver in its own process on 127.0.0.1.

It listens for OTLP/HTTP (protobuf) and OTLP/gRPC at once and counts the spans
it accepts by (trace id, span id): ``distinct`` and ``total`` (a duplicate
makes ``total`` larger). Faults, set from the test process at any time:

* ``ok`` answers at once; ``slow`` waits ``delay`` seconds per request;
* ``refuse`` answers HTTP ``status`` (503 or 429, with ``Retry-After``) or the
  gRPC equivalent (UNAVAILABLE / RESOURCE_EXHAUSTED), for ``seconds`` (then ok),
  or for good;
* ``hang`` never answers (and counts nothing);
* ``restart``: after ``after`` accepted requests, closes both listening ports
  for ``down`` seconds, then listens again on the same ports (setting a new
  mode waits for a restart under way to finish);
* a closed port is simply a port nothing listens on (``closed_port()``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: set[tuple[bytes, bytes]] = set()
        self.total = 0
        self.requests = 0
        self.refused = 0
        self.mode: dict[str, Any] = {"kind": "ok"}
        self.mode_since = time.monotonic()
        self.release = threading.Event()

    def fault(self) -> dict[str, Any]:
        with self.lock:
            mode = dict(self.mode)
        seconds = mode.get("seconds")
        if seconds is not None and time.monotonic() - self.mode_since > seconds:
            return {"kind": "ok"}
        return mode

    def accept(self, request: Any) -> None:
        ids = [
            (span.trace_id, span.span_id)
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]
        with self.lock:
            self.ids.update(ids)
            self.total += len(ids)
            self.requests += 1


_GRACE_SECONDS = 1.0


def _serve(http_port: int, grpc_port: int, control: Any) -> None:
    import grpc
    from opentelemetry.proto.collector.metrics.v1 import (
        metrics_service_pb2,
        metrics_service_pb2_grpc,
    )
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    state = _State()

    def apply(mode: dict[str, Any]) -> tuple[str, Any] | None:
        """None to accept, else ("refuse", status) after any delay the fault asks for."""
        kind = mode["kind"]
        if kind == "slow":
            time.sleep(mode["delay"])
        elif kind == "hang":
            state.release.wait(mode.get("for", 60))
            return ("hang", None)
        elif kind == "refuse":
            with state.lock:
                state.refused += 1
            return ("refuse", mode.get("status", 503))
        return None

    class Http(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/traces":
                status = int(state.fault().get("metrics_status", 200))
                self._reply(status, metrics_service_pb2.ExportMetricsServiceResponse())
                return
            verdict = apply(state.fault())
            if verdict is not None and verdict[0] == "hang":
                self.close_connection = True
                return
            if verdict is not None:
                mode = state.fault()
                self._reply(verdict[1], None, mode.get("retry_after"))
                return
            state.accept(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            self._reply(200, trace_service_pb2.ExportTraceServiceResponse())
            restart_check()

        def _reply(self, status: int, message: Any, retry_after: Any = None) -> None:
            payload = message.SerializeToString() if message is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # gRPC's name
            verdict = apply(state.fault())
            if verdict is not None and verdict[0] == "hang":
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "hung")
            if verdict is not None:
                code = (
                    grpc.StatusCode.RESOURCE_EXHAUSTED
                    if verdict[1] == 429
                    else grpc.StatusCode.UNAVAILABLE
                )
                context.abort(code, "refused by the fault receiver")
            state.accept(request)
            restart_check()
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # gRPC's name
            return metrics_service_pb2.ExportMetricsServiceResponse()

    servers: dict[str, Any] = {}

    def listen() -> None:
        http = ThreadingHTTPServer(("127.0.0.1", http_port), Http)
        http.daemon_threads = True
        threading.Thread(target=http.serve_forever, daemon=True).start()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        server.add_insecure_port(f"127.0.0.1:{grpc_port}")
        server.start()
        servers["http"], servers["grpc"] = http, server

    def stop() -> None:
        http, server = servers.pop("http"), servers.pop("grpc")
        http.shutdown()
        http.server_close()
        # a collector restarting answers what it already accepted: stop(0) would cancel
        # the request that triggered the restart after counting it, so the client sends it
        # again and the receiver counts it twice (a crash, which OTLP leaves at least once)
        server.stop(_GRACE_SECONDS).wait()

    listening = threading.Event()  # clear while a restart has the ports closed

    def restart(down: float) -> None:
        listening.clear()
        stop()
        time.sleep(down)
        listen()
        listening.set()

    def restart_check() -> None:
        mode = state.fault()
        if mode["kind"] == "restart" and state.requests == mode["after"]:
            with state.lock:
                state.mode = {"kind": "ok"}
            threading.Thread(target=restart, args=(mode["down"],), daemon=True).start()

    listen()
    listening.set()
    control.send("ready")
    while True:
        command, argument = control.recv()
        if command == "mode":
            # a new mode means "from now on": a restart under way finishes first
            listening.wait(30)
            state.release.set()
            state.release = threading.Event()
            with state.lock:
                state.mode, state.mode_since = argument, time.monotonic()
            control.send(None)
        elif command == "stats":
            with state.lock:
                control.send((len(state.ids), state.total, state.requests, state.refused))
        elif command == "ids":
            with state.lock:
                control.send(sorted(state.ids))
        elif command == "reset":
            with state.lock:
                state.ids.clear()
                state.total = state.requests = state.refused = 0
            control.send(None)


class Receiver:
    """The test side: set faults, read counts."""

    def __init__(self, http_port: int, grpc_port: int, control: Any) -> None:
        self.http_endpoint = f"http://127.0.0.1:{http_port}"
        self.grpc_endpoint = f"http://127.0.0.1:{grpc_port}"
        self._control = control
        self._lock = threading.Lock()

    def endpoint(self, protocol: str) -> str:
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint

    def _ask(self, command: str, argument: Any = None) -> Any:
        with self._lock:
            self._control.send((command, argument))
            return self._control.recv()

    def set(self, kind: str, **options: Any) -> None:
        self._ask("mode", {"kind": kind, **options})

    def stats(self) -> tuple[int, int, int, int]:
        """``(distinct spans, total spans, accepted requests, refused requests)``."""
        distinct, total, requests, refused = self._ask("stats")
        return int(distinct), int(total), int(requests), int(refused)

    def ids(self) -> list[tuple[bytes, bytes]]:
        return list(self._ask("ids"))

    def reset(self) -> None:
        self.set("ok")
        self._ask("reset")

    def wait_for(self, distinct: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            got = self.stats()[0]
            if got >= distinct or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


@contextlib.contextmanager
def fault_receiver(
    http_port: int | None = None, grpc_port: int | None = None
) -> Iterator[Receiver]:
    """Start the receiver in its own (spawned) process; stop it afterwards."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    http_port, grpc_port = http_port or closed_port(), grpc_port or closed_port()
    process = context.Process(target=_serve, args=(http_port, grpc_port, theirs), daemon=True)
    process.start()
    if not ours.poll(60):
        process.terminate()
        raise RuntimeError("the fault receiver did not start")
    ours.recv()
    try:
        yield Receiver(http_port, grpc_port, ours)
    finally:
        process.terminate()
        process.join(5)
