"""The viewer's HTTP server: the page, a small JSON API, and the OTLP/HTTP receiver.

Standard library only (``http.server``): one local user, a handful of
requests per second, no new dependency. Every response carries a strict
Content-Security-Policy; requests whose ``Host`` is not the address the
server is bound to are refused (a web page cannot reach it by DNS rebinding),
and the OTLP receiver only takes the OTLP content types, which a cross-origin
page cannot send without a CORS preflight this server never grants.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ._live import LiveRuns
from ._otlp import BadPayload, decode_json, decode_protobuf, to_span
from ._saved import SavedRuns

MAX_BODY: Final = 16 * 1024 * 1024
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
}
_PROTOBUF: Final = "application/x-protobuf"
_JSON: Final = "application/json"
_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")


def static_file(name: str) -> bytes:
    """A file of the bundled front end."""
    return (resources.files(__package__) / "static" / name).read_bytes()


class ViewerServer(ThreadingHTTPServer):
    """Serves the viewer for one state directory and keeps live runs in memory."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, state_dir: Path) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.host = host
        self.saved = SavedRuns(state_dir)
        self.live = LiveRuns()
        self.rejected_spans = 0
        super().__init__((host, port), _Handler)

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
    server_version = "railtracks-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle or stalled connection does not hold its thread for ever

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
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

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
        body = self._body()
        if body is None:
            return
        decode = decode_protobuf if content_type == _PROTOBUF else decode_json
        try:
            received = list(decode(body))
        except BadPayload as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        spans = [s for s in map(to_span, received) if s is not None]
        self.server.live.add(spans)
        rejected = len(received) - len(spans)
        self.server.rejected_spans += rejected
        if content_type == _PROTOBUF:
            response = ExportTraceServiceResponse()
            if rejected:
                response.partial_success.rejected_spans = rejected
                response.partial_success.error_message = "spans without valid trace/span ids"
            self._send(HTTPStatus.OK, response.SerializeToString(), _PROTOBUF)
        else:
            partial = {"rejectedSpans": str(rejected)} if rejected else {}
            self._json(HTTPStatus.OK, {"partialSuccess": partial} if partial else {})

    def _body(self) -> bytes | None:  # noqa: PLR0911  # one exit per refusal
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
        body = self.rfile.read(length)
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
