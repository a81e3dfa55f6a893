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
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import threading
import time
from pathlib import Path
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..._logs.log import warn_once
from ..._recording import attributes as attr
from ..export import DEFAULT_MAX_EXPORT_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE, DEFAULT_SCHEDULE_DELAY
from .outbox import deliver_next
from .route import OtlpRoute, estimate_bytes, problem_message
from .send import SendResult, encode

DEFAULT_MAX_QUEUE_BYTES: Final = 64 * 1024 * 1024
_QUICK_RETRIES: Final = 2
_MAX_QUICK_DELAY: Final = 2.0
_MAX_BACKOFF: Final = 30.0
ONGOING_PROBLEM_SECONDS: Final = 5.0
STUCK_SECONDS: Final = 1.5


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
        if exporter is None and route is None:
            raise ValueError("an exporter or an OTLP route is needed")
        self.exporter = exporter
        self.route = route
        self.label = label
        self.max_queue_size = max_queue_size
        self.max_queue_bytes = max_queue_bytes
        self.max_export_batch_size = max_export_batch_size
        self.schedule_delay = schedule_delay
        self._queue: collections.deque[tuple[ReadableSpan, int]] = collections.deque()
        self._start()

    def _start(self) -> None:
        self.exported = self.spooled = self.dropped = self.failed = 0
        self.from_outbox = 0
        self._queue.clear()
        self._bytes = 0
        self._condition = threading.Condition(threading.Lock())
        self._bytes_lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self._closing = threading.Event()
        self._wake_requested = False
        self._in_flight = 0
        self._in_flight_data: bytes | None = None
        self._in_flight_since = 0.0
        self._last_export_at = 0.0
        self._in_flight_spooled: Path | None = None
        self._stopping = False
        self._down_until = 0.0
        self._backoff = 1.0
        self._backlog = self.route is not None  # an earlier process may have left spans
        self._reason: str | None = None  # the first problem, reported once with counts
        self._problem_since = 0.0
        self._reported: tuple[int, int, int] | None = None
        self._worker = threading.Thread(
            target=self._work, name=f"railtracks-export-{self.label}", daemon=True
        )
        self._worker.start()

    def after_fork_in_child(self) -> None:
        """Restart in a forked child: the parent's queued spans are the parent's to send."""
        if self.route is not None:
            self.route.renew_sender()
        self._start()

    # -- producer side (the run's threads) ------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping or span.context is None or not span.context.trace_flags.sampled:
            return
        attributes = span.attributes or {}
        size = estimate_bytes(span, attributes)
        with self._bytes_lock:
            over = len(self._queue) >= self.max_queue_size or self._bytes > self.max_queue_bytes
            if not over or self.route is not None:
                self._bytes += size
        if over and self.route is None:
            self.dropped += 1
            warn_once(
                f"export:{self.label}",
                f"export queue for {self.label} is full ({self.max_queue_size} spans or "
                f"{self.max_queue_bytes} bytes): dropping spans until the exporter catches up "
                "(raise OTEL_BSP_MAX_QUEUE_SIZE to keep more)",
            )
            return
        queue = self._queue
        queue.append((span, size))  # deque.append is atomic: no condition lock on the hot path
        if over:
            self._start_spill()
            return
        ends_session = attr.SESSION_ID in attributes and attr.NODE_NAME not in attributes
        queued = len(queue)
        if ends_session or queued == self.max_export_batch_size:
            self.wake()
        elif queued % self.max_export_batch_size == 0 and self._stuck():
            self._start_spill()

    def _stuck(self) -> bool:
        """The worker has been waiting on one request for longer than a collector should take."""
        since = self._in_flight_since
        return self.route is not None and since > 0 and time.monotonic() - since > STUCK_SECONDS

    def wake(self) -> None:
        """Ask the worker to export what is queued now rather than at its next tick."""
        with self._condition:
            self._wake_requested = True
            self._condition.notify_all()

    def _take(self, count: int) -> list[tuple[ReadableSpan, int]]:
        with self._condition:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), count))]
        with self._bytes_lock:
            self._bytes -= sum(size for _, size in batch)
        return batch

    def _start_spill(self) -> None:
        """Spool from a helper thread (never the run's), one at a time."""
        if self._spill_lock.acquire(blocking=False):
            threading.Thread(target=self._spill, name="railtracks-spill", daemon=True).start()

    def _spill(self) -> None:
        """Move the oldest spans to the outbox while the queue is over half its bounds, or
        while the worker is stuck on a hanging collector (so exit has little left to do)."""
        try:
            while True:
                over = (
                    len(self._queue) > self.max_queue_size // 2
                    or self._bytes > self.max_queue_bytes // 2
                )
                stuck = self._stuck() and len(self._queue) >= self.max_export_batch_size
                if not (over or stuck) or self._stopping:
                    break
                batch = self._take(self.max_export_batch_size)
                if not batch:
                    break
                reason = "the export queue is over its bound" if over else "slow to answer"
                self._spool([span for span, _ in batch], reason)
        finally:
            self._spill_lock.release()

    # -- consumer side (the worker thread) ------------------------------------------
    def _idle_wait(self) -> float:
        if self._backlog and not self._closing.is_set():
            return max(min(self._down_until - time.monotonic(), self.schedule_delay), 0.0)
        return self.schedule_delay

    def _work(self) -> None:
        if self.route is not None:
            with contextlib.suppress(Exception):
                self.route.outbox.recover()
        while True:
            with self._condition:
                if not self._queue and not self._stopping:
                    self._condition.wait_for(
                        lambda: self._wake_requested or self._stopping, self._idle_wait()
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
            with self._bytes_lock:
                self._bytes -= sum(size for _, size in batch)
            try:
                if batch:
                    self._export([span for span, _ in batch])
                elif self._backlog and time.monotonic() >= self._down_until:
                    self._drain_outbox()
            except Exception as exc:  # the worker must outlive any bug below it
                self.dropped += len(batch)
                warn_once(f"export-bug:{self.label}", f"span export failed: {exc!r}")
            with self._condition:
                self._in_flight = 0
                self._condition.notify_all()
            self._report_ongoing()

    def _export(self, batch: list[ReadableSpan]) -> None:
        if self.route is None:
            self._export_with_sdk(batch)
            return
        data = encode(batch)
        if time.monotonic() < self._down_until:  # it failed a moment ago: keep it for later
            self._spool(batch, "the collector is not answering", data=data)
            return
        with self._condition:
            self._in_flight_data, self._in_flight_spooled = data, None
        self._in_flight_since = time.monotonic()
        result = self._send_with_retries(data)
        self._in_flight_since = 0.0
        self._last_export_at = 0.0
        with self._condition:
            taken = self._in_flight_spooled
            self._in_flight_data = self._in_flight_spooled = None
        if taken is not None:  # exit already spooled this batch while it was in flight
            if result.ok and self.route.outbox.forget(taken):
                self.spooled -= len(batch)
                self.exported += len(batch)
            return
        if result.ok:
            self.exported += len(batch)
            self._last_export_at = time.monotonic()
            self._down_until, self._backoff = 0.0, 1.0
            return
        self.failed += len(batch)
        self._spool(batch, result.reason, data=data)
        self._mark_down(result)

    def _send_with_retries(self, data: bytes) -> SendResult:
        assert self.route is not None  # only called on the OTLP route
        attempt = 0
        while True:
            result = self.route.sender.send(data)
            if result.ok or not result.retryable or attempt >= _QUICK_RETRIES:
                return result
            if self._backoff > 1.0:  # a probe after a failure: one attempt, the outbox waits
                return result
            if self._closing.is_set():
                return result
            delay = result.retry_after
            if delay is None:
                delay = 0.25 * 2**attempt * (1 + random.random() / 2)  # jitter
            if delay > _MAX_QUICK_DELAY or self._closing.wait(delay):
                return result  # a long throttle, or exit: the outbox keeps it meanwhile
            attempt += 1

    def _mark_down(self, result: SendResult) -> None:
        delay = result.retry_after if result.retry_after is not None else self._backoff
        self._down_until = time.monotonic() + delay
        self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
        self._backlog = True

    def _spool(self, batch: list[ReadableSpan], reason: str, data: bytes | None = None) -> None:
        assert self.route is not None  # only called on the OTLP route
        outbox = self.route.outbox
        evicted = outbox.evicted_spans
        try:
            outbox.spool(data if data is not None else encode(batch), len(batch))
        except Exception as exc:  # disk full, unwritable directory: counted, never raised
            self.dropped += len(batch)
            warn_once(
                f"outbox:{self.label}",
                f"cannot write the outbox {outbox.directory} ({exc!r}): spans for "
                f"{self.label} are dropped",
            )
            return
        self.spooled += len(batch)
        self._backlog = True
        if outbox.evicted_spans != evicted:
            self.dropped += outbox.evicted_spans - evicted
            warn_once(
                f"outbox-full:{self.label}",
                f"the outbox {outbox.directory} reached its bound ({outbox.max_bytes} bytes): "
                f"the oldest spans are evicted ({outbox.evicted_spans} so far)",
            )
        if self._reason is None:
            self._reason, self._problem_since = reason, time.monotonic()

    def _drain_outbox(self) -> None:
        assert self.route is not None  # only called on the OTLP route
        route = self.route
        delivered, failure = deliver_next(route.outbox, route.sender, route.sender.timeout)
        if failure is not None:
            self._mark_down(failure)
        elif delivered:
            self.from_outbox += delivered
            self._down_until, self._backoff = 0.0, 1.0
        else:
            self._backlog = False

    def _export_with_sdk(self, batch: list[ReadableSpan]) -> None:
        assert self.exporter is not None  # no route means an exporter
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
        self.dropped += len(batch)
        if self._reason is None:
            self._reason, self._problem_since = f"export failed: {reason}", time.monotonic()

    # -- flush and shutdown -----------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until all queued so far is exported or spooled, at most ``timeout_millis``."""
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

    def _progress(self) -> int:
        # what the collector took: spooling is not the collector making progress
        return self.exported

    def close(self, stall_seconds: float, cap_seconds: float) -> None:
        """Export what is queued while the collector keeps making progress, then stop.

        Gives up when nothing is exported or spooled for ``stall_seconds`` (a dead
        or hanging collector) or after ``cap_seconds`` in all (a slow one); what
        is left goes to the outbox (dropped, counted, without one). No retries
        and no outbox delivery while closing.
        """
        self._closing.set()
        self.wake()
        started = last_progress = time.monotonic()
        if self._in_flight_since:  # waiting on the collector already: that time counts
            last_progress = max(self._last_export_at, self._in_flight_since)
        last = self._progress()
        while time.monotonic() - started < cap_seconds:
            if self.force_flush(100):
                break
            if self._progress() != last:
                last_progress, last = time.monotonic(), self._progress()
            elif time.monotonic() - last_progress > stall_seconds:
                break
        with self._condition:
            self._stopping = True
            left = [span for span, _ in self._queue]
            self._queue.clear()
            if self._in_flight_data is not None:  # the worker is stuck sending it
                self._spool_in_flight(self._in_flight_data)
                self._in_flight_data = None
            self._condition.notify_all()
        if self.route is not None:
            for start in range(0, len(left), self.max_export_batch_size):
                self._spool(left[start : start + self.max_export_batch_size], "exit")
        else:
            self.dropped += len(left) + self._in_flight
            with contextlib.suppress(Exception):  # a broken exporter cannot stop cleanly
                self.exporter.shutdown()  # type: ignore[union-attr]  # no route means an exporter
        self._worker.join(0.2)
        self._report()

    def _spool_in_flight(self, data: bytes) -> None:
        # called with the condition held, so the worker sees the spooled path
        # as soon as its send returns (and removes the file if the send succeeded)
        assert self.route is not None  # only called on the OTLP route
        spans = self._in_flight
        try:
            path = self.route.outbox.spool(data, spans)
        except Exception:  # disk full: counted like any other drop
            self.dropped += spans
            return
        self._in_flight_spooled = path
        self.spooled += spans

    def _counts(self) -> tuple[int, int, int]:
        return self.exported + self.from_outbox, self.spooled, self.dropped

    def _report_ongoing(self) -> None:
        """A problem lasting while the process runs is reported once, with counts so far."""
        if (
            self._reason is None
            or self._reported is not None
            or self._closing.is_set()
            or time.monotonic() - self._problem_since < ONGOING_PROBLEM_SECONDS
        ):
            return
        self._report("so far; the run goes on and they are retried while the process lives")

    def _report(self, status: str = "at exit") -> None:
        counts = self._counts()
        if not (self.spooled or self.dropped) or counts == self._reported:
            return
        self._reported = counts
        outbox = self.route.outbox.directory if self.route is not None else None
        warn_once(
            f"export:{self.label}:{status[:6]}:{os.getpid()}",
            problem_message(self.label, self._reason, counts, outbox, status),
        )
