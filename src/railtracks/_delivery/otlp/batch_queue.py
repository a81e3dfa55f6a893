"""The queue and worker thread of a batch processor, knowing nothing of what a batch becomes.

``BatchQueue`` takes items from any thread without blocking, bounded in items
and in estimated bytes, and hands them in batches to a ``BatchSink`` from one
worker thread: when a batch is full, when asked (``wake``), on ``flush``, and at
least every ``schedule_delay`` seconds. What the sink does with a batch (send
it, retry it, spool it) is the sink's business; the queue only asks it a few
questions (is it stuck? when does it want its idle turn?).

Over its bounds the queue either refuses an item (the caller counts the drop)
or, when the sink can keep what it cannot send now (``keep_overflow``),
accepts it and moves the oldest batches to ``BatchSink.set_aside`` from a
helper thread until the queue is back under half its bounds.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class BatchSink(Protocol[T]):
    """What a ``BatchQueue`` hands its batches to; called from its worker or helper thread."""

    def started(self) -> None:
        """The worker thread runs: called on it once, before the first batch."""

    def deliver(self, items: list[T]) -> None:
        """One batch, at most ``max_export_batch_size`` items."""

    def idle(self) -> None:
        """The worker woke with nothing queued."""

    def idle_due_in(self) -> float | None:
        """Seconds until the sink wants its next ``idle`` call, None for no hurry."""

    def stuck(self) -> bool:
        """Whether ``deliver`` has been waiting longer than it should."""

    def set_aside(self, items: list[T], over_bound: bool) -> None:
        """Keep a batch for later without delivering it (the queue is over half its
        bounds, ``over_bound``, or the sink is stuck)."""

    def lost(self, items: int, error: Exception) -> None:
        """``deliver`` or ``idle`` raised: the batch of ``items`` is gone."""

    def after_round(self) -> None:
        """The worker finished one batch or idle turn."""


class BatchQueue(Generic[T]):
    """A bounded, non-blocking queue drained in batches into a sink by one worker thread."""

    def __init__(
        self,
        sink: BatchSink[T],
        *,
        name: str,
        max_queue_size: int,
        max_queue_bytes: int,
        max_export_batch_size: int,
        schedule_delay: float,
        keep_overflow: bool,
    ) -> None:
        self.sink = sink
        self.name = name
        self.max_queue_size = max_queue_size
        self.max_queue_bytes = max_queue_bytes
        self.max_export_batch_size = max_export_batch_size
        self.schedule_delay = schedule_delay
        self.keep_overflow = keep_overflow
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self.start()

    def start(self) -> None:
        """Start empty with a new worker thread (again in a forked child, whose
        locks and thread the parent's state cannot be trusted for)."""
        self._items.clear()
        self._bytes = 0
        self._condition = threading.Condition(threading.Lock())
        self._bytes_lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self._wake_requested = False
        self._in_flight = 0
        self.stopping = False
        self._worker = threading.Thread(target=self._work, name=self.name, daemon=True)
        self._worker.start()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def in_flight(self) -> int:
        """Items of the batch the sink is delivering now."""
        return self._in_flight

    # -- producers (any thread) -----------------------------------------------------
    def put(self, item: T, size: int, urgent: bool) -> bool:
        """Queue ``item`` of ``size`` estimated bytes; False when the queue is over its
        bounds and refuses it. ``urgent`` wakes the worker now."""
        with self._bytes_lock:
            over = len(self._items) >= self.max_queue_size or self._bytes > self.max_queue_bytes
            if not over or self.keep_overflow:
                self._bytes += size
        if over and not self.keep_overflow:
            return False
        items = self._items
        items.append((item, size))  # deque.append is atomic: no condition lock on the hot path
        if over:
            self.start_spill()
            return True
        queued = len(items)
        if urgent or queued == self.max_export_batch_size:
            self.wake()
        elif queued % self.max_export_batch_size == 0 and self.sink.stuck():
            self.start_spill()
        return True

    def wake(self) -> None:
        """Ask the worker to deliver what is queued now rather than at its next tick."""
        with self._condition:
            self._wake_requested = True
            self._condition.notify_all()

    def start_spill(self) -> None:
        """Set batches aside from a helper thread (never the caller's), one at a time."""
        if self._spill_lock.acquire(blocking=False):
            threading.Thread(target=self._spill, name=f"{self.name}-spill", daemon=True).start()

    def _take(self, count: int) -> list[T]:
        with self._condition:
            batch = [self._items.popleft() for _ in range(min(len(self._items), count))]
        with self._bytes_lock:
            self._bytes -= sum(size for _, size in batch)
        return [item for item, _ in batch]

    def _spill(self) -> None:
        """Set the oldest items aside while the queue is over half its bounds, or while
        the sink is stuck (a hanging collector), so that stopping has little left to do."""
        try:
            while True:
                over = (
                    len(self._items) > self.max_queue_size // 2
                    or self._bytes > self.max_queue_bytes // 2
                )
                stuck = self.sink.stuck() and len(self._items) >= self.max_export_batch_size
                if not (over or stuck) or self.stopping:
                    break
                batch = self._take(self.max_export_batch_size)
                if not batch:
                    break
                self.sink.set_aside(batch, over)
        finally:
            self._spill_lock.release()

    # -- the worker thread ----------------------------------------------------------
    def _idle_wait(self) -> float:
        due = self.sink.idle_due_in()
        if due is None:
            return self.schedule_delay
        return max(min(due, self.schedule_delay), 0.0)

    def _work(self) -> None:
        self.sink.started()
        while True:
            with self._condition:
                if not self._items and not self.stopping:
                    self._condition.wait_for(
                        lambda: self._wake_requested or self.stopping, self._idle_wait()
                    )
                self._wake_requested = False
                if self.stopping and not self._items:
                    self._condition.notify_all()
                    return
                taken = [
                    self._items.popleft()
                    for _ in range(min(len(self._items), self.max_export_batch_size))
                ]
                self._in_flight = len(taken)
            with self._bytes_lock:
                self._bytes -= sum(size for _, size in taken)
            try:
                if taken:
                    self.sink.deliver([item for item, _ in taken])
                else:
                    self.sink.idle()
            except Exception as exc:  # the worker must outlive any bug below it
                self.sink.lost(len(taken), exc)
            with self._condition:
                self._in_flight = 0
                self._condition.notify_all()
            self.sink.after_round()

    # -- flush and stop -------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Wait until all queued so far has been delivered, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._wake_requested = True
            self._condition.notify_all()
            return self._condition.wait_for(
                lambda: (not self._items and not self._in_flight) or not self._worker.is_alive(),
                max(deadline - time.monotonic(), 0),
            )

    def stop(self) -> tuple[list[T], int]:
        """Stop taking items and tell the worker to end: ``(items still queued, items in
        flight)``; the caller decides what becomes of them."""
        with self._condition:
            self.stopping = True
            left = [item for item, _ in self._items]
            self._items.clear()
            in_flight = self._in_flight
            self._condition.notify_all()
        return left, in_flight

    def join(self, timeout: float) -> None:
        """Wait at most ``timeout`` seconds for the worker to end (after ``stop``)."""
        self._worker.join(timeout)
