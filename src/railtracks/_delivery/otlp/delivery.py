"""What becomes of a batch of finished spans: the delivery policy, with no thread of its own.

A ``BatchQueue`` worker calls these (they implement ``BatchSink``); the batch
processor composes the two.

* ``OtlpDelivery`` (railtracks' own OTLP route): a batch is encoded once and
  sent in requests within the size limit (``drain``: too large is split, a
  span too large for any request or a batch refused for good is set aside in
  the quarantine); a retryable refusal (429/503, a connection failure) gets
  two quick retries with jittered backoff or the collector's ``Retry-After``;
  what is still refused, spans the queue sets aside, and what is left at exit
  go to the durable outbox. A request that timed out is never retried: its
  batch goes to the outbox *in doubt*, as does one still on the wire at exit.
  While the collector is down, batches go straight to the outbox and the
  collector is probed with backoff (up to 30 s); once it answers, the outbox
  (this process's and earlier ones') is delivered oldest first, in doubt
  batches left for ``railtracks outbox send --in-doubt``.
* ``ExporterDelivery`` (an SDK ``SpanExporter``, ``rt.configure(span_exporters=...)``):
  one ``export`` call per batch; what it does not take is counted as dropped.

Both count exported, spooled and dropped spans and report a problem once,
with those counts: while the process runs if it lasts, and at exit.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..._logs.log import warn_once
from .drain import EXITING, Batch, Drained, deliver_next, pieces
from .outbox import IN_DOUBT
from .reporting import Delivery
from .route import OtlpRoute
from .send import SendResult, encode
from .sizing import Piece

QUICK_RETRIES: Final = 2
MAX_QUICK_DELAY: Final = 2.0
MAX_BACKOFF: Final = 30.0
STUCK_SECONDS: Final = 1.5


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
        self._lock = threading.Lock()  # the batch being sent, shared with abandon()
        self._batch: Batch | None = None
        self._on_wire = False  # a request of the batch is being sent now
        self._taken: Path | None = None  # exit spooled the piece being sent, here
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
        batch = Batch(*pieces(data, len(items), self.route.limit.max_bytes))
        with self._lock:
            self._batch = batch
        self._in_flight_since = self.clock()
        batch.run(self._send_piece, self.route.limit, self._lock)
        self._in_flight_since = 0.0
        self._last_export_at = 0.0
        with self._lock:
            self._batch = None
        self.exported += batch.delivered
        for piece, reason in batch.set_aside:
            self._quarantine(piece, reason)
        if batch.abandoned:  # exit spooled the rest of this batch while it was being sent
            return
        failure = batch.failure
        if failure is None:
            if batch.delivered:
                self._last_export_at = self.clock()
                self._down_until, self._backoff = 0.0, 1.0
            return
        for doubt, settled in ((True, batch.in_doubt), (False, batch.left)):
            for piece in settled:
                self.failed += piece.spans
                self._spool_piece(piece, failure.reason, in_doubt=doubt)
        self._mark_down(failure)

    def _send_piece(self, piece: Piece) -> SendResult:
        result = self._send_with_retries(piece.data)
        with self._lock:
            taken, self._taken = self._taken, None
        if taken is None:
            return result
        outbox = self.route.outbox
        was_in_doubt = taken.name.endswith(IN_DOUBT)
        if result.ok:
            if outbox.forget(taken):  # delivered after all
                self.spooled -= piece.spans
                self.exported += piece.spans
                self.in_doubt_spans -= piece.spans if was_in_doubt else 0
        elif not result.in_doubt and was_in_doubt:
            outbox.clear_doubt(taken)  # refused, so certainly not taken: an ordinary batch
            self.in_doubt_spans -= piece.spans
        return result

    def idle(self) -> None:
        """Deliver the oldest outbox batch once the collector is due to be tried again."""
        if not self._backlog or self.clock() < self._down_until:
            return
        route = self.route
        drained = deliver_next(route.outbox, route.sender, route.sender.timeout, route.limit)
        self._note_outbox(drained)
        if drained.failure is not None:
            self._mark_down(drained.failure)
        elif drained.found:
            self._down_until, self._backoff = 0.0, 1.0
        else:
            self._backlog = False

    def _note_outbox(self, drained: Drained) -> None:
        self.from_outbox += drained.delivered
        self.set_aside_spans += drained.set_aside
        self.dropped += drained.dropped
        if drained.set_aside or drained.dropped:
            self._problem("a batch in the outbox was refused for good or too large")
        outbox = self.route.outbox
        if outbox.skipped or outbox.untrusted:
            what = outbox.untrusted or next(iter(outbox.skipped.values()))
            warn_once(
                f"outbox-untrusted:{self.label}",
                f"the outbox {outbox.directory} holds what railtracks did not write "
                f"({len(outbox.skipped) or 'the directory'}: {what}): skipped, never read or sent",
            )

    def set_aside(self, items: list[ReadableSpan], over_bound: bool) -> None:
        self._spool(items, "the export queue is over its bound" if over_bound else "slow to answer")

    # -- retries and backoff ----------------------------------------------------------
    def _attempt(self, data: bytes) -> SendResult:
        with self._lock:
            if self._batch is not None and self._batch.abandoned:
                return EXITING
            self._on_wire = True
        try:
            return self.route.sender.send(data)
        finally:
            self._on_wire = False

    def _send_with_retries(self, data: bytes) -> SendResult:
        attempt = 0
        while True:
            result = self._attempt(data)
            if result.ok or not result.retryable or result.in_doubt or attempt >= QUICK_RETRIES:
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
        if data is None:
            data = encode(items)
        fits, too_large = pieces(data, len(items), self.route.limit.max_bytes)
        for piece in too_large:
            self._quarantine(piece, "too-large")
        for piece in fits:
            self._spool_piece(piece, reason)

    def _spool_piece(self, piece: Piece, reason: str, *, in_doubt: bool = False) -> Path | None:
        outbox = self.route.outbox
        evicted = outbox.evicted_spans
        try:
            path = outbox.spool(piece.data, piece.spans, in_doubt=in_doubt)
        except Exception as exc:  # disk full, unwritable directory: counted, never raised
            self.dropped += piece.spans
            warn_once(
                f"outbox:{self.label}",
                f"cannot write the outbox {outbox.directory} ({exc!r}): spans for "
                f"{self.label} are dropped",
            )
            return None
        self.spooled += piece.spans
        self.in_doubt_spans += piece.spans if in_doubt else 0
        self._backlog = True
        if outbox.evicted_spans != evicted:
            self.dropped += outbox.evicted_spans - evicted
            warn_once(
                f"outbox-full:{self.label}",
                f"the outbox {outbox.directory} reached its bound ({outbox.max_bytes} bytes): "
                f"the oldest spans are evicted ({outbox.evicted_spans} so far)",
            )
        self._problem(reason)
        return path

    def _quarantine(self, piece: Piece, reason: str) -> None:
        """Set a piece aside: no request can carry it, or the collector refused it for good."""
        try:
            kept = self.route.outbox.set_aside(piece.data, piece.spans, reason)
        except Exception:  # disk full: counted like any other drop
            kept = False
        if kept:
            self.set_aside_spans += piece.spans
        else:
            self.dropped += piece.spans
        self._problem(
            "a span too large for any request" if reason == "too-large" else "refused for good"
        )

    def _outbox_directory(self) -> Path | None:
        return self.route.outbox.directory

    # -- exit -------------------------------------------------------------------------
    def waiting_since(self) -> float | None:
        since = self._in_flight_since
        return max(self._last_export_at, since) if since else None

    def abandon(self, left: list[ReadableSpan], in_flight: int, batch_size: int) -> None:
        """At exit: the batch being sent and what is still queued go to the outbox.

        The piece on the wire goes in doubt (the collector may take it yet).
        """
        with self._lock:
            # under the lock, so the worker sees the spooled path as soon as its send
            # returns (and removes the file if the send succeeded)
            batch = self._batch
            if batch is not None and not batch.abandoned:
                batch.abandoned = True
                for index, piece in enumerate(batch.todo):
                    sending = index == 0 and self._on_wire
                    path = self._spool_piece(piece, "exit", in_doubt=sending)
                    if index == 0:
                        self._taken = path
        for start in range(0, len(left), batch_size):
            self._spool(left[start : start + batch_size], "exit")
