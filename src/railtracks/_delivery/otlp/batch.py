"""A batch span processor that loses nothing silently and never stalls the run (SPEC 5).

* Spans queue without blocking the caller, bounded in spans (``max_queue_size``,
  default 262,144 or ``OTEL_BSP_MAX_QUEUE_SIZE``) and in estimated bytes
  (``max_queue_bytes``, default 64 MiB).
* One worker thread exports batches of ``max_export_batch_size``: when a batch
  is full, when a session ends, on ``force_flush``, at least every
  ``schedule_delay`` seconds.
* With an OTLP route (railtracks' own OTLP export) a batch is encoded once; a
  batch the collector refuses (error, timeout, 429/503 after two quick retries)
  and spans over the queue's bounds go to the durable outbox, and the worker
  delivers the outbox (this process's and earlier ones') whenever the collector
  takes spans again. Without one (``rt.configure(span_exporters=...)``), what
  cannot be exported is counted as dropped.
* ``close`` (at exit) keeps exporting while the collector makes progress, and
  spools the rest. Every problem is one warning with counts.

The processor only composes two pieces: ``batch_queue.BatchQueue`` (the queue
and its worker thread, knowing nothing of OTLP) and a policy from ``delivery``
(what becomes of a batch, with no thread of its own).
"""

from __future__ import annotations

import time
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from ..._recording import attributes as attr
from ..export import DEFAULT_MAX_EXPORT_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE, DEFAULT_SCHEDULE_DELAY
from .batch_queue import BatchQueue
from .delivery import ExporterDelivery, OtlpDelivery
from .route import OtlpRoute, estimate_bytes

DEFAULT_MAX_QUEUE_BYTES: Final = 64 * 1024 * 1024


class ReliableBatchSpanProcessor(SpanProcessor):
    """Exports finished, sampled spans in batches from a background thread."""

    def __init__(
        self,
        exporter: SpanExporter | None = None,
        *,
        label: str,
        route: OtlpRoute | None = None,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        max_export_batch_size: int = DEFAULT_MAX_EXPORT_BATCH_SIZE,
        schedule_delay: float = DEFAULT_SCHEDULE_DELAY,
    ) -> None:
        self.label = label
        self.delivery: OtlpDelivery | ExporterDelivery
        if route is not None:
            self.delivery = OtlpDelivery(route, label)
        elif exporter is not None:
            self.delivery = ExporterDelivery(exporter, label)
        else:
            raise ValueError("an exporter or an OTLP route is needed")
        self.queue: BatchQueue[ReadableSpan] = BatchQueue(
            self.delivery,
            name=f"railtracks-export-{label}",
            max_queue_size=max_queue_size,
            max_queue_bytes=max_queue_bytes,
            max_export_batch_size=max_export_batch_size,
            schedule_delay=schedule_delay,
            keep_overflow=self.delivery.keeps_overflow,
        )
        self._put = self.queue.put  # bound once: on_end runs for every span

    def after_fork_in_child(self) -> None:
        """Restart in a forked child: the parent's queued spans are the parent's to send."""
        self.delivery.after_fork_in_child()
        self.queue.start()

    # the counts, read by the export health metrics (``metric_reporting``) and tests
    @property
    def exported(self) -> int:
        """Spans the exporter took live (``from_outbox`` counts outbox deliveries)."""
        return self.delivery.exported

    @property
    def from_outbox(self) -> int:
        return self.delivery.from_outbox

    @property
    def spooled(self) -> int:
        return self.delivery.spooled

    @property
    def dropped(self) -> int:
        return self.delivery.dropped

    @property
    def failed(self) -> int:
        return self.delivery.failed

    # -- the run's threads ------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.queue.stopping or span.context is None or not span.context.trace_flags.sampled:
            return
        attributes = span.attributes or {}
        ends_session = attr.SESSION_ID in attributes and attr.NODE_NAME not in attributes
        if not self._put(span, estimate_bytes(span, attributes), ends_session):
            self.delivery.queue_full(self.queue.max_queue_size, self.queue.max_queue_bytes)

    def wake(self) -> None:
        """Ask the worker to export what is queued now rather than at its next tick."""
        self.queue.wake()

    # -- flush and shutdown -----------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until all queued so far is exported or spooled, at most ``timeout_millis``."""
        return self.queue.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self.close(stall_seconds=1.5, cap_seconds=2.0)

    def close(self, stall_seconds: float, cap_seconds: float) -> None:
        """Export what is queued while the collector keeps making progress, then stop.

        Gives up when nothing is exported for ``stall_seconds`` (a dead or
        hanging collector) or after ``cap_seconds`` in all (a slow one); what
        is left goes to the outbox (dropped, counted, without one). No retries
        and no outbox delivery while closing.
        """
        delivery, queue = self.delivery, self.queue
        delivery.begin_closing()
        queue.wake()
        started = last_progress = time.monotonic()
        waiting = delivery.waiting_since()  # waiting on the collector already: that time counts
        if waiting is not None:
            last_progress = waiting
        # progress is what the collector took: spooling is not the collector making progress
        last = delivery.exported
        while time.monotonic() - started < cap_seconds:
            if queue.flush(0.1):
                break
            if delivery.exported != last:
                last_progress, last = time.monotonic(), delivery.exported
            elif time.monotonic() - last_progress > stall_seconds:
                break
        left, in_flight = queue.stop()
        delivery.abandon(left, in_flight, queue.max_export_batch_size)
        queue.join(0.2)
        delivery.report()
