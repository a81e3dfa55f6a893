"""Export health, reported like everything else in railtracks (SPEC 5).

* ``ReportingMetricExporter`` wraps the OTLP metric exporter: a failed or
  raising export becomes one ``RT.Telemetry`` warning with a count, and never
  an exception in the SDK's reader thread or in ``rt.flush``.
* ``railtracks.spans.exported``, ``railtracks.spans.spooled`` and
  ``railtracks.spans.dropped``: observable counters read from the export
  processors (attribute ``railtracks.exporter``), so the hot path pays nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from .._logs.log import warn_once
from .otlp.batch import ReliableBatchSpanProcessor

SPANS_EXPORTED: Final = "railtracks.spans.exported"
SPANS_SPOOLED: Final = "railtracks.spans.spooled"
SPANS_DROPPED: Final = "railtracks.spans.dropped"
EXPORTER_ATTRIBUTE: Final = "railtracks.exporter"


class ReportingMetricExporter(MetricExporter):
    """Delegates to ``inner``; failures are counted and reported once, never raised."""

    def __init__(self, inner: MetricExporter, label: str) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.label = label
        self.exported = 0
        self.failed = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            reason = "the exporter reported a failure"
        except Exception as exc:  # the SDK's reader would log a traceback
            result, reason = MetricExportResult.FAILURE, repr(exc)
        if result is MetricExportResult.SUCCESS:
            self.exported += 1
        else:
            self.failed += 1
            warn_once(
                f"metrics:{self.label}",
                f"exporting metrics to {self.label} failed ({reason}); the run goes on "
                f"({self.exported} exports succeeded, {self.failed} failed so far; "
                "cumulative metrics catch up at the next successful export)",
            )
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        try:
            return bool(self.inner.force_flush(timeout_millis))
        except Exception:  # reported by export(); a flush never raises
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        try:
            self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
        except Exception:  # shutting down a broken exporter at exit must not raise
            return


def register_export_counters(
    meter: Meter, processors: Sequence[ReliableBatchSpanProcessor]
) -> None:
    """The three span counters, observed from ``processors`` at each metrics collection."""
    if not processors:
        return
    chosen = tuple(processors)

    def observe(field: str) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            for processor in chosen:
                value = getattr(processor, field)
                if field == "exported":
                    value += processor.from_outbox
                yield Observation(value, {EXPORTER_ATTRIBUTE: processor.label})

        return callback

    for name, field, description in (
        (SPANS_EXPORTED, "exported", "Spans the collector accepted (outbox deliveries included)"),
        (SPANS_SPOOLED, "spooled", "Spans written to the outbox for later delivery"),
        (SPANS_DROPPED, "dropped", "Spans lost: outbox full or unwritable, or exporter failed"),
    ):
        meter.create_observable_counter(name, [observe(field)], description=description)
