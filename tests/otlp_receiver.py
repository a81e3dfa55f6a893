"""A minimal OTLP/HTTP receiver on 127.0.0.1 for unit tests: records what arrives."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass
class Received:
    """One POST: its path, headers and decompressed body."""

    path: str
    headers: dict[str, str]
    body: bytes

    def spans(self) -> list[tuple[str, Any]]:
        """``(scope name, span)`` of a traces request."""
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.body)
        return [
            (scope_spans.scope.name, span)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


@dataclass
class Receiver:
    endpoint: str
    received: list[Received] = field(default_factory=list)

    def posts(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def spans(self) -> list[tuple[str, Any]]:
        return [span for post in self.posts("/v1/traces") for span in post.spans()]


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """Serve OTLP/HTTP (traces and metrics) on a free port of 127.0.0.1; answer 200 to all."""
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            receiver.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
