"""The viewer's HTTP server: the page, a small JSON API, and the OTLP/HTTP receiver.

Standard library only (``http.server``'s request handling on the bounded
connections of ``_connections``): one local user, a handful of requests per
second, no new dependency. Received bodies are bounded in bytes (each, and
all held at once); they are decoded one at a time, span by span, into the
byte-bounded live store. Every response carries a strict
Content-Security-Policy; requests whose ``Host`` is not the address the
server is bound to are refused (a web page cannot reach it by DNS rebinding),
and the OTLP receiver only takes the OTLP content types, which a cross-origin
page cannot send without a CORS preflight this server never grants.
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import threading
import time
import zlib
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ._compare import compare_runs
from ._connections import Connection, ConnectionServer, SocketReader, SocketWriter
from ._live import LiveRuns
from ._otlp import BadPayload, decode_json, decode_protobuf, to_span
from ._saved import SavedRuns

MAX_BODY: Final = 16 * 1024 * 1024
MAX_PENDING_BYTES: Final = 4 * MAX_BODY  # request bodies held at once; beyond: 429
TIMEOUT: Final = 10.0  # seconds for a request to arrive (and for a response to be taken)
MAX_CONNECTIONS: Final = 256
WORKERS: Final = 8
_BATCH: Final = 2_000  # spans added to the live store per lock
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_STATIC: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/viewer.js": ("viewer.js", "text/javascript; charset=utf-8"),
    "/static/viewer.css": ("viewer.css", "text/css; charset=utf-8"),
    "/static/compare.js": ("compare.js", "text/javascript; charset=utf-8"),
}
_PROTOBUF: Final = "application/x-protobuf"
_JSON: Final = "application/json"
_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")


def static_file(name: str) -> bytes:
    """A file of the bundled front end."""
    return (resources.files(__package__) / "static" / name).read_bytes()


class ViewerServer(ConnectionServer):
    """Serves the viewer for one state directory and keeps live runs in memory."""

    max_body = MAX_BODY
    max_pending_bytes = MAX_PENDING_BYTES

    def __init__(  # the bounds are keywords, for tests and benchmarks
        self,
        host: str,
        port: int,
        state_dir: Path,
        *,
        timeout: float = TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        workers: int = WORKERS,
        live: LiveRuns | None = None,
    ) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.host = host
        self.saved = SavedRuns(state_dir)
        self.live = live if live is not None else LiveRuns()
        self.rejected_spans = 0
        # one body decoded at a time: decoding is CPU-bound under the GIL anyway,
        # and only one body's decoded objects exist at once
        self.ingest = threading.Lock()
        super().__init__(
            (host, port),
            _Handler,
            timeout=timeout,
            max_connections=max_connections,
            workers=workers,
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def allowed_hosts(self) -> set[str] | None:
        """``Host`` values accepted; None (any) when bound beyond loopback on purpose."""
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            return None  # reached by names this process cannot know; --host opted in
        return {f"{name}:{self.port}" for name in (*_LOOPBACK_NAMES, self.host)}

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line on stderr, never a traceback: a closed tab is not an error."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        print(f"railtracks view: request failed: {type(error).__name__}", file=sys.stderr)

    def receive(self, records: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Keep decoded spans, a batch at a time; ``(received, rejected)``."""
        received = rejected = 0
        iterator = iter(records)
        while batch := list(itertools.islice(iterator, _BATCH)):
            spans = [s for s in map(to_span, batch) if s is not None]
            received += len(batch)
            rejected += len(batch) - len(spans)
            del batch
            self.live.add(spans)
        self.rejected_spans += rejected
        return received, rejected

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="railtracks-view", daemon=True)
        thread.start()
        return thread

    def runs(self) -> dict[str, Any]:
        runs = [*self.live.summaries(), *self.saved.summaries()]
        runs.sort(key=lambda r: r.get("start_ms") or 0, reverse=True)
        return {"version": self.live.version, "runs": runs}


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer
    request: Connection
    rfile: SocketReader  # type: ignore[assignment]
    wfile: SocketWriter  # type: ignore[assignment]
    server_version = "railtracks-view"
    sys_version = ""
    _headers_buffer: list[bytes]  # the base class's, written in one send with the body
    send_error_headers: dict[str, str] = {}  # noqa: RUF012  # replaced, never mutated
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.connection = self.request.sock
        self.rfile = SocketReader(self.request, self.request.deadline)
        self.wfile = SocketWriter(self.request.sock)

    def handle(self) -> None:
        """One request; the connection goes back to waiting for the next one unless closed."""
        self.close_connection = True
        self.handle_one_request()
        if self.request.body_end < 0:
            self.close_connection = True  # its body was not read: the stream is out of step

    def finish(self) -> None:
        return

    def log_message(self, format: str, *args: Any) -> None:  # the base class's parameter name
        return  # request lines hold untrusted paths: never echoed to the terminal

    # -- responses ---------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        for name, value in self.send_error_headers.items():
            self.send_header(name, value)
        # head and body in one send (with TCP_NODELAY: no wait for the client's delayed ACK)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def _json(self, status: int, document: Any) -> None:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").lower()
        allowed = self.server.allowed_hosts()
        if allowed is not None and host not in allowed:
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host header")
            return False
        # Browsers say where a request comes from: another site may link to the
        # viewer (a navigation), never read from it or post to it.
        site = (self.headers.get("Sec-Fetch-Site") or "").lower()
        mode = (self.headers.get("Sec-Fetch-Mode") or "").lower()
        if site in ("cross-site", "same-site") and not (
            self.command == "GET" and mode == "navigate"
        ):
            self._error(HTTPStatus.FORBIDDEN, "cross-site request refused")
            return False
        return True

    # -- GET ---------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        if path in _STATIC:
            name, content_type = _STATIC[path]
            self._send(HTTPStatus.OK, static_file(name), content_type)
            return
        if path == "/api/runs":
            self._json(HTTPStatus.OK, self.server.runs())
            return
        parts = [unquote(p) for p in path.split("/")]
        if len(parts) == 5 and parts[:3] == ["", "api", "compare"]:
            self._compare(parts[3], parts[4])
            return
        if len(parts) in (5, 7) and parts[:3] == ["", "api", "runs"]:
            self._run(parts[3], parts[4], parts[6] if len(parts) == 7 else None, parts)
            return
        self._error(HTTPStatus.NOT_FOUND, "not found")

    def _run(self, source: str, key: str, span_id: str | None, parts: list[str]) -> None:
        if span_id is not None and parts[5] != "spans":
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        found: bytes | dict[str, Any] | None = None
        if source == "live":
            live = self.server.live
            found = live.outline_json(key) if span_id is None else live.detail(key, span_id)
        elif source == "saved":
            run = self.server.saved.get(key)
            if run is not None:
                found = run.outline_json() if span_id is None else run.detail(span_id)
        if found is None:
            self._error(HTTPStatus.NOT_FOUND, "no such run or span")
        elif isinstance(found, bytes):
            self._send(HTTPStatus.OK, found, "application/json; charset=utf-8")
        else:
            self._json(HTTPStatus.OK, found)

    def _compare(self, key_a: str, key_b: str) -> None:
        found, why = compare_runs(self.server.saved.directory, key_a, key_b)
        if found is None:
            self._error(HTTPStatus.NOT_FOUND, why)
        else:
            self._json(HTTPStatus.OK, found)

    # -- OTLP/HTTP ---------------------------------------------------------------

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if urlsplit(self.path).path != "/v1/traces":
            self._error(HTTPStatus.NOT_FOUND, "only /v1/traces is received here")
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in (_PROTOBUF, _JSON):
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/x-protobuf or json")
            return
        decode = decode_protobuf if content_type == _PROTOBUF else decode_json
        raw = self._body()
        if raw is None:
            return
        with self.server.ingest:
            body = self._inflated(raw)
            del raw
            if body is None:
                return
            try:
                _, rejected = self.server.receive(decode(body))
            except BadPayload as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
                return
            finally:
                del body
        if content_type == _PROTOBUF:
            response = ExportTraceServiceResponse()
            if rejected:
                response.partial_success.rejected_spans = rejected
                response.partial_success.error_message = "spans without valid trace/span ids"
            self._send(HTTPStatus.OK, response.SerializeToString(), _PROTOBUF)
        else:
            partial = {"rejectedSpans": str(rejected)} if rejected else {}
            self._json(HTTPStatus.OK, {"partialSuccess": partial} if partial else {})

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or "-1")
        except ValueError:
            length = -1
        if length < 0:
            self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return None
        if length > MAX_BODY:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
            return None
        if self.request.over_budget:
            self.close_connection = True
            self.send_error_headers = {"Retry-After": "1"}
            self._error(HTTPStatus.TOO_MANY_REQUESTS, "too many bodies at once; retry later")
            return None
        self.rfile.deadline = max(
            self.rfile.deadline, time.monotonic() + self.server.request_timeout + length / (1 << 20)
        )
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            self._error(HTTPStatus.BAD_REQUEST, "body shorter than its Content-Length")
            return None
        return body

    def _inflated(self, body: bytes) -> bytes | None:
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding == "identity":
            return body
        if encoding != "gzip":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Content-Encoding: gzip or none")
            return None
        inflater = zlib.decompressobj(wbits=31)
        try:
            inflated = inflater.decompress(body, MAX_BODY + 1)
        except zlib.error:
            self._error(HTTPStatus.BAD_REQUEST, "bad gzip body")
            return None
        if len(inflated) > MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "inflated body too large")
            return None
        return inflated
