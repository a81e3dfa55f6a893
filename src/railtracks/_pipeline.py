"""Which processors railtracks feeds, built from the configuration in force.

* the console printer, always (it prints per each session's logging setting);
* OTLP span export through a non-dropping batch processor, when export is on
  and railtracks owns the provider (a host's provider exports on its own
  terms) or when ``rt.configure`` asked for it explicitly;
* each exporter given to ``rt.configure(span_exporters=...)``;
* run metrics, when there is somewhere for them to go: a host's global SDK
  ``MeterProvider``, OTLP export, or ``rt.configure(metric_readers=...)``.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from ._batch import ReliableBatchSpanProcessor
from ._config import CONFIG
from ._console import ConsoleSpanProcessor
from ._export import (
    ExportSettings,
    console_exporters,
    export_settings,
    metric_exporter,
    span_exporter,
)
from ._log import console_stream
from ._metrics import MetricsSpanProcessor
from ._version import __version__


@dataclasses.dataclass
class Pipeline:
    """The processors of one configuration, and what must be closed with them."""

    processors: list[SpanProcessor] = dataclasses.field(default_factory=list)
    closers: list[Callable[[], object]] = dataclasses.field(default_factory=list)
    meter_provider: SdkMeterProvider | None = None

    def flush_metrics(self, timeout_seconds: float) -> None:
        if self.meter_provider is not None:
            self.meter_provider.force_flush(int(timeout_seconds * 1000))

    def close(self, stall_seconds: float, cap_seconds: float) -> None:
        """Shut every part down in parallel, within ``cap_seconds``.

        Span exporters keep going while their collector accepts spans and stop
        after ``stall_seconds`` without progress; everything else (the last
        metrics export among them) gets ``stall_seconds``.
        """
        exporting = [
            threading.Thread(
                target=_quietly(functools.partial(p.close, stall_seconds, cap_seconds)),
                daemon=True,
            )
            for p in self.processors
            if isinstance(p, ReliableBatchSpanProcessor)
        ]
        others: list[Callable[[], object]] = [
            p.shutdown for p in self.processors if not isinstance(p, ReliableBatchSpanProcessor)
        ]
        rest = [
            threading.Thread(target=_quietly(job), daemon=True) for job in others + self.closers
        ]
        started = time.monotonic()
        for thread in exporting + rest:
            thread.start()
        for thread in exporting:  # each gives up on its own, by cap_seconds at the latest
            thread.join(max(started + cap_seconds - time.monotonic(), 0) + 0.2)
        for thread in rest:  # a metrics export to a dead collector only retries: not waited for
            thread.join(max(started + stall_seconds - time.monotonic(), 0))


def _quietly(job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # shutting down a broken exporter must not raise at exit
            return

    return run


def _batch(label: str, settings: ExportSettings | None, exporter: SpanExporter) -> SpanProcessor:
    if settings is None:
        return ReliableBatchSpanProcessor(exporter, label=label)
    return ReliableBatchSpanProcessor(
        exporter,
        label=label,
        max_queue_size=settings.max_queue_size,
        max_export_batch_size=settings.max_export_batch_size,
        schedule_delay=settings.schedule_delay,
    )


def _meter_provider(
    settings: ExportSettings | None,
    readers: list[MetricReader],
    resource: Resource,
    console: bool = False,
) -> tuple[metrics.MeterProvider | None, SdkMeterProvider | None]:
    """``(provider to record on, provider railtracks owns)``."""
    global_provider = metrics.get_meter_provider()
    if isinstance(global_provider, SdkMeterProvider):
        return global_provider, None
    if settings is not None and settings.metrics:
        readers = [
            PeriodicExportingMetricReader(
                metric_exporter(settings),
                export_interval_millis=settings.metric_export_interval_ms,
                export_timeout_millis=settings.metric_export_timeout_ms,
            ),
            *readers,
        ]
    if console:  # OTEL_METRICS_EXPORTER=console: JSON on stdout, like the SDK's
        readers = [PeriodicExportingMetricReader(ConsoleMetricExporter()), *readers]
    if not readers:
        return None, None
    owned = SdkMeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=False)
    return owned, owned


def build_pipeline(owns_tracer_provider: bool, resource: Resource) -> Pipeline:
    """The processors for the configuration in force (bad ``OTEL_*`` values warn, never raise)."""
    settings = export_settings()
    pipeline = Pipeline()
    pipeline.processors.append(ConsoleSpanProcessor(console_stream))
    explicit = CONFIG.telemetry.endpoint is not None or CONFIG.telemetry.export is True
    if settings is not None and settings.traces and (owns_tracer_provider or explicit):
        label = f"{settings.traces_endpoint} ({settings.protocol})"
        pipeline.processors.append(_batch(label, settings, span_exporter(settings)))
    console_traces, console_metrics = console_exporters()
    if console_traces and owns_tracer_provider:  # OTEL_TRACES_EXPORTER=console (SDK format)
        pipeline.processors.append(_batch("console", settings, ConsoleSpanExporter()))
    for exporter in CONFIG.telemetry.span_exporters:
        pipeline.processors.append(_batch(type(exporter).__name__, settings, exporter))
    recording, owned = _meter_provider(
        settings if (owns_tracer_provider or explicit) else None,
        list(CONFIG.telemetry.metric_readers),
        resource,
        console=console_metrics and owns_tracer_provider,
    )
    if recording is not None:
        meter = recording.get_meter("railtracks", __version__)
        pipeline.processors.append(MetricsSpanProcessor(meter))
    if owned is not None:
        pipeline.meter_provider = owned
        pipeline.closers.append(owned.shutdown)
    return pipeline
