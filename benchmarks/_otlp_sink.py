"""A minimal OTLP/HTTP trace receiver in its own process, counting the spans it is sent.

Stands in for a collector on 127.0.0.1 so export costs are measured for real
(protobuf encoding, an HTTP round trip per batch) without any backend.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _serve(port: int, counter: Any) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
                with counter.get_lock():
                    counter.value += count
            # metrics and the rest are accepted and ignored; an empty message is a valid reply
            payload = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sink:
    def __init__(self, port: int, counter: Any) -> None:
        self.endpoint = f"http://127.0.0.1:{port}"
        self._counter = counter

    @property
    def received(self) -> int:
        return int(self._counter.value)

    def reset(self) -> None:
        with self._counter.get_lock():
            self._counter.value = 0


@contextlib.contextmanager
def otlp_sink() -> Iterator[Sink]:
    port = _free_port()
    counter = multiprocessing.Value("q", 0)
    process = multiprocessing.Process(target=_serve, args=(port, counter), daemon=True)
    process.start()
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            break
    try:
        yield Sink(port, counter)
    finally:
        process.terminate()
        process.join(5)
