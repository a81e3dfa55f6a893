"""OTLP export settings from ``rt.configure`` and the standard ``OTEL_*`` variables (SPEC 5, 8).

Export is on when an endpoint is configured (``rt.configure(endpoint=...)``,
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and
not turned off (``OTEL_SDK_DISABLED=true``, ``OTEL_TRACES_EXPORTER=none``,
``rt.configure(export=False)``). The protocol is ``grpc`` unless set to
``http/protobuf``. Invalid values raise ``ConfigurationError`` naming the
variable, when the first session starts.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlparse

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from ._batch import DEFAULT_MAX_EXPORT_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE, DEFAULT_SCHEDULE_DELAY
from ._config import CONFIG
from .errors import ConfigurationError

Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS: Final = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL: Final[Protocol] = "grpc"


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


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _protocol(signal: str) -> Protocol:
    configured = CONFIG.telemetry.protocol
    if configured is not None:
        return configured  # type: ignore[return-value]  # validated by configure()
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = _env(name)
        if value is not None:
            if value not in PROTOCOLS:
                raise ConfigurationError(
                    f"{name}: unsupported protocol {value!r} (expected grpc or http/protobuf)"
                )
            return value  # type: ignore[return-value]  # checked against PROTOCOLS
    return DEFAULT_PROTOCOL


def _check_url(name: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigurationError(f"{name}: expected an http:// or https:// URL, got {value!r}")
    return value


def _endpoint(signal: str, protocol: Protocol) -> str | None:
    """The full endpoint for one signal; HTTP gets ``/v1/{signal}`` on a base URL."""
    path = f"/v1/{signal.lower()}"
    configured = CONFIG.telemetry.endpoint
    if configured is not None:
        base = _check_url("configure(endpoint=...)", configured)
    else:
        specific = _env(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
        if specific is not None:  # signal-specific endpoints are used exactly as given
            return _check_url(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", specific)
        general = _env("OTEL_EXPORTER_OTLP_ENDPOINT")
        if general is None:
            return None
        base = _check_url("OTEL_EXPORTER_OTLP_ENDPOINT", general)
    if protocol == "http/protobuf" and not base.rstrip("/").endswith(path):
        return base.rstrip("/") + path
    return base


def _flag(name: str) -> bool:
    value = _env(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise ConfigurationError(f"{name}: expected true or false, got {value!r}")
    return value.lower() == "true"


def _signal_enabled(name: str) -> bool:
    value = _env(name)
    if value is None or value.lower() == "otlp":
        return True
    if value.lower() == "none":
        return False
    raise ConfigurationError(f"{name}: railtracks exports with otlp or none, got {value!r}")


def _positive_int(name: str, default: int) -> int:
    value = _env(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigurationError(f"{name}: expected a positive integer, got {value!r}")
    return number


def export_settings() -> ExportSettings | None:
    """The OTLP settings in force, or None when nothing is exported over OTLP."""
    disabled = _flag("OTEL_SDK_DISABLED")
    traces_on = _signal_enabled("OTEL_TRACES_EXPORTER")
    metrics_on = _signal_enabled("OTEL_METRICS_EXPORTER")
    batch = _positive_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_EXPORT_BATCH_SIZE)
    queue = _positive_int("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE)
    delay_ms = _positive_int("OTEL_BSP_SCHEDULE_DELAY", int(DEFAULT_SCHEDULE_DELAY * 1000))
    traces_protocol = _protocol("TRACES")
    traces_endpoint = _endpoint("TRACES", traces_protocol)
    metrics_protocol = _protocol("METRICS")
    metrics_endpoint = _endpoint("METRICS", metrics_protocol)
    wanted = CONFIG.telemetry.export
    if wanted is False or disabled or (traces_endpoint is None and metrics_endpoint is None):
        return None
    return ExportSettings(
        protocol=traces_protocol,
        metrics_protocol=metrics_protocol,
        traces_endpoint=traces_endpoint,
        metrics_endpoint=metrics_endpoint,
        headers=CONFIG.telemetry.headers,
        traces=traces_on and traces_endpoint is not None,
        metrics=metrics_on and metrics_endpoint is not None,
        max_queue_size=queue,
        max_export_batch_size=min(batch, queue),
        schedule_delay=delay_ms / 1000,
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


def _exporter(
    settings: ExportSettings, signal: str, protocol: Protocol, endpoint: str | None
) -> Any:
    _quiet_exporter_logs()
    module, _, name = _EXPORTERS[(signal, protocol)].rpartition(".")
    exporter_class = getattr(importlib.import_module(module), name)
    headers = dict(settings.headers) if settings.headers is not None else None
    return exporter_class(endpoint=endpoint, headers=headers)


def span_exporter(settings: ExportSettings) -> SpanExporter:
    """The OTLP span exporter for these settings (gRPC or HTTP/protobuf)."""
    exporter: SpanExporter = _exporter(
        settings, "traces", settings.protocol, settings.traces_endpoint
    )
    return exporter


def metric_exporter(settings: ExportSettings) -> MetricExporter:
    """The OTLP metric exporter for these settings, with cumulative temporality."""
    exporter: MetricExporter = _exporter(
        settings, "metrics", settings.metrics_protocol, settings.metrics_endpoint
    )
    return exporter
