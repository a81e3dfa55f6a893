"""Sending OTLP-encoded trace requests (bytes) to a collector, one attempt at a time.

railtracks encodes a batch once (``ExportTraceServiceRequest``) and sends the
same bytes live, or spools them to the outbox and sends them later: so it owns
the transport instead of the SDK exporters (whose retry loops hold a batch for
up to their whole timeout and cannot be cut short at exit).

Retry classification follows the OTLP specification: HTTP 429, 502, 503 and
504 and the gRPC codes CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are transient; a
``Retry-After`` header (seconds or HTTP date) or gRPC ``RetryInfo`` gives the
delay. Three failures are told apart, for the caller to act on: a request too
large for the collector (HTTP 413, gRPC RESOURCE_EXHAUSTED "larger than max":
split it), one refused for good (HTTP 400, gRPC INVALID_ARGUMENT, bytes that
are not a request: set it aside), and one that timed out waiting for the answer
(the collector may have processed it: it is *in doubt*, never retried here).
"""

from __future__ import annotations

import dataclasses
import email.utils
import gzip
import http.client
import importlib
import math
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import unquote, urlparse

from opentelemetry.sdk.trace import ReadableSpan

from .wire import TraceRequestWriter

RETRYABLE_HTTP: Final = frozenset({429, 502, 503, 504})
HTTP_BAD_REQUEST: Final = 400
HTTP_TOO_LARGE: Final = 413
_RETRYABLE_GRPC: Final = frozenset(
    {
        "CANCELLED",
        "DEADLINE_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNAVAILABLE",
        "DATA_LOSS",
    }
)
DEFAULT_TIMEOUT: Final = 10.0
MAX_RETRY_AFTER: Final = 300.0


@dataclasses.dataclass(frozen=True)
class SendResult:
    """One attempt's outcome: ``ok``, or why not and whether trying later may help."""

    ok: bool
    reason: str = ""
    retryable: bool = True
    retry_after: float | None = None
    too_large: bool = False  # the request is over the collector's size limit
    rejected: bool = False  # the collector refuses this request for good (its content)
    in_doubt: bool = False  # sent, but no answer in time: the collector may have it


_TOO_LARGE_GRPC: Final = ("larger than max", "too large", "exceeds the maximum")


_WRITER: Final = TraceRequestWriter()


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP ``ExportTraceServiceRequest`` bytes of a batch (see ``_delivery.otlp.wire``)."""
    try:
        return _WRITER.request(spans)
    except Exception:  # something the direct writer does not know: the SDK's own encoder
        # imported here: protobuf and the generated messages cost ~40 ms at import
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import (  # noqa: PLC0415
            encode_spans,
        )

        data: bytes = encode_spans(spans).SerializePartialToString()
        return data


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def env_headers() -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS``: ``k=v,k2=v2``, URL-encoded (OTel spec)."""
    raw = _env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") or ""
    headers: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            headers[unquote(key.strip()).lower()] = unquote(value.strip())
    return headers


def _env_timeout() -> float:
    raw = _env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        millis = float(raw) if raw is not None else DEFAULT_TIMEOUT * 1000
    except ValueError:
        millis = DEFAULT_TIMEOUT * 1000
    return millis / 1000 if millis > 0 else DEFAULT_TIMEOUT


def _gzip_wanted() -> bool:
    value = _env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
    return (value or "").lower() == "gzip"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class OtlpSender:
    """Sends encoded trace requests to one endpoint over ``grpc`` or ``http/protobuf``.

    Not shared between threads; after a fork the child makes a new one
    (connections and gRPC channels do not survive a fork).
    """

    def __init__(
        self, endpoint: str, protocol: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.endpoint = endpoint
        self.protocol = protocol
        self.headers = {k.lower(): v for k, v in (headers or env_headers()).items()}
        self.timeout = _env_timeout()
        self.gzip = _gzip_wanted()
        self._http: http.client.HTTPConnection | None = None
        self._stub: Any = None
        self._channel: Any = None

    def send(self, data: bytes, timeout: float | None = None) -> SendResult:
        """One attempt, at most ``timeout`` seconds (the OTLP timeout by default)."""
        wait = min(timeout, self.timeout) if timeout is not None else self.timeout
        try:
            if self.protocol == "grpc":
                return self._send_grpc(data, max(wait, 0.05))
            return self._send_http(data, max(wait, 0.05))
        except Exception as exc:  # a transport failure is a failed attempt, never a crash
            self.close()
            return SendResult(False, f"{type(exc).__name__}: {exc}", retryable=True)

    # -- HTTP/protobuf ---------------------------------------------------------------
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._http is None:
            url = urlparse(self.endpoint)
            host, port = url.hostname or "localhost", url.port
            if url.scheme == "https":
                cafile = _env(
                    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"
                )
                context = ssl.create_default_context(cafile=cafile)
                self._http = http.client.HTTPSConnection(
                    host, port, timeout=timeout, context=context
                )
            else:
                self._http = http.client.HTTPConnection(host, port, timeout=timeout)
        self._http.timeout = timeout
        if self._http.sock is not None:
            self._http.sock.settimeout(timeout)
        return self._http

    def _send_http(self, data: bytes, timeout: float) -> SendResult:
        url = urlparse(self.endpoint)
        path = url.path or "/v1/traces"
        headers = {**self.headers, "Content-Type": "application/x-protobuf"}
        body = data
        if self.gzip:
            body = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        connection = self._connection(timeout)
        connection.request("POST", path, body=body, headers=headers)
        try:
            response = connection.getresponse()
            response.read()
        except TimeoutError as exc:  # the whole request was sent: the collector may have it
            self.close()
            return SendResult(False, f"no answer within {timeout:g} s ({exc})", in_doubt=True)
        status = response.status
        if 200 <= status < 300:
            return SendResult(True)
        return SendResult(
            False,
            f"HTTP {status} {response.reason}",
            retryable=status in RETRYABLE_HTTP,
            retry_after=_retry_after(response.getheader("Retry-After")),
            too_large=status == HTTP_TOO_LARGE,
            rejected=status == HTTP_BAD_REQUEST,
        )

    # -- gRPC --------------------------------------------------------------------------
    def _grpc_stub(self) -> Any:
        if self._stub is None:
            grpc = _module("grpc")  # imported when used: gRPC's import costs a few hundred ms
            stubs = _module("opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc")

            url = urlparse(self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}")
            target = f"{url.hostname}:{url.port or 4317}"
            insecure = _env("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE")
            if url.scheme == "https" and (insecure or "").lower() != "true":
                cafile = _env(
                    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"
                )
                root = open(cafile, "rb").read() if cafile else None  # noqa: SIM115
                self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root))
            else:
                self._channel = grpc.insecure_channel(target)
            self._stub = stubs.TraceServiceStub(self._channel)
        return self._stub

    def _send_grpc(self, data: bytes, timeout: float) -> SendResult:
        grpc = _module("grpc")
        stub = self._grpc_stub()
        messages = _module("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
        try:
            request = messages.ExportTraceServiceRequest.FromString(data)
        except _module("google.protobuf.message").DecodeError as exc:
            return SendResult(False, f"not a trace request: {exc}", False, rejected=True)
        compression = grpc.Compression.Gzip if self.gzip else None
        try:
            stub.Export(
                request,
                metadata=tuple(self.headers.items()),
                timeout=timeout,
                compression=compression,
            )
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            name = getattr(code, "name", "UNKNOWN")
            retryable = name in _RETRYABLE_GRPC
            delay = _grpc_retry_delay(error)
            if name == "RESOURCE_EXHAUSTED" and delay is None:
                retryable = False  # the spec retries it only with RetryInfo
            details = (error.details() if hasattr(error, "details") else "") or ""
            too_large = name == "RESOURCE_EXHAUSTED" and any(
                text in details.lower() for text in _TOO_LARGE_GRPC
            )
            return SendResult(
                False,
                f"gRPC {name} {details}".strip(),
                retryable and not too_large,
                delay,
                too_large=too_large,
                rejected=name == "INVALID_ARGUMENT",
                in_doubt=name == "DEADLINE_EXCEEDED",
            )
        return SendResult(True)

    def close(self) -> None:
        """Drop the connection (a new one is made on the next send)."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._channel is not None:
            try:
                self._channel.close()
            finally:
                self._channel = None
                self._stub = None


def _module(name: str) -> Any:
    return importlib.import_module(name)


def _grpc_retry_delay(error: Any) -> float | None:
    try:
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = _module("google.rpc.status_pb2").Status.FromString(value)
                for detail in status.details:
                    info = _module("google.rpc.error_details_pb2").RetryInfo()
                    if detail.Unpack(info):
                        delay = info.retry_delay
                        return min(float(delay.seconds + delay.nanos / 1e9), MAX_RETRY_AFTER)
    except Exception:  # missing googleapis protos or a malformed trailer: no hint
        return None
    return None
