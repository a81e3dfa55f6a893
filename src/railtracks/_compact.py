"""Finished spans as a session keeps them: compact, one GC-tracked object each.

An SDK span kept until its session ends is about eleven objects the cyclic
garbage collector tracks (the span, its attributes wrapper and lock, its
contexts, status, events...). Kept by the hundred thousand, they are rescanned
by every full collection, and a node call grows slower the longer its session
runs. A ``FinishedSpan`` keeps the same facts in plain fields: ints, strings,
the span's own attribute dict (all atoms, which the collector stops tracking)
and events as tuples; resource and scope are shared, not copied.

The state reads these fields directly; ``readable()`` rebuilds an SDK
``ReadableSpan`` (same ids, times, attributes, events and status) where the
API hands spans to users (``Session.spans``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

# (name, time in unix nanoseconds, attributes)
RawEvent = tuple[str, int, Mapping[str, Any]]


def attribute_dict(span: ReadableSpan) -> Mapping[str, Any]:
    """A span's attributes, read-only by convention: the SDK's own plain dict when it has one.

    ``span.attributes`` wraps the SDK's ``BoundedAttributes`` (a Python-level
    Mapping) in a proxy: every lookup through it costs a few Python calls, and
    a missing key a raised ``KeyError``. The hot paths read the dict behind it.
    """
    backing = getattr(getattr(span, "_attributes", None), "_dict", None)
    return backing if type(backing) is dict else (span.attributes or {})


class FinishedSpan:
    """The facts of one finished span, read by the state and rebuilt on demand."""

    __slots__ = (
        "attributes",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "end_time",
        "instrumentation_scope",
        "kind",
        "links",
        "name",
        "parent_id",
        "raw_events",
        "resource",
        "span_id",
        "start_time",
        "status_code",
        "status_description",
        "trace_flags",
        "trace_id",
        "trace_state",
    )

    def __init__(self, span: ReadableSpan) -> None:
        if type(span) is ReadableSpan and type(span._attributes) is BoundedAttributes:
            self._from_sdk(span)
            return
        context = span.context
        assert context is not None  # finished SDK spans always have one
        parent = span.parent
        status = span.status
        self.name: str = span.name
        self.trace_id: int = context.trace_id
        self.span_id: int = context.span_id
        self.trace_flags: int = int(context.trace_flags)
        state = context.trace_state
        self.trace_state: TraceState | None = state if state else None
        self.parent_id: int | None = None if parent is None else parent.span_id
        self.kind: SpanKind = span.kind
        self.start_time: int | None = span.start_time
        self.end_time: int | None = span.end_time
        self.status_code: StatusCode = status.status_code
        self.status_description: str | None = status.description
        self.attributes: Mapping[str, Any] = dict(span.attributes or {})
        events = span.events
        self.raw_events: tuple[RawEvent, ...] = (
            tuple((e.name, e.timestamp, dict(e.attributes or {})) for e in events) if events else ()
        )
        links = span.links
        self.links: Sequence[Link] = links if links else ()
        self.resource: Resource = span.resource
        self.instrumentation_scope: InstrumentationScope | None = span.instrumentation_scope
        self.dropped_attributes: int = span.dropped_attributes
        self.dropped_events: int = span.dropped_events
        self.dropped_links: int = span.dropped_links

    def _from_sdk(self, span: ReadableSpan) -> None:
        """The same facts read straight from the fields of the SDK's own span class.

        This runs once per span on the hot path: the public properties copy
        (``events``, ``links``) or wrap (``attributes``) on every read. A
        finished span's attribute dict is never written again, so it is kept
        as it is rather than copied.
        """
        context = span._context
        assert context is not None  # finished SDK spans always have one
        parent = span._parent
        status = span._status
        attributes = span._attributes
        self.name = span._name
        self.trace_id = context.trace_id
        self.span_id = context.span_id
        self.trace_flags = int(context.trace_flags)
        state = context.trace_state
        self.trace_state = state if state else None
        self.parent_id = None if parent is None else parent.span_id
        self.kind = span._kind
        self.start_time = span._start_time
        self.end_time = span._end_time
        self.status_code = status.status_code
        self.status_description = status.description
        self.attributes = attributes._dict  # type: ignore[union-attr]  # a BoundedAttributes
        self.dropped_attributes = attributes.dropped  # type: ignore[union-attr]  # likewise
        events = span._events
        self.raw_events = (
            tuple((e.name, e.timestamp, dict(e.attributes or {})) for e in events) if events else ()
        )
        self.dropped_events = getattr(events, "dropped", 0)
        links = span._links
        self.links = tuple(links) if links else ()
        self.dropped_links = getattr(links, "dropped", 0)
        self.resource = span._resource
        self.instrumentation_scope = span._instrumentation_scope

    @property
    def sampled(self) -> bool:
        return bool(self.trace_flags & TraceFlags.SAMPLED)

    @property
    def is_ok(self) -> bool:
        return self.status_code is not StatusCode.ERROR

    def readable(self) -> ReadableSpan:
        """The SDK span these facts describe (a fresh object each call)."""
        flags = TraceFlags(self.trace_flags)
        return _Rebuilt(
            name=self.name,
            context=SpanContext(self.trace_id, self.span_id, False, flags, self.trace_state),
            parent=(
                None
                if self.parent_id is None
                else SpanContext(self.trace_id, self.parent_id, False, flags)
            ),
            resource=self.resource,
            attributes=self.attributes,
            events=tuple(Event(name, dict(attrs), ts) for name, ts, attrs in self.raw_events),
            links=self.links,
            kind=self.kind,
            status=Status(self.status_code, self.status_description),
            start_time=self.start_time,
            end_time=self.end_time,
            instrumentation_scope=self.instrumentation_scope,
            dropped=(self.dropped_attributes, self.dropped_events, self.dropped_links),
        )


class _Rebuilt(ReadableSpan):
    """A ``ReadableSpan`` that also keeps the SDK's dropped counts of the original."""

    def __init__(self, *, dropped: tuple[int, int, int], **fields: Any) -> None:
        super().__init__(**fields)
        self._dropped = dropped

    @property
    def dropped_attributes(self) -> int:
        return self._dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._dropped[2]


def compact(spans: Sequence[ReadableSpan | FinishedSpan]) -> list[FinishedSpan]:
    """Every span in its compact form (those already compact as they are)."""
    return [s if type(s) is FinishedSpan else FinishedSpan(s) for s in spans]  # type: ignore[arg-type]  # ReadableSpan when not compact
