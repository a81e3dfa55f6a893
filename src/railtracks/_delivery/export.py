"""Export settings from ``rt.configure`` and the standard ``OTEL_*`` variables (SPEC 5, 8).

Values are read as the OpenTelemetry SDK configuration specification says
(see ``_delivery.otel_env``): a bad one warns once, naming the variable, and the default
applies: **telemetry configuration never breaks the application**.

OTLP export is on when an endpoint is configured (``rt.configure(endpoint=...)``,
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or
``OTEL_TRACES_EXPORTER`` names ``otlp`` explicitly (then the spec's default
endpoint applies), and not turned off (``OTEL_SDK_DISABLED=true``,
``OTEL_TRACES_EXPORTER`` without ``otlp``, ``rt.configure(export=False)``).
``OTEL_TRACES_EXPORTER=console`` prints spans as JSON on stdout, like the SDK.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import unquote, urlparse

from opentelemetry.sdk.trace.export import SpanExporter

from .._config import CONFIG
from .._logs.log import warn_once
from ..errors import ConfigurationError
from .otel_env import env, env_flag, env_int, env_list, invalid

if TYPE_CHECKING:  # the metrics SDK is imported only when metrics are exported
    from opentelemetry.sdk.metrics.export import MetricExporter

Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS: Final = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL: Final[Protocol] = "grpc"
# The spec's defaults (milliseconds).
DEFAULT_EXPORT_TIMEOUT_MS: Final = 10_000
DEFAULT_METRIC_EXPORT_INTERVAL_MS: Final = 60_000
DEFAULT_METRIC_EXPORT_TIMEOUT_MS: Final = 30_000
# the batch processor's (OTEL_BSP_* override them)
DEFAULT_MAX_QUEUE_SIZE: Final = 262_144
DEFAULT_MAX_EXPORT_BATCH_SIZE: Final = 512
DEFAULT_SCHEDULE_DELAY: Final = 1.0
DEFAULT_ENDPOINTS: Final = {
    "grpc": "http://localhost:4317",
    "http/protobuf": "http://localhost:4318",
}
COMPRESSIONS: Final = ("gzip", "deflate", "none")
TRACES_EXPORTERS: Final = ("otlp", "console", "none", "zipkin", "logging")
METRICS_EXPORTERS: Final = ("otlp", "console", "none", "prometheus", "logging")


@dataclasses.dataclass(frozen=True)
class ExportSettings:
    """Where and how OTLP goes, per signal."""

    protocol: Protocol
    metrics_protocol: Protocol
    traces_endpoint: str | None
    metrics_endpoint: str | None
    headers: Mapping[str, str] | None
    traces: bool
    metrics: bool
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay: float
    traces_headers: Mapping[str, str] | None = None
    metrics_headers: Mapping[str, str] | None = None
    traces_timeout: float = DEFAULT_EXPORT_TIMEOUT_MS / 1000
    metrics_timeout: float = DEFAULT_EXPORT_TIMEOUT_MS / 1000
    traces_compression: str = "none"
    metrics_compression: str = "none"
    metric_export_interval_ms: int = DEFAULT_METRIC_EXPORT_INTERVAL_MS
    metric_export_timeout_ms: int = DEFAULT_METRIC_EXPORT_TIMEOUT_MS


def _protocol(signal: str) -> Protocol:
    configured = CONFIG.telemetry.protocol
    if configured is not None:
        return configured  # type: ignore[return-value]  # validated by configure()
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = env(name)
        if value is not None:
            if value not in PROTOCOLS:
                invalid(name, value, "expected grpc or http/protobuf", DEFAULT_PROTOCOL)
                continue
            return value  # type: ignore[return-value]  # checked against PROTOCOLS
    return DEFAULT_PROTOCOL


def _valid_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _endpoint(signal: str, protocol: Protocol, explicit_otlp: bool) -> str | None:
    """The full endpoint for one signal; HTTP gets ``/v1/{signal}`` on a base URL."""
    path = f"/v1/{signal.lower()}"
    configured = CONFIG.telemetry.endpoint
    base: str | None = None
    if configured is not None:
        if not _valid_url(configured):  # code, not the environment: a clear error
            raise ConfigurationError(
                f"configure(endpoint=...): expected an http:// or https:// URL, got {configured!r}"
            )
        base = configured
    else:
        name = f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
        specific = env(name)
        if specific is not None:  # signal-specific endpoints are used exactly as given
            if _valid_url(specific):
                return specific
            invalid(name, specific, "expected an http:// or https:// URL", "the general endpoint")
        general = env("OTEL_EXPORTER_OTLP_ENDPOINT")
        if general is not None:
            if _valid_url(general):
                base = general
            else:
                invalid(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    general,
                    "expected an http:// or https:// URL",
                    "no endpoint",
                )
        if base is None:
            if not explicit_otlp:
                return None  # zero config: no network
            base = DEFAULT_ENDPOINTS[protocol]
    if protocol == "http/protobuf" and not base.rstrip("/").endswith(path):
        return base.rstrip("/") + path
    return base


def _headers(signal: str) -> Mapping[str, str] | None:
    configured = CONFIG.telemetry.headers
    if configured is not None:
        return configured
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        value = env(name)
        if value is not None:
            return parse_headers(name, value)
    return None


def parse_headers(name: str, value: str) -> dict[str, str]:
    """``key1=value1,key2=value2`` (W3C baggage style, percent-decoded); bad entries warn."""
    headers: dict[str, str] = {}
    for entry in value.split(","):
        if not entry.strip():
            continue
        key, sep, item = entry.partition("=")
        key = unquote(key).strip().lower()
        if not sep or not key or any(c.isspace() or ord(c) < 33 for c in key):
            # the entry itself may be a secret: the warning names the variable only
            warn_once(f"env:{name}:entry", f"{name}: an entry is not key=value; it is ignored")
            continue
        headers[key] = unquote(item).strip()
    return headers


def _timeout(signal: str) -> float:
    specific = f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT"
    if env(specific) is not None:
        return env_int(specific, DEFAULT_EXPORT_TIMEOUT_MS, minimum=1) / 1000
    return env_int("OTEL_EXPORTER_OTLP_TIMEOUT", DEFAULT_EXPORT_TIMEOUT_MS, minimum=1) / 1000


def _compression(signal: str) -> str:
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        value = env(name)
        if value is None:
            continue
        if value.lower() in COMPRESSIONS:
            return value.lower()
        invalid(name, value, "expected gzip or none", "none")
    return "none"


def traces_exporters() -> tuple[str, ...]:
    """``OTEL_TRACES_EXPORTER`` as a list; exporters railtracks does not ship warn once."""
    chosen = env_list("OTEL_TRACES_EXPORTER", TRACES_EXPORTERS, ("otlp",))
    for name in chosen:
        if name in ("zipkin", "logging"):
            warn_once(
                f"env:OTEL_TRACES_EXPORTER:{name}",
                f"OTEL_TRACES_EXPORTER: railtracks does not ship the {name!r} exporter; ignored",
            )
    return chosen


def metrics_exporters() -> tuple[str, ...]:
    chosen = env_list("OTEL_METRICS_EXPORTER", METRICS_EXPORTERS, ("otlp",))
    for name in chosen:
        if name in ("prometheus", "logging"):
            warn_once(
                f"env:OTEL_METRICS_EXPORTER:{name}",
                f"OTEL_METRICS_EXPORTER: railtracks does not ship the {name!r} exporter; "
                "ignored (give a reader with rt.configure(metric_readers=...))",
            )
    return chosen


def sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED``: export off (the console and the saved state still work)."""
    return env_flag("OTEL_SDK_DISABLED")


def console_exporters() -> tuple[bool, bool]:
    """Whether ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` ask for ``console``."""
    if sdk_disabled():
        return False, False
    return "console" in traces_exporters(), "console" in metrics_exporters()


def export_settings() -> ExportSettings | None:
    """The OTLP settings in force, or None when nothing is exported over OTLP."""
    disabled = sdk_disabled()
    traces_list = traces_exporters()
    metrics_list = metrics_exporters()
    explicit_traces = "otlp" in traces_list and env("OTEL_TRACES_EXPORTER") is not None
    explicit_metrics = "otlp" in metrics_list and env("OTEL_METRICS_EXPORTER") is not None
    queue = env_int("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE, minimum=1)
    batch = env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_EXPORT_BATCH_SIZE, minimum=1)
    delay_ms = env_int("OTEL_BSP_SCHEDULE_DELAY", int(DEFAULT_SCHEDULE_DELAY * 1000), minimum=1)
    interval_ms = env_int(
        "OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_METRIC_EXPORT_INTERVAL_MS, minimum=1
    )
    metric_timeout_ms = env_int("OTEL_METRIC_EXPORT_TIMEOUT", DEFAULT_METRIC_EXPORT_TIMEOUT_MS)
    traces_protocol = _protocol("TRACES")
    traces_endpoint = _endpoint("TRACES", traces_protocol, explicit_traces)
    metrics_protocol = _protocol("METRICS")
    metrics_endpoint = _endpoint("METRICS", metrics_protocol, explicit_metrics)
    traces_on = "otlp" in traces_list and traces_endpoint is not None
    metrics_on = "otlp" in metrics_list and metrics_endpoint is not None
    if CONFIG.telemetry.export is False or disabled or not (traces_on or metrics_on):
        return None
    return ExportSettings(
        protocol=traces_protocol,
        metrics_protocol=metrics_protocol,
        traces_endpoint=traces_endpoint,
        metrics_endpoint=metrics_endpoint,
        headers=CONFIG.telemetry.headers,
        traces=traces_on,
        metrics=metrics_on,
        max_queue_size=queue,
        max_export_batch_size=min(batch, queue),
        schedule_delay=delay_ms / 1000,
        traces_headers=_headers("TRACES"),
        metrics_headers=_headers("METRICS"),
        traces_timeout=_timeout("TRACES"),
        metrics_timeout=_timeout("METRICS"),
        traces_compression=_compression("TRACES"),
        metrics_compression=_compression("METRICS"),
        metric_export_interval_ms=interval_ms,
        metric_export_timeout_ms=metric_timeout_ms,
    )


def _quiet_exporter_logs() -> None:
    # The OTLP exporters log every retry through stdlib logging; with no handler
    # configured, stdlib's "last resort" would print each one. railtracks reports
    # a failing export once itself; an application's own handlers still get them.
    exporter_logger = logging.getLogger("opentelemetry.exporter.otlp")
    if not any(isinstance(h, logging.NullHandler) for h in exporter_logger.handlers):
        exporter_logger.addHandler(logging.NullHandler())


# The exporter classes per (signal, protocol), imported only when used: gRPC's
# import alone costs a few hundred milliseconds.
_EXPORTERS: Final = {
    ("traces", "grpc"): "opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter",
    ("traces", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter.OTLPSpanExporter"
    ),
    (
        "metrics",
        "grpc",
    ): "opentelemetry.exporter.otlp.proto.grpc.metric_exporter.OTLPMetricExporter",
    ("metrics", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http.metric_exporter.OTLPMetricExporter"
    ),
}


def _compression_value(protocol: Protocol, name: str) -> Any:
    if protocol == "grpc":
        import grpc  # type: ignore[import-untyped]  # noqa: PLC0415  # only with gRPC export

        return {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}.get(
            name, grpc.Compression.NoCompression
        )
    from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: PLC0415

    return Compression(name)


def _exporter(  # noqa: PLR0917  # private: one call per signal below
    signal: str,
    protocol: Protocol,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    timeout: float,
    compression: str,
) -> Any:
    _quiet_exporter_logs()
    module, _, name = _EXPORTERS[(signal, protocol)].rpartition(".")
    exporter_class = getattr(importlib.import_module(module), name)
    # Every value is passed explicitly: left to the exporter, a bad OTEL_* value raises.
    return exporter_class(
        endpoint=endpoint,
        headers=dict(headers) if headers is not None else None,
        timeout=timeout,
        compression=_compression_value(protocol, compression),
    )


def span_exporter(settings: ExportSettings) -> SpanExporter:
    """The OTLP span exporter for these settings (gRPC or HTTP/protobuf)."""
    headers = settings.headers if settings.headers is not None else settings.traces_headers
    exporter: SpanExporter = _exporter(
        "traces",
        settings.protocol,
        settings.traces_endpoint,
        headers,
        settings.traces_timeout,
        settings.traces_compression,
    )
    return exporter


def metric_exporter(settings: ExportSettings) -> MetricExporter:
    """The OTLP metric exporter for these settings, with cumulative temporality."""
    headers = settings.headers if settings.headers is not None else settings.metrics_headers
    exporter: MetricExporter = _exporter(
        "metrics",
        settings.metrics_protocol,
        settings.metrics_endpoint,
        headers,
        settings.metrics_timeout,
        settings.metrics_compression,
    )
    return exporter
