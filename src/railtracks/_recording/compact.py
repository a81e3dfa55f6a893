"""Finished spans as a session keeps them: one exact tuple of atoms each, which the GC ignores.

An SDK span kept until its session ends is about eleven objects the cyclic
garbage collector tracks (the span, its attributes wrapper and lock, its
contexts, status, events...). Kept by the hundred thousand, every full
collection rescans them: a node call grows slower the longer its session runs,
and one collection in a million-span session stops every thread for a fifth of
a second. A session keeps each finished span as a ``Record`` instead: an exact
tuple of ints, strings and ``None``, with its resource and scope as a small
shared index (``_ORIGINS``), its attributes as a tuple of keys (one shared
tuple for every call of a node) and a tuple of values, and its events
likewise. CPython never untracks a tuple holding a dict, but untracks a tuple
of atoms the first time the collector sees it: a session of any size adds
nothing to later collections, and a kept span is a third the size of its
attribute dict.

``FinishedSpan`` is the view the state reads a record through (one short-lived
object per span while the state is built); ``readable()`` rebuilds an SDK
``ReadableSpan`` (same ids, times, attributes, events and status) where the
API hands spans to users (``Session.spans``).
"""

from __future__ import annotations

import json
import struct
import threading
from binascii import b2a_base64
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from .attributes import STATUS, STATUS_COMPLETED
from .fastspan import RailtracksSpan

# (name, time in unix nanoseconds, attributes)
RawEvent = tuple[str, int, Mapping[str, Any]]
# A finished span as a session keeps it; the fields are read through FinishedSpan.
Record = tuple[Any, ...]
(_NAME, _TRACE_ID, _SPAN_ID, _FLAGS, _STATE, _PARENT, _KIND, _START, _END, _STATUS,
 _DESCRIPTION, _KEYS, _VALUES, _EVENTS, _LINKS, _ORIGIN, _DROPPED_ATTRIBUTES, _DROPPED_EVENTS,
 _DROPPED_LINKS) = range(19)  # fmt: skip
_KINDS: Final = tuple(SpanKind)  # by value: INTERNAL is 0
_STATUSES: Final = tuple(StatusCode)  # by value: UNSET is 0
_INTERNAL: Final = SpanKind.INTERNAL
_UNSET: Final = StatusCode.UNSET
_ORIGINS_KEPT: Final = 4096
_KEY_TUPLES_KEPT: Final = 4096
# One tuple object per distinct sequence of attribute keys (every call of a node has the same).
_KEY_TUPLES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared_keys(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """The attribute keys as a tuple, one object for every span with the same keys."""
    keys = tuple(attributes)
    shared = _KEY_TUPLES.get(keys)
    if shared is None:
        if len(_KEY_TUPLES) < _KEY_TUPLES_KEPT:
            _KEY_TUPLES[keys] = keys
        shared = keys
    return shared


def _split(attributes: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """Attributes as (keys, values) tuples: no dict in a record, so the GC can untrack it."""
    return _shared_keys(attributes), tuple(attributes.values())


def attribute_dict(span: ReadableSpan) -> Mapping[str, Any]:
    """A span's attributes, read-only by convention: the SDK's own plain dict when it has one.

    ``span.attributes`` wraps the SDK's ``BoundedAttributes`` (a Python-level
    Mapping) in a proxy: every lookup through it costs a few Python calls, and
    a missing key a raised ``KeyError``. The hot paths read the dict behind it.
    """
    own = getattr(span, "_attributes", None)
    if type(own) is dict:  # a RailtracksSpan's trusted attributes
        return own
    backing = getattr(own, "_dict", None)
    return backing if type(backing) is dict else (span.attributes or {})


class _Origins:
    """Each distinct (resource, scope) pair a small int, so a record holds no shared object.

    A process has a handful (one resource, a scope per tracer); past
    ``_ORIGINS_KEPT`` a record holds the pair itself, which only costs the GC.
    """

    def __init__(self) -> None:
        self._index: dict[tuple[int, int], int] = {}
        self._pairs: list[tuple[Resource, InstrumentationScope | None]] = []
        self._lock = threading.Lock()
        # the pair asked for last (nearly every span has the same)
        self._last: tuple[object, object, object] = (None, None, None)

    def key(self, resource: Resource, scope: InstrumentationScope | None) -> object:
        last = self._last
        if last[0] is resource and last[1] is scope:
            return last[2]
        found = self._index.get((id(resource), id(scope)))
        if found is not None:
            self._last = (resource, scope, found)
            return found
        with self._lock:
            if len(self._pairs) >= _ORIGINS_KEPT:
                return (resource, scope)
            self._pairs.append((resource, scope))  # kept alive: their ids stay theirs
            found = self._index[(id(resource), id(scope))] = len(self._pairs) - 1
            return found

    def pair(self, key: object) -> tuple[Resource, InstrumentationScope | None]:
        return self._pairs[key] if type(key) is int else key  # type: ignore[return-value]  # a pair


_ORIGINS: Final = _Origins()


def origin_pair(key: object) -> tuple[Resource, InstrumentationScope | None]:
    """The resource and scope of a record's origin key."""
    return _ORIGINS.pair(key)


def record(span: ReadableSpan) -> Record:
    """The record of one finished span (read from the SDK's own fields when it is an SDK span).

    This runs once per span on the hot path: the public properties copy
    (``events``, ``links``) or wrap (``attributes``) on every read, and an
    enum's ``.value`` is a Python-level descriptor, so the common values are
    recognised by identity first.
    """
    kind_of_span = type(span)
    own_attributes = getattr(span, "_attributes", None)
    if (kind_of_span is ReadableSpan or kind_of_span is RailtracksSpan) and (
        type(own_attributes) is dict or type(own_attributes) is BoundedAttributes
    ):
        attributes: Mapping[str, Any] = (
            own_attributes if type(own_attributes) is dict else own_attributes._dict  # type: ignore[union-attr]
        )
        events: Sequence[Event] = span._events
        links: Sequence[Link] = span._links
        context, parent, status = span._context, span._parent, span._status
        name, start, end = span._name, span._start_time, span._end_time
        resource, scope, kind = span._resource, span._instrumentation_scope, span._kind
        dropped = (
            getattr(own_attributes, "dropped", 0),
            getattr(events, "dropped", 0),
            getattr(links, "dropped", 0),
        )
    else:
        attributes = span.attributes or {}
        events, links = span.events, span.links
        context, parent, status = span.context, span.parent, span.status
        name, start, end = span.name, span.start_time, span.end_time
        resource, scope, kind = span.resource, span.instrumentation_scope, span.kind
        dropped = (span.dropped_attributes, span.dropped_events, span.dropped_links)
    assert context is not None  # finished SDK spans always have one
    state = context.trace_state
    code = status.status_code
    keys, values = _split(attributes)
    return (
        name,
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        None if state is None or not state else state,
        None if parent is None else parent.span_id,
        0 if kind is _INTERNAL else kind.value,
        start,
        end,
        0 if code is _UNSET else code.value,
        status.description,
        keys,
        values,
        tuple((e.name, e.timestamp, *_split(e.attributes or {})) for e in events) if events else (),
        tuple(links) if links else (),
        _ORIGINS.key(resource, scope),
        *dropped,
    )


# A span as the thread that ended it queues it for its run journal, past the records a
# session keeps (``journal_text``): (trace id, key tuple, span id, origin key, payload).
JournalText = tuple[int, tuple[str, ...], int, object, bytes]
JOURNAL_TEXT_LENGTH: Final = 5  # a Record has 19 fields; both hold the span id at [2]
JOURNAL_SEPARATOR: Final = "\x1f"
"""Joins a span's values (every one a string) in a journal payload."""
JOURNAL_HEAD: Final = struct.Struct("<QQQQBBBBBIIIIi")
"""A journal payload's head: span id, parent id (0: none), start, end, flags, kind, status
code, how its values are written (``JOURNAL_JOINED`` or ``JOURNAL_ARRAY``), its
``railtracks.status`` (0: none, 1: completed, 2: another: an assembly's first pass
reads only the head), dropped
attributes, events and links, the name's length and the description's (-1: none), in
bytes; then the name, the description and the values, UTF-8."""
JOURNAL_JOINED: Final = 0  # every value a string: joined by JOURNAL_SEPARATOR
JOURNAL_ARRAY: Final = 1  # a JSON array (a number, a bool or an array among them)
_json_array: Final = json.JSONEncoder(separators=(",", ":")).encode


def journal_text(span: ReadableSpan) -> JournalText | None:
    """A finished span as its run journal line's payload, made once, or None: use its record.

    The payload (``JOURNAL_HEAD``, then the name, description and values
    joined by ``JOURNAL_SEPARATOR``, in base64) is made with a few C calls, a
    fraction of a JSON encoding's cost and less than a ``record``'s; the journal
    adds its own numbers for the trace, key list and origin (``_runs.journal_lines``).
    Only an SDK span of the usual shape is made here (no event, integer ids
    and times, no string value holding the separator when all are strings);
    anything else is None, and goes to the journal as its ``record``.
    """
    kind_of_span = type(span)
    own = getattr(span, "_attributes", None)
    if (kind_of_span is not ReadableSpan and kind_of_span is not RailtracksSpan) or span._events:
        return None
    attributes: Mapping[str, Any] | None = (
        own if type(own) is dict else own._dict if type(own) is BoundedAttributes else None
    )
    context = span._context
    if attributes is None or context is None or type(context.trace_id) is not int:
        return None
    values = attributes.values()
    parent, status, kind = span._parent, span._status, span._kind
    code = status.status_code
    try:
        form = JOURNAL_JOINED
        try:
            joined = JOURNAL_SEPARATOR.join(values)
        except TypeError:  # a value that is not a string (an int in the context...)
            form, joined = JOURNAL_ARRAY, _json_array(tuple(values))
        if form == JOURNAL_JOINED and joined.count(JOURNAL_SEPARATOR) != len(values) - 1:
            return None  # one value holds the separator itself
        if not len(values):
            return None
        name = span._name.encode()
        outcome = attributes.get(STATUS)
        description = status.description
        described = b"" if description is None else description.encode()
        head = JOURNAL_HEAD.pack(
            context.span_id,
            0 if parent is None else parent.span_id,
            span._start_time,
            span._end_time,
            context.trace_flags,
            0 if kind is _INTERNAL else kind.value,
            0 if code is _UNSET else code.value,
            form,
            0 if outcome is None else 1 if outcome == STATUS_COMPLETED else 2,
            getattr(own, "dropped", 0),
            getattr(span._events, "dropped", 0),
            getattr(span._links, "dropped", 0),
            len(name),
            -1 if description is None else len(described),
        )
        payload = b2a_base64(head + name + described + joined.encode(), newline=False)
    except (TypeError, AttributeError, ValueError, struct.error):  # UnicodeEncodeError too
        return None
    origin = _ORIGINS.key(span._resource, span._instrumentation_scope)
    return (context.trace_id, _shared_keys(attributes), context.span_id, origin, payload)


def _field(index: int) -> Any:
    """A read-only property: one field of the record."""
    return property(lambda self: self._r[index])


class FinishedSpan:
    """A view of one record: the facts of a finished span, read by the state."""

    __slots__ = ("_attributes", "_r")

    def __init__(self, span: ReadableSpan) -> None:
        self._r = record(span)
        self._attributes: dict[str, Any] | None = None

    @classmethod
    def view(cls, kept: Record) -> FinishedSpan:
        finished = cls.__new__(cls)
        finished._r = kept
        finished._attributes = None
        return finished

    @property
    def attributes(self) -> Mapping[str, Any]:
        """The span's attributes (a dict built on first read, read-only by convention)."""
        built = self._attributes
        if built is None:
            built = self._attributes = dict(zip(self._r[_KEYS], self._r[_VALUES], strict=True))
        return built

    def attribute(self, key: str) -> Any:
        """One attribute's value (None when absent), without building the dict."""
        if self._attributes is not None:
            return self._attributes.get(key)
        keys = self._r[_KEYS]
        return self._r[_VALUES][keys.index(key)] if key in keys else None

    @property
    def raw_events(self) -> tuple[RawEvent, ...]:
        return tuple(
            (name, timestamp, dict(zip(keys, values, strict=True)))
            for name, timestamp, keys, values in self._r[_EVENTS]
        )

    name = _field(_NAME)
    trace_id = _field(_TRACE_ID)
    span_id = _field(_SPAN_ID)
    trace_flags = _field(_FLAGS)
    trace_state = _field(_STATE)
    parent_id = _field(_PARENT)
    start_time = _field(_START)
    end_time = _field(_END)
    status_description = _field(_DESCRIPTION)
    links = _field(_LINKS)
    dropped_attributes = _field(_DROPPED_ATTRIBUTES)
    dropped_events = _field(_DROPPED_EVENTS)
    dropped_links = _field(_DROPPED_LINKS)

    @property
    def kind(self) -> SpanKind:
        return _KINDS[self._r[_KIND]]

    @property
    def status_code(self) -> StatusCode:
        return _STATUSES[self._r[_STATUS]]

    @property
    def resource(self) -> Resource:
        return _ORIGINS.pair(self._r[_ORIGIN])[0]

    @property
    def instrumentation_scope(self) -> InstrumentationScope | None:
        return _ORIGINS.pair(self._r[_ORIGIN])[1]

    @property
    def sampled(self) -> bool:
        return bool(self._r[_FLAGS] & TraceFlags.SAMPLED)

    @property
    def is_ok(self) -> bool:
        return bool(self._r[_STATUS] != StatusCode.ERROR.value)

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


def compact(spans: Sequence[ReadableSpan | FinishedSpan | Record]) -> list[FinishedSpan]:
    """Every span as a ``FinishedSpan`` (records viewed, SDK spans recorded, views kept)."""
    out: list[FinishedSpan] = []
    for span in spans:
        if type(span) is tuple:
            out.append(FinishedSpan.view(span))
        elif type(span) is FinishedSpan:
            out.append(span)
        else:
            out.append(FinishedSpan(span))  # type: ignore[arg-type]  # a ReadableSpan
    return out
