"""The counts and the one problem report that both delivery policies share (SPEC 5).

Exported, spooled, set aside and dropped spans are counted; a problem is
reported once, with those counts: while the process runs if it lasts
(``after_round``), and at exit (``report``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Final

from ..._logs.log import warn_once
from .route import problem_message

ONGOING_PROBLEM_SECONDS: Final = 5.0


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
        self.from_outbox = self.set_aside_spans = self.in_doubt_spans = 0
        self.closing = threading.Event()
        self._reason: str | None = None  # the first problem, reported once with counts
        self._problem_since = 0.0
        self._reported: tuple[int, ...] | None = None

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
        seen = (*counts, self.set_aside_spans)
        if not (self.spooled or self.dropped or self.set_aside_spans) or seen == self._reported:
            return
        self._reported = seen
        warn_once(
            f"export:{self.label}:{status[:6]}:{os.getpid()}",
            problem_message(
                self.label,
                self._reason,
                counts,
                self._outbox_directory(),
                status,
                set_aside=self.set_aside_spans,
                in_doubt=self.in_doubt_spans,
            ),
        )
