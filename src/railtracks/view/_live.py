"""Runs received live over OTLP/HTTP: kept in memory, grouped by trace, bounded.

Received runs are not written to disk: a railtracks program saves its own
state when its session ends, so the viewer would only duplicate it. Memory is
bounded in bytes (each span's estimated size, ``span_size``) as well as by
run count, spans per run and spans in all; when a bound is hit the least
recently updated run is forgotten first, and spans over a run's own bound
(``max_spans_per_run``, or the whole byte budget) are counted as dropped on
that run (shown on the page).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Final

from .._recording import attributes as attr
from ._model import Run, Span, footprint, span_size

MAX_RUNS: Final = 100
MAX_SPANS_PER_RUN: Final = 200_000
MAX_SPANS_TOTAL: Final = 500_000
MAX_BYTES: Final = 192 * 1024 * 1024  # estimated bytes of all received spans


class LiveRuns:
    """Thread-safe store of received runs (one per trace id)."""

    def __init__(
        self,
        max_runs: int = MAX_RUNS,
        max_spans_per_run: int = MAX_SPANS_PER_RUN,
        max_spans_total: int = MAX_SPANS_TOTAL,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.max_runs = max_runs
        self.max_spans_per_run = max_spans_per_run
        self.max_spans_total = max_spans_total
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._total = 0
        self.bytes = 0  # estimated, of all runs held
        self.version = 0
        self.forgotten_runs = 0

    def add(self, received: Iterable[tuple[str, Span, str | None]]) -> int:
        """Keep received spans; returns how many were kept."""
        kept = 0
        resources: set[int] = set()
        with self._lock:
            self.version += 1
            for trace_id, span, session_name in received:
                span.size = span_size(span)
                resource = span.extra.get("resource")
                if id(resource) not in resources:  # one per request, shared by its spans
                    resources.add(id(resource))
                    span.size += footprint(resource)
                run = self._runs.get(trace_id)
                if run is None:
                    run = Run("live", trace_id, span.name, trace_id, spans={})
                    self._runs[trace_id] = run
                self._runs.move_to_end(trace_id)
                run.version = self.version
                earlier = run.spans.get(span.span_id)
                if earlier is not None:  # a re-sent span replaces the earlier copy
                    self._total -= 1
                    run.size -= earlier.size
                    self.bytes -= earlier.size
                elif (
                    len(run.spans) >= self.max_spans_per_run
                    or run.size + span.size > self.max_bytes
                ):
                    run.dropped += 1
                    continue
                run.spans[span.span_id] = span
                self._total += 1
                run.size += span.size
                self.bytes += span.size
                kept += 1
                self._place(run, span, session_name)
                if self.bytes > self.max_bytes:
                    self._evict()
            self._evict()
        return kept

    @staticmethod
    def _place(run: Run, span: Span, session_name: str | None) -> None:
        if session_name is not None:
            current = run.spans.get(run.root_id) if run.root_id else None
            # the outermost session names the run (nested sessions share its trace)
            if current is None or current.role != "session" or span.parent_id not in run.spans:
                run.root_id, run.name = span.span_id, session_name
        elif run.root_id is None or run.spans[run.root_id].role != "session":
            # until the session span ends and arrives, its nodes say which session they are in
            named = span.attributes.get(attr.SESSION_NAME) or span.attributes.get(attr.SESSION_ID)
            if isinstance(named, str) and named:
                run.name = named[:256]
            elif span.parent_id is None:
                run.root_id, run.name = span.span_id, span.name

    def _evict(self) -> None:
        while len(self._runs) > self.max_runs or (
            (self._total > self.max_spans_total or self.bytes > self.max_bytes)
            and len(self._runs) > 1
        ):
            _, run = self._runs.popitem(last=False)
            self._total -= len(run.spans)
            self.bytes -= run.size
            self.forgotten_runs += 1

    def summaries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [run.summary() for run in self._runs.values()]

    def get(self, trace_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(trace_id)

    def outline_json(self, trace_id: str) -> bytes | None:
        """A run's outline as JSON, taken under the lock (spans may be arriving)."""
        with self._lock:
            run = self._runs.get(trace_id)
            return None if run is None else run.outline_json()

    def detail(self, trace_id: str, span_id: str) -> dict[str, Any] | None:
        with self._lock:
            run = self._runs.get(trace_id)
            return None if run is None else run.detail(span_id)
