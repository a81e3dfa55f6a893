"""A batch span processor that loses nothing silently and never stalls the run.

The SDK's ``BatchSpanProcessor`` drops every span that arrives while its
2,048-span queue is full (about half of a 20,000-call burst). This one:

* queues up to ``max_queue_size`` spans (default 262,144, or
  ``OTEL_BSP_MAX_QUEUE_SIZE``) without blocking the caller;
* exports in batches of ``max_export_batch_size`` from one worker thread, as
  soon as a batch is full, when a session ends, on ``force_flush``, and at
  least every ``schedule_delay`` seconds;
* counts and reports (once, as a warning) any span it must drop because the
  queue is full or the exporter failed.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import _attributes as attr
from ._log import warn_once

DEFAULT_MAX_QUEUE_SIZE: Final = 262_144
DEFAULT_MAX_EXPORT_BATCH_SIZE: Final = 512
DEFAULT_SCHEDULE_DELAY: Final = 1.0


class ReliableBatchSpanProcessor(SpanProcessor):
    """Exports finished, sampled spans in batches from a background thread."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        label: str,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        max_export_batch_size: int = DEFAULT_MAX_EXPORT_BATCH_SIZE,
        schedule_delay: float = DEFAULT_SCHEDULE_DELAY,
    ) -> None:
        self.exporter = exporter
        self.label = label
        self.max_queue_size = max_queue_size
        self.max_export_batch_size = max_export_batch_size
        self.schedule_delay = schedule_delay
        self.dropped = 0
        self.exported = 0
        self.failed = 0
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._condition = threading.Condition(threading.Lock())
        self._wake_requested = False
        self._in_flight = 0
        self._stopping = False
        self._worker = threading.Thread(
            target=self._work, name=f"railtracks-export-{label}", daemon=True
        )
        self._worker.start()

    # -- producer side (the run's threads) ------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping or span.context is None or not span.context.trace_flags.sampled:
            return
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self.dropped += 1
            warn_once(
                f"export:{self.label}",
                f"export queue for {self.label} is full ({self.max_queue_size} spans): dropping "
                "spans until the exporter catches up (raise OTEL_BSP_MAX_QUEUE_SIZE to keep more)",
            )
            return
        queue.append(span)  # deque.append is atomic: no lock on the hot path
        attributes = span.attributes or {}
        ends_session = attr.SESSION_ID in attributes and attr.NODE_NAME not in attributes
        if ends_session or len(queue) == self.max_export_batch_size:
            self.wake()

    def wake(self) -> None:
        """Ask the worker to export what is queued now rather than at its next tick."""
        with self._condition:
            self._wake_requested = True
            self._condition.notify_all()

    # -- consumer side (the worker thread) ------------------------------------------
    def _work(self) -> None:
        while True:
            with self._condition:
                if not self._queue and not self._stopping:
                    self._condition.wait_for(
                        lambda: self._wake_requested or self._stopping, self.schedule_delay
                    )
                self._wake_requested = False
                if self._stopping and not self._queue:
                    self._condition.notify_all()
                    return
                batch = [
                    self._queue.popleft()
                    for _ in range(min(len(self._queue), self.max_export_batch_size))
                ]
                self._in_flight = len(batch)
            if batch:
                self._export(batch)
            with self._condition:
                self._in_flight = 0
                self._condition.notify_all()

    def _export(self, batch: list[ReadableSpan]) -> None:
        try:
            result = self.exporter.export(batch)
        except Exception as exc:  # an exporter that raises is a failed export, not a crash
            result = SpanExportResult.FAILURE
            reason = repr(exc)
        else:
            reason = "the exporter reported a failure"
        if result is SpanExportResult.SUCCESS:
            self.exported += len(batch)
            return
        self.failed += len(batch)
        warn_once(
            f"export:{self.label}",
            f"exporting spans to {self.label} failed ({reason}); the run goes on, and spans "
            "are dropped while the collector is unreachable",
        )

    # -- flush and shutdown -----------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until everything queued so far is exported, at most ``timeout_millis``."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._condition:
            self._wake_requested = True
            self._condition.notify_all()
            return self._condition.wait_for(
                lambda: (not self._queue and not self._in_flight) or not self._worker.is_alive(),
                max(deadline - time.monotonic(), 0),
            )

    def shutdown(self) -> None:
        self.close(stall_seconds=1.5, cap_seconds=2.0)

    def close(self, stall_seconds: float, cap_seconds: float) -> None:
        """Export what is queued while the exporter keeps making progress, then stop.

        Gives up when the exporter accepts nothing for ``stall_seconds`` (a dead
        collector) or after ``cap_seconds`` in all (a slow one); what is left is
        counted as dropped, with one warning. Stopping the exporter also aborts
        its retry back-off.
        """
        started = time.monotonic()
        last_progress, last_exported = started, self.exported
        budget = max(stall_seconds - 0.4, 0.1)
        while time.monotonic() - started < cap_seconds:
            if self.force_flush(100):
                break
            if self.exported != last_exported:
                last_progress, last_exported = time.monotonic(), self.exported
            elif time.monotonic() - last_progress > budget:
                break
        with self._condition:
            self._stopping = True
            left = len(self._queue) + self._in_flight
            self._queue.clear()
            self._condition.notify_all()
        with contextlib.suppress(Exception):  # a broken exporter cannot stop cleanly
            self.exporter.shutdown()
        self._worker.join(0.3)
        if left:
            self.dropped += left
            warn_once(
                f"export:{self.label}",
                f"{left} spans were not exported to {self.label}: it did not answer in time",
            )
