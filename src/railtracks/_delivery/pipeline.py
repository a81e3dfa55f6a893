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
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from .._config import CONFIG
from .._logs.sinks import console_stream
from .._version import __version__
from ..errors import ConfigurationError
from .console import ConsoleSpanProcessor
from .export import ExportSettings, console_exporters, export_settings, metric_exporter
from .metrics import MetricsSpanProcessor

if TYPE_CHECKING:
    # the metrics SDK (~20 ms to import) loads only when metrics go somewhere; the
    # export chain (the batch processor, the outbox, http.client) only when spans are exported
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader

    from .metric_reporting import ReportingMetricExporter
    from .otlp.batch import ReliableBatchSpanProcessor
    from .otlp.route import OtlpRoute

EXIT_CAP_SECONDS = 10.0
ENV_EXIT_SECONDS = "RAILTRACKS_EXPORT_EXIT_SECONDS"
# time for a processor that gave up on its collector to write the rest to the outbox
_SPOOL_GRACE = 5.0
_METRICS_GRACE = 0.5


@dataclasses.dataclass
class Pipeline:
    """The processors of one configuration, and what must be closed with them."""

    processors: list[SpanProcessor] = dataclasses.field(default_factory=list)
    exporting: list[ReliableBatchSpanProcessor] = dataclasses.field(default_factory=list)
    closers: list[Callable[[], object]] = dataclasses.field(default_factory=list)
    meter_provider: SdkMeterProvider | None = None
    metric_exporters: list[ReportingMetricExporter] = dataclasses.field(default_factory=list)

    def add_exporting(self, processor: ReliableBatchSpanProcessor) -> None:
        self.processors.append(processor)
        self.exporting.append(processor)

    def flush_metrics(self, timeout_seconds: float) -> bool:
        """Export metrics now, at most ``timeout_seconds``, from a thread: never raises."""
        provider = self.meter_provider
        if provider is None:
            return True
        done: list[bool] = []
        failures = sum(exporter.failed for exporter in self.metric_exporters)

        def flush() -> None:
            try:
                flushed = bool(provider.force_flush(int(timeout_seconds * 1000)))
            except Exception:  # the SDK raises on a failed export; reported by the exporter wrapper
                flushed = False
            # the SDK reports success even when its exporter failed
            done.append(flushed and sum(e.failed for e in self.metric_exporters) == failures)

        thread = threading.Thread(target=flush, name="railtracks-metrics-flush", daemon=True)
        thread.start()
        thread.join(timeout_seconds)
        return bool(done and done[0])

    def after_fork_in_child(self) -> None:
        for processor in self.exporting:
            processor.after_fork_in_child()

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
            for p in self.exporting
        ]
        others: list[Callable[[], object]] = [
            p.shutdown for p in self.processors if p not in self.exporting
        ]
        rest = [
            threading.Thread(target=_quietly(job), daemon=True) for job in others + self.closers
        ]
        started = time.monotonic()
        for thread in exporting + rest:
            thread.start()
        for thread in exporting:  # each gives up on its own, then spools what is left
            thread.join(max(started + cap_seconds - time.monotonic(), 0) + _SPOOL_GRACE)
        # a metrics export to a dead collector only retries: it gets what the span
        # exporters took, plus a little, up to the stall time
        until = min(started + stall_seconds, time.monotonic() + _METRICS_GRACE)
        for thread in rest:
            thread.join(max(until - time.monotonic(), 0))


def _quietly(job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # shutting down a broken exporter must not raise at exit
            return

    return run


def _batch(
    label: str,
    settings: ExportSettings | None,
    exporter: SpanExporter | None = None,
    route: OtlpRoute | None = None,
) -> ReliableBatchSpanProcessor:
    from .otlp.batch import ReliableBatchSpanProcessor  # noqa: PLC0415  # see TYPE_CHECKING above

    if settings is None:
        return ReliableBatchSpanProcessor(exporter, label=label, route=route)
    return ReliableBatchSpanProcessor(
        exporter,
        label=label,
        route=route,
        max_queue_size=settings.max_queue_size,
        max_export_batch_size=settings.max_export_batch_size,
        schedule_delay=settings.schedule_delay,
    )


def otlp_route(settings: ExportSettings) -> OtlpRoute:
    """railtracks' own OTLP trace export: the sender and the outbox of that endpoint."""
    from .otlp.outbox import Outbox, max_bytes_from_env  # noqa: PLC0415
    from .otlp.route import OtlpRoute  # noqa: PLC0415  # see TYPE_CHECKING above

    endpoint = settings.traces_endpoint
    assert endpoint is not None  # only built when traces are exported
    headers = dict(settings.headers) if settings.headers is not None else None
    root = CONFIG.state_dir() / "outbox"
    outbox = Outbox(root, endpoint, settings.protocol, max_bytes_from_env())
    return OtlpRoute(endpoint, settings.protocol, headers, outbox)


def _meter_provider(
    settings: ExportSettings | None,
    readers: list[MetricReader],
    resource: Resource,
    reporting: list[ReportingMetricExporter],
    console: bool = False,
) -> tuple[metrics.MeterProvider | None, SdkMeterProvider | None]:
    """``(provider to record on, provider railtracks owns)``."""
    global_provider = metrics.get_meter_provider()
    # a host's SDK provider can only exist once the host imported the metrics SDK
    sdk = sys.modules.get("opentelemetry.sdk.metrics")
    if sdk is not None and isinstance(global_provider, sdk.MeterProvider):
        return global_provider, None
    wanted = (settings is not None and settings.metrics) or console or readers
    if not wanted:
        return None, None
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    from .metric_reporting import ReportingMetricExporter  # noqa: PLC0415

    if settings is not None and settings.metrics:
        label = f"{settings.metrics_endpoint} ({settings.metrics_protocol})"
        reporting.append(ReportingMetricExporter(metric_exporter(settings), label))
        readers = [
            PeriodicExportingMetricReader(
                reporting[-1],
                export_interval_millis=settings.metric_export_interval_ms,
                export_timeout_millis=settings.metric_export_timeout_ms,
            ),
            *readers,
        ]
    if console:  # OTEL_METRICS_EXPORTER=console: JSON on stdout, like the SDK's
        readers = [PeriodicExportingMetricReader(ConsoleMetricExporter()), *readers]
    owned = SdkMeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=False)
    return owned, owned


def exit_cap_seconds(*, strict: bool = False) -> float:
    """``RAILTRACKS_EXPORT_EXIT_SECONDS``: how long exit exports while the collector progresses.

    Checked strictly when a pipeline is built (a clear error naming the
    variable); at exit an invalid value means the default.
    """
    raw = os.environ.get(ENV_EXIT_SECONDS, "").strip()
    if not raw:
        return EXIT_CAP_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if 0 <= value < float("inf"):
        return value
    if strict:
        raise ConfigurationError(
            f"{ENV_EXIT_SECONDS}: expected a number of seconds (0 or more), got {raw!r}"
        )
    return EXIT_CAP_SECONDS


def build_pipeline(owns_tracer_provider: bool, resource: Resource) -> Pipeline:
    """The processors for the configuration in force (bad ``OTEL_*`` values warn, never raise)."""
    settings = export_settings()
    exit_cap_seconds(strict=True)
    pipeline = Pipeline()
    pipeline.processors.append(ConsoleSpanProcessor(console_stream))
    explicit = CONFIG.telemetry.endpoint is not None or CONFIG.telemetry.export is True
    if settings is not None and settings.traces and (owns_tracer_provider or explicit):
        label = f"{settings.traces_endpoint} ({settings.protocol})"
        pipeline.add_exporting(_batch(label, settings, route=otlp_route(settings)))
    console_traces, console_metrics = console_exporters()
    if console_traces and owns_tracer_provider:  # OTEL_TRACES_EXPORTER=console (SDK format)
        pipeline.add_exporting(_batch("console", settings, ConsoleSpanExporter()))
    for exporter in CONFIG.telemetry.span_exporters:
        pipeline.add_exporting(_batch(type(exporter).__name__, settings, exporter))
    recording, owned = _meter_provider(
        settings if (owns_tracer_provider or explicit) else None,
        list(CONFIG.telemetry.metric_readers),
        resource,
        pipeline.metric_exporters,
        console=console_metrics and owns_tracer_provider,
    )
    if recording is not None:
        from .metric_reporting import register_export_counters  # noqa: PLC0415  # see above

        meter = recording.get_meter("railtracks", __version__)
        pipeline.processors.append(MetricsSpanProcessor(meter))
        register_export_counters(meter, pipeline.exporting)
    if owned is not None:
        pipeline.meter_provider = owned
        pipeline.closers.append(owned.shutdown)
    return pipeline
