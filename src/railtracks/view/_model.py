"""The viewer's run model: one shape for saved states and for spans received live.

A run is a set of spans (the session span, node spans, foreign spans) keyed
by span id. The page gets two views of it: ``outline`` (one compact row per
span, in call-tree order, for the waterfall) and ``detail`` (everything about
one span, fetched when it is selected), so a 100,000-node run stays small on
the wire until a span is looked at.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import threading
from collections.abc import Callable
from typing import Any, Final

from .._recording import attributes as attr
from ._final_context import final_context_of
from ._usage import badge, conversation, usage_of
from ._values import MAX_DEPTH, iso

RUNNING: Final = attr.STATUS_RUNNING
# what a Span costs beyond its values: the object, its empty containers, its place in a run
_SPAN_BASE: Final = 800


@dataclasses.dataclass(slots=True)
class Span:
    """One span as the viewer shows it; every field already checked and redacted."""

    span_id: str
    parent_id: str | None
    name: str
    status: str
    role: str  # "session", "node" or "foreign"
    kind: str = "INTERNAL"
    start: int | None = None
    end: int | None = None
    input: Any = None
    output: Any = None
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    context_changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    final_context: dict[str, Any] | None = None  # a saved session's; live: see final_context_of
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    error: dict[str, Any] | None = None
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    # everything else known about the span: resource, scope, fields of newer state formats
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    # the untrusted record the heavy fields above are read from on first use (saved runs)
    raw: dict[str, Any] | None = None
    size: int = 0  # estimated bytes held (live runs)


def footprint(value: Any, depth: int = 0) -> int:
    """Estimated bytes a checked value holds (containers, keys and items)."""
    if isinstance(value, str | bytes):
        return sys.getsizeof(value)
    if depth > 2 * MAX_DEPTH:
        return 0  # checked values are never this deep
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(
            footprint(k, depth + 1) + footprint(v, depth + 1) for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return sys.getsizeof(value) + sum(footprint(v, depth + 1) for v in value)
    return 32


def span_size(span: Span) -> int:
    """Estimated bytes a received span holds, but for its resource (shared by its batch)."""
    size = _SPAN_BASE + len(span.name) + len(span.extra.get("scope") or "")
    for value in (span.input, span.output, span.context, span.context_changes, span.events):
        if value:
            size += footprint(value)
    for value in (span.error, span.attributes):
        if value:
            size += footprint(value)
    return size


@dataclasses.dataclass(slots=True)
class Run:
    """One run (a session's trace, saved or received live)."""

    source: str  # "saved" or "live"
    key: str  # file stem for saved runs, trace id for live ones
    name: str
    trace_id: str | None
    spans: dict[str, Span]
    root_id: str | None = None
    dropped: int = 0
    version: int = 0
    size: int = 0  # estimated bytes its spans hold (live runs)
    expand: Callable[[Span], None] | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    _outline: tuple[int, dict[str, Any]] | None = dataclasses.field(default=None, repr=False)
    _encoded: tuple[int, bytes] | None = dataclasses.field(default=None, repr=False)
    _summary: tuple[int, dict[str, Any]] | None = dataclasses.field(default=None, repr=False)

    @property
    def status(self) -> str:
        root = self.spans.get(self.root_id) if self.root_id else None
        if root is not None:
            return root.status
        return RUNNING if self.source == "live" else "unknown"

    def bounds(self) -> tuple[int | None, int | None]:
        starts = [s.start for s in self.spans.values() if s.start is not None]
        ends = [s.end for s in self.spans.values() if s.end is not None]
        return (min(starts) if starts else None, max(ends) if ends else None)

    def summary(self) -> dict[str, Any]:
        cached = self._summary
        if cached is not None and cached[0] == self.version:
            return dict(cached[1])
        start, end = self.bounds()
        root = self.spans.get(self.root_id) if self.root_id else None
        if root is not None and root.start is not None and root.end is not None:
            start, end = root.start, root.end
        nodes = sum(1 for s in self.spans.values() if s.role != "session")
        summary = {
            "source": self.source,
            "key": self.key,
            "name": self.name,
            "status": self.status,
            "trace_id": self.trace_id,
            "start": iso(start),
            "start_ms": start / 1e6 if start is not None else None,
            "duration_s": (end - start) / 1e9 if start is not None and end is not None else None,
            "nodes": nodes,
            "spans": len(self.spans),
            "dropped": self.dropped,
            "version": self.version,
            "usage": usage_of(root) if root is not None else None,  # SPEC 15
        }
        self._summary = (self.version, summary)
        return dict(summary)

    def tree_order(self) -> list[tuple[int, Span]]:
        """``(depth, span)`` depth first, children by start time; orphans become roots.

        In a live run a parent that has not arrived is still running (spans are
        exported when they end): it is shown as a ``pending`` placeholder
        holding its children, until it arrives.
        """
        children: dict[str | None, list[Span]] = {}
        spans = self.spans
        pending: dict[str, Span] = {}
        for span in spans.values():
            parent = self._parent_of(span, pending)
            group = children.get(parent)
            if group is None:
                children[parent] = [span]
            else:
                group.append(span)
        if pending:
            children.setdefault(None, []).extend(pending.values())
        for group in children.values():
            if len(group) > 1:
                group.sort(key=_start_key)  # stable: ties keep the order they were recorded in
        order: list[tuple[int, Span]] = []
        seen: set[str] = set()
        _depth_first(children.get(None, []), children, seen, order)
        if any(span_id not in seen for span_id in spans):
            # spans whose parent links loop (a hostile run) reach no root: shown as roots
            loose = sorted((s for s in spans.values() if s.span_id not in seen), key=_start_key)
            _depth_first(loose, children, seen, order)
        return order

    def _parent_of(self, span: Span, pending: dict[str, Span]) -> str | None:
        parent = span.parent_id
        if parent is None or parent == span.span_id:
            return None
        if parent in self.spans:
            return parent
        if self.source != "live":
            return None  # a saved tree has every parent: this one is broken data
        placeholder = pending.get(parent)
        if placeholder is None:
            pending[parent] = Span(parent, None, "running…", RUNNING, "pending", start=span.start)
        elif span.start is not None:
            placeholder.start = min(placeholder.start or span.start, span.start)
        return parent

    def outline(self) -> dict[str, Any]:
        """The waterfall's data: one row per span, ``[id, depth, name, status, role, t0, t1, b]``.

        ``b`` is the span's usage badge (SPEC 15), or None. Times are
        microseconds from the run's start (floats: unix nanoseconds do not fit
        a JavaScript number).
        """
        if self._outline is not None and self._outline[0] == self.version:
            return self._outline[1]
        start, end = self.bounds()
        origin = start or 0
        paused = gc.isenabled()
        gc.disable()  # 100,000 fresh rows: no cycles for the collector to find
        try:
            rows = self._rows(origin)
        finally:
            if paused:
                gc.enable()
        summary = self.summary()
        summary["total_us"] = (end - origin) / 1e3 if start is not None and end is not None else 0
        summary["rows"] = rows
        self._outline = (self.version, summary)
        return summary

    def outline_json(self) -> bytes:
        """``outline()`` as UTF-8 JSON, encoded once per version of the run."""
        cached = self._encoded
        if cached is not None and cached[0] == self.version:
            return cached[1]
        encoded = json.dumps(self.outline(), ensure_ascii=False, separators=(",", ":")).encode()
        self._encoded = (self.version, encoded)
        return encoded

    def _rows(self, origin: int) -> list[list[Any]]:
        return [
            [
                span.span_id,
                depth,
                span.name,
                span.status,
                span.role,
                (span.start - origin) / 1e3 if span.start is not None else None,
                (span.end - origin) / 1e3 if span.end is not None else None,
                badge(span),  # model calls' tokens and cost (SPEC 15), or None
            ]
            for depth, span in self.tree_order()
        ]

    def detail(self, span_id: str) -> dict[str, Any] | None:
        span = self.spans.get(span_id)
        if span is None:
            return None
        with self._lock:
            if span.raw is not None and self.expand is not None:
                self.expand(span)
                span.raw = None
        return {
            "span_id": span.span_id,
            "parent_span_id": span.parent_id,
            "trace_id": self.trace_id,
            "name": span.name,
            "status": span.status,
            "role": span.role,
            "kind": span.kind,
            "start": iso(span.start),
            "end": iso(span.end),
            "duration_ms": (span.end - span.start) / 1e6
            if span.start is not None and span.end is not None
            else None,
            "input": span.input,
            "output": span.output,
            "context": span.context,
            "context_changes": span.context_changes,
            "final_context": final_context_of(span)
            if self.source == "live"
            else span.final_context,
            "events": span.events,
            "error": span.error,
            "attributes": span.attributes,
            "extra": span.extra,
            "usage": usage_of(span),
            "messages": conversation(span),
            "replayed": _replayed(span),
        }

    def details(self) -> dict[str, Any]:
        return {span_id: self.detail(span_id) for span_id in self.spans}


def _replayed(span: Span) -> bool:
    """A call answered from a recorded run (SPEC 14): the live attribute or the saved field."""
    marks = (span.attributes.get(attr.NODE_REPLAYED), span.extra.get("replayed"))
    return span.role == "node" and any(mark is True for mark in marks)


def _depth_first(
    roots: list[Span],
    children: dict[str | None, list[Span]],
    seen: set[str],
    order: list[tuple[int, Span]],
) -> None:
    """Append ``(depth, span)`` under ``roots`` to ``order``, each span id once."""
    stack = [(0, span) for span in reversed(roots)]
    while stack:
        depth, span = stack.pop()
        if span.span_id in seen:  # a cycle in a hostile file
            continue
        seen.add(span.span_id)
        order.append((depth, span))
        stack.extend((depth + 1, c) for c in reversed(children.get(span.span_id, [])))


def _start_key(span: Span) -> int:
    return span.start or 0
