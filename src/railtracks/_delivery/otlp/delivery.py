"""What becomes of a batch of finished spans: the delivery policy, with no thread of its own.

A ``BatchQueue`` worker calls these (they implement ``BatchSink``); the batch
processor composes the two.

* ``OtlpDelivery`` (railtracks' own OTLP route): a batch is encoded once and
  sent; a retryable refusal (429/503, a timeout) gets two quick retries with
  jittered backoff or the collector's ``Retry-After``; what is still refused,
  spans the queue sets aside, and what is left at exit go to the durable
  outbox. While the collector is down, batches go straight to the outbox and
  the collector is probed with backoff (up to 30 s); once it answers, the
  outbox (this process's and earlier ones') is delivered oldest first.
* ``ExporterDelivery`` (an SDK ``SpanExporter``, ``rt.configure(span_exporters=...)``):
  one ``export`` call per batch; what it does not take is counted as dropped.

Both count exported, spooled and dropped spans and report a problem once,
with those counts: while the process runs if it lasts, and at exit.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..._logs.log import warn_once
from .outbox import deliver_next
from .route import OtlpRoute, problem_message
from .send import SendResult, encode

QUICK_RETRIES: Final = 2
MAX_QUICK_DELAY: Final = 2.0
MAX_BACKOFF: Final = 30.0
ONGOING_PROBLEM_SECONDS: Final = 5.0
STUCK_SECONDS: Final = 1.5


class Delivery:
    """The counts and the one problem report shared by both policies."""

    keeps_overflow: ClassVar[bool] = False  # whether spans over the queue's bounds can be kept

    def __init__(self, label: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Start afresh (and again in a forked child: the parent's spans are the parent's)."""
        self.exported = self.spooled = self.dropped = self.failed = 0
        self.from_outbox = 0
        self.closing = threading.Event()
        self._reason: str | None = None  # the first problem, reported once with counts
        self._problem_since = 0.0
        self._reported: tuple[int, int, int] | None = None

    def after_fork_in_child(self) -> None:
        self.reset()

    # -- BatchSink, the parts both policies share -----------------------------------
    def started(self) -> None:
        return None

    def idle(self) -> None:
        return None

    def idle_due_in(self) -> float | None:
        return None

    def stuck(self) -> bool:
        return False

    def lost(self, items: int, error: Exception) -> None:
        self.dropped += items
        warn_once(f"export-bug:{self.label}", f"span export failed: {error!r}")

    def after_round(self) -> None:
        """A problem lasting while the process runs is reported once, with counts so far."""
        if (
            self._reason is None
            or self._reported is not None
            or self.closing.is_set()
            or self.clock() - self._problem_since < ONGOING_PROBLEM_SECONDS
        ):
            return
        self.report("so far; the run goes on and they are retried while the process lives")

    # -- the processor's side -------------------------------------------------------
    def queue_full(self, max_spans: int, max_bytes: int) -> None:
        """The queue refused a span (only when this policy cannot keep overflow)."""
        self.dropped += 1
        warn_once(
            f"export:{self.label}",
            f"export queue for {self.label} is full ({max_spans} spans or {max_bytes} bytes): "
            "dropping spans until the exporter catches up "
            "(raise OTEL_BSP_MAX_QUEUE_SIZE to keep more)",
        )

    def begin_closing(self) -> None:
        """No more retries or outbox deliveries: exit is under way."""
        self.closing.set()

    def waiting_since(self) -> float | None:
        """Since when the collector has made no progress on a request still open, if any."""
        return None

    def _problem(self, reason: str) -> None:
        if self._reason is None:
            self._reason, self._problem_since = reason, self.clock()

    def _outbox_directory(self) -> Path | None:
        return None

    def counts(self) -> tuple[int, int, int]:
        """``(exported, spooled, dropped)`` as the warning and the metrics give them."""
        return self.exported + self.from_outbox, self.spooled, self.dropped

    def report(self, status: str = "at exit") -> None:
        """One warning with the counts, if anything was spooled or dropped since the last."""
        counts = self.counts()
        if not (self.spooled or self.dropped) or counts == self._reported:
            return
        self._reported = counts
        warn_once(
            f"export:{self.label}:{status[:6]}:{os.getpid()}",
            problem_message(self.label, self._reason, counts, self._outbox_directory(), status),
        )


class ExporterDelivery(Delivery):
    """Batches go to an SDK ``SpanExporter``; what it refuses, or what is left at exit,
    is dropped."""

    def __init__(
        self, exporter: SpanExporter, label: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(label, clock)
        self.exporter = exporter

    def deliver(self, items: list[ReadableSpan]) -> None:
        try:
            result = self.exporter.export(items)
        except Exception as exc:  # an exporter that raises is a failed export, not a crash
            result = SpanExportResult.FAILURE
            reason = repr(exc)
        else:
            reason = "the exporter reported a failure"
        if result is SpanExportResult.SUCCESS:
            self.exported += len(items)
            return
        self.failed += len(items)
        self.dropped += len(items)
        self._problem(f"export failed: {reason}")

    def set_aside(self, items: list[ReadableSpan], over_bound: bool) -> None:
        self.dropped += len(items)  # nowhere to keep them

    def abandon(self, left: list[ReadableSpan], in_flight: int, batch_size: int) -> None:
        """At exit: what is still queued or being exported is dropped, counted."""
        self.dropped += len(left) + in_flight
        with contextlib.suppress(Exception):  # a broken exporter cannot stop cleanly
            self.exporter.shutdown()


class OtlpDelivery(Delivery):
    """Batches go to railtracks' OTLP route: sent with quick retries, else to the outbox."""

    keeps_overflow = True

    def __init__(
        self,
        route: OtlpRoute,
        label: str,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.route = route
        self.jitter = jitter
        super().__init__(label, clock)

    def reset(self) -> None:
        super().reset()
        self._lock = threading.Lock()  # the in-flight request, shared with abandon()
        self._in_flight_data: bytes | None = None
        self._in_flight_spans = 0
        self._in_flight_spooled: Path | None = None
        self._in_flight_since = 0.0
        self._last_export_at = 0.0
        self._down_until = 0.0
        self._backoff = 1.0
        self._backlog = True  # an earlier process may have left spans

    def after_fork_in_child(self) -> None:
        self.route.renew_sender()
        super().after_fork_in_child()

    # -- BatchSink ------------------------------------------------------------------
    def started(self) -> None:
        with contextlib.suppress(Exception):
            self.route.outbox.recover()

    def idle_due_in(self) -> float | None:
        if self._backlog and not self.closing.is_set():
            return self._down_until - self.clock()
        return None

    def stuck(self) -> bool:
        """Waiting on one request for longer than a collector should take."""
        since = self._in_flight_since
        return since > 0 and self.clock() - since > STUCK_SECONDS

    def deliver(self, items: list[ReadableSpan]) -> None:
        data = encode(items)
        if self.clock() < self._down_until:  # it failed a moment ago: keep it for later
            self._spool(items, "the collector is not answering", data=data)
            return
        with self._lock:
            self._in_flight_data, self._in_flight_spans = data, len(items)
            self._in_flight_spooled = None
        self._in_flight_since = self.clock()
        result = self._send_with_retries(data)
        self._in_flight_since = 0.0
        self._last_export_at = 0.0
        with self._lock:
            taken = self._in_flight_spooled
            self._in_flight_data = self._in_flight_spooled = None
        if taken is not None:  # exit already spooled this batch while it was in flight
            if result.ok and self.route.outbox.forget(taken):
                self.spooled -= len(items)
                self.exported += len(items)
            return
        if result.ok:
            self.exported += len(items)
            self._last_export_at = self.clock()
            self._down_until, self._backoff = 0.0, 1.0
            return
        self.failed += len(items)
        self._spool(items, result.reason, data=data)
        self._mark_down(result)

    def idle(self) -> None:
        """Deliver the oldest outbox batch once the collector is due to be tried again."""
        if not self._backlog or self.clock() < self._down_until:
            return
        route = self.route
        delivered, failure = deliver_next(route.outbox, route.sender, route.sender.timeout)
        if failure is not None:
            self._mark_down(failure)
        elif delivered:
            self.from_outbox += delivered
            self._down_until, self._backoff = 0.0, 1.0
        else:
            self._backlog = False

    def set_aside(self, items: list[ReadableSpan], over_bound: bool) -> None:
        self._spool(items, "the export queue is over its bound" if over_bound else "slow to answer")

    # -- retries and backoff ----------------------------------------------------------
    def _send_with_retries(self, data: bytes) -> SendResult:
        attempt = 0
        while True:
            result = self.route.sender.send(data)
            if result.ok or not result.retryable or attempt >= QUICK_RETRIES:
                return result
            if self._backoff > 1.0:  # a probe after a failure: one attempt, the outbox waits
                return result
            if self.closing.is_set():
                return result
            delay = result.retry_after
            if delay is None:
                delay = 0.25 * 2**attempt * (1 + self.jitter() / 2)
            if delay > MAX_QUICK_DELAY or self.closing.wait(delay):
                return result  # a long throttle, or exit: the outbox keeps it meanwhile
            attempt += 1

    def _mark_down(self, result: SendResult) -> None:
        delay = result.retry_after if result.retry_after is not None else self._backoff
        self._down_until = self.clock() + delay
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        self._backlog = True

    # -- the outbox -------------------------------------------------------------------
    def _spool(self, items: list[ReadableSpan], reason: str, data: bytes | None = None) -> None:
        outbox = self.route.outbox
        evicted = outbox.evicted_spans
        try:
            outbox.spool(data if data is not None else encode(items), len(items))
        except Exception as exc:  # disk full, unwritable directory: counted, never raised
            self.dropped += len(items)
            warn_once(
                f"outbox:{self.label}",
                f"cannot write the outbox {outbox.directory} ({exc!r}): spans for "
                f"{self.label} are dropped",
            )
            return
        self.spooled += len(items)
        self._backlog = True
        if outbox.evicted_spans != evicted:
            self.dropped += outbox.evicted_spans - evicted
            warn_once(
                f"outbox-full:{self.label}",
                f"the outbox {outbox.directory} reached its bound ({outbox.max_bytes} bytes): "
                f"the oldest spans are evicted ({outbox.evicted_spans} so far)",
            )
        self._problem(reason)

    def _outbox_directory(self) -> Path | None:
        return self.route.outbox.directory

    # -- exit -------------------------------------------------------------------------
    def waiting_since(self) -> float | None:
        since = self._in_flight_since
        return max(self._last_export_at, since) if since else None

    def abandon(self, left: list[ReadableSpan], in_flight: int, batch_size: int) -> None:
        """At exit: the request still open and what is still queued go to the outbox."""
        with self._lock:
            # under the lock, so the worker sees the spooled path as soon as its send
            # returns (and removes the file if the send succeeded)
            if self._in_flight_data is not None:
                self._spool_in_flight(self._in_flight_data, self._in_flight_spans)
                self._in_flight_data = None
        for start in range(0, len(left), batch_size):
            self._spool(left[start : start + batch_size], "exit")

    def _spool_in_flight(self, data: bytes, spans: int) -> None:
        try:
            path = self.route.outbox.spool(data, spans)
        except Exception:  # disk full: counted like any other drop
            self.dropped += spans
            return
        self._in_flight_spooled = path
        self.spooled += spans
