"""OTLP spans from elsewhere made into saved runs, one per trace (SPEC 14 "Import").

The spans (decoded records, see ``view._otlp``) become SDK spans with their
own ids, times, attributes, events, status, resource and scope, and each
trace's state is built by the same code as a session's (``build_state``):

* a trace made by railtracks (its session span is in it) is its session's
  state again, as ``railtracks export`` sent it; a nested session (a subtree
  of the same trace) is a run of its own, as it was saved, and spans above
  the outermost session are top-level foreign spans of it;
* any other trace: its root span (the earliest span whose parent is not in
  the trace) stands for the session: its name, times, status and attributes,
  the identifier the trace id (a trace id is a UUID's 128 bits); every other
  span is a foreign span under its true parent (``"foreign": true``). A
  ``railtracks export`` of such a run re-sends the root span with railtracks'
  session attributes added.

Values that a state cannot hold as they came (maps, mixed lists, nulls) are
kept as compact JSON text; a ``railtracks.status`` outside the schema's
statuses is dropped (the span's status code decides), an end before the
start is read as a zero duration.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from .._recording import attributes as attr
from .._recording.compact import FinishedSpan, Record
from .._recording.compact import record as compact_record
from .._runs.schema import SchemaError, Validator, published_schema, validate_state
from .._runs.state import state_parts
from .._runs.store import encode_state_chunks, write_bytes_atomically
from .._runs.tree import NodeWalk

StateParts = tuple[dict[str, Any], NodeWalk]
_HEX: Final = {16: re.compile(r"[0-9a-f]{16}"), 32: re.compile(r"[0-9a-f]{32}")}
_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_SCALARS: Final = (str, bool, int, float)
_RAILTRACKS: Final = "railtracks"
_MAX_INT: Final = 2**63
MAX_NAME_CHARS: Final = 100
# Each level of calls is two levels of JSON (a node, its children); Python's JSON reader
# stops near 1,000 levels, and values inside nodes nest too.
MAX_DEPTH: Final = 200
_NOT_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS: Final = re.compile(r"\.{2,}")


@dataclass
class ImportedTrace:
    """One run of the file (a trace, or one session of it): its state's head, its nodes to come."""

    trace_id: str
    spans: int
    head: dict[str, Any]
    nodes: NodeWalk


def _id(value: Any, size: int) -> int | None:
    """A trace (32) or span (16) id: lowercase hex as OTLP/JSON writes it, or base64."""
    if not isinstance(value, str) or not value:
        return None
    text = value.lower()
    if _HEX[size].fullmatch(text) is None:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(raw) * 2 != size:
            return None
        text = raw.hex()
    number = int(text, 16)
    return number or None


def _value(value: Any) -> Any:
    """An attribute value a state holds: a scalar, a homogeneous list, else compact JSON."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if kind in _SCALARS:
        return value
    if kind is list and _homogeneous(value):
        return tuple(value)
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _homogeneous(values: list[Any]) -> bool:
    """A list OTel carries as an array: scalars of one type, finite floats."""
    kinds = {type(v) for v in values}
    if len(kinds) > 1 or not kinds <= set(_SCALARS):
        return False
    return float not in kinds or all(math.isfinite(v) for v in values)


def _attributes(values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        return {}
    kept = {}
    for key, value in values.items():
        converted = _value(value)
        if isinstance(key, str) and converted is not None:
            kept[key] = converted
    return kept


def _nanos(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit() and len(value) < 20:
        value = int(value)
    if type(value) is int and 0 <= value < _MAX_INT:
        return value
    return None


def _statuses() -> frozenset[str]:
    return frozenset(published_schema()["$defs"]["status"]["enum"])


def _checked_identity(attributes: dict[str, Any], statuses: frozenset[str]) -> None:
    """railtracks' own keys, where a state needs a type: dropped when they have another."""
    for key in (attr.SESSION_ID, attr.SESSION_NAME, attr.NODE_NAME, attr.ERROR_TYPE):
        if key in attributes and type(attributes[key]) is not str:
            attributes[key] = str(attributes[key])
    if attributes.get(attr.STATUS) not in statuses:
        attributes.pop(attr.STATUS, None)
    timeout = attributes.get(attr.SESSION_TIMEOUT)
    if timeout is not None and not (type(timeout) in (int, float) and timeout > 0):
        del attributes[attr.SESSION_TIMEOUT]


class _Spans:
    """Decoded records made SDK spans; resources and scopes shared as they were."""

    def __init__(self) -> None:
        self.statuses = _statuses()
        self._resources: dict[int, Resource] = {}
        self._scopes: dict[tuple[str, str | None], InstrumentationScope] = {}
        self.rejected = 0

    def _resource(self, record: Mapping[str, Any]) -> Resource:
        found = record.get("resource")
        key = id(found)
        resource = self._resources.get(key)
        if resource is None:
            resource = self._resources[key] = Resource(_attributes(found))
        return resource

    def _scope(self, record: Mapping[str, Any]) -> InstrumentationScope:
        name, version = record.get("scope"), record.get("scope_version")
        key = (name if isinstance(name, str) else "", version if isinstance(version, str) else None)
        scope = self._scopes.get(key)
        if scope is None:
            scope = self._scopes[key] = InstrumentationScope(*key)
        return scope

    def span(self, record: Mapping[str, Any]) -> ReadableSpan | None:
        trace_id = _id(record.get("trace_id"), 32)
        span_id = _id(record.get("span_id"), 16)
        if trace_id is None or span_id is None:
            self.rejected += 1
            return None
        parent_id = _id(record.get("parent_id"), 16)
        attributes = _attributes(record.get("attributes"))
        _checked_identity(attributes, self.statuses)
        start, end = _nanos(record.get("start")), _nanos(record.get("end"))
        if start is not None and end is not None and end < start:
            end = start
        failed = record.get("status_code") == 2
        code = (
            StatusCode.ERROR if failed else StatusCode(1 if record.get("status_code") == 1 else 0)
        )
        message = record.get("status_message")
        kind = record.get("kind")
        return ReadableSpan(
            name=str(record.get("name") or ""),
            context=SpanContext(trace_id, span_id, False, _SAMPLED),
            parent=None if parent_id is None else SpanContext(trace_id, parent_id, False, _SAMPLED),
            resource=self._resource(record),
            attributes=attributes,
            events=[self._event(e, start) for e in record.get("events") or () if type(e) is dict],
            kind=SpanKind[str(kind)] if str(kind) in SpanKind.__members__ else SpanKind.INTERNAL,
            status=Status(code, str(message) if failed and message else None),
            start_time=start,
            end_time=end,
            instrumentation_scope=self._scope(record),
        )  # fmt: skip

    @staticmethod
    def _event(event: Mapping[str, Any], start: int | None) -> Event:
        at = _nanos(event.get("time_unix_nano"))
        return Event(
            str(event.get("name") or ""),
            _attributes(event.get("attributes")),
            timestamp=at if at is not None else (start or 0),
        )


def _is_session(span: FinishedSpan) -> bool:
    scope = span.instrumentation_scope
    return (
        span.attribute(attr.SESSION_ID) is not None
        and span.attribute(attr.NODE_NAME) is None
        and scope is not None
        and scope.name == _RAILTRACKS
    )


def _standing_in(root: FinishedSpan, trace_id: int) -> ReadableSpan:
    """The root span of a foreign trace, as the session span it stands for."""
    span = root.readable()
    attributes = {k: v for k, v in (span.attributes or {}).items() if k != attr.NODE_NAME}
    attributes[attr.SESSION_ID] = str(uuid.UUID(int=trace_id))
    attributes[attr.SESSION_NAME] = span.name
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=None,
        resource=span.resource,
        attributes=attributes,
        events=span.events,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=InstrumentationScope(_RAILTRACKS, None),
    )


def _start(span: FinishedSpan) -> tuple[int, int]:
    return span.start_time or 0, span.span_id


def _root(spans: list[FinishedSpan]) -> FinishedSpan:
    ids = {span.span_id for span in spans}
    tops = [s for s in spans if s.parent_id is None or s.parent_id not in ids] or spans
    return min(tops, key=_start)


def _by_session(spans: list[FinishedSpan]) -> list[list[FinishedSpan]]:
    """The spans of each railtracks session of a trace, outermost first (nested sessions
    are subtrees of the same trace: each keeps its own spans, as it saved them)."""
    parent_of = {span.span_id: span.parent_id for span in spans}
    ordered = sorted((s for s in spans if _is_session(s)), key=_start)
    groups: dict[int, list[FinishedSpan]] = {s.span_id: [] for s in ordered}
    owner: dict[int, int | None] = {}
    for span_id in parent_of:
        path: list[int] = []
        current: int | None = span_id
        while current is not None and current not in owner and current not in groups:
            if current in path or current not in parent_of:
                current = None  # a parent cycle, or the top of the trace: no session above
                break
            path.append(current)
            current = parent_of[current]
        found = owner.get(current, current) if current is not None else None
        owner.update(dict.fromkeys(path, found))
    outermost = next(iter(groups))
    for span in spans:
        span_id = span.span_id
        groups[span_id if span_id in groups else owner.get(span_id) or outermost].append(span)
    return list(groups.values())


def trace_states(trace_id: int, records: list[Record]) -> list[tuple[int, StateParts]]:
    """``(spans, (head, node walk))`` of each run of one trace (see the module's docstring)."""
    spans = [FinishedSpan.view(kept) for kept in records]
    del records
    if any(_is_session(span) for span in spans):
        return [(len(group), state_parts(group)) for group in _by_session(spans)]
    root = _root(spans)
    scope = root.instrumentation_scope
    rest: list[ReadableSpan | FinishedSpan] = [span for span in spans if span is not root]
    head, nodes = state_parts([_standing_in(root, trace_id), *rest])
    head["session"]["scope"] = {"name": scope.name, "version": scope.version} if scope else None
    return [(len(spans), (head, nodes))]


class Traces:
    """The spans of a file grouped by trace; ``states()`` builds one state at a time."""

    def __init__(self, records: Iterable[Mapping[str, Any]]) -> None:
        maker = _Spans()
        # kept as sessions keep theirs: a tuple of atoms per span (``_recording.compact``)
        self._traces: dict[int, list[Record]] = {}
        for record in records:
            span = maker.span(record)
            if span is not None and span.context is not None:
                self._traces.setdefault(span.context.trace_id, []).append(compact_record(span))
        self.rejected = maker.rejected
        self.count = len(self._traces)

    def states(self) -> Iterator[ImportedTrace]:
        """One state per trace, in the order the traces first appeared; each let go when built."""
        while self._traces:
            trace_id = next(iter(self._traces))
            spans = self._traces.pop(trace_id)
            for count, (head, nodes) in trace_states(trace_id, spans):
                yield ImportedTrace(format(trace_id, "032x"), count, head, nodes)


def import_name(text: str) -> str:
    """A run name made of a span name: letters, digits, ``.``, ``_`` and ``-`` (``imported``)."""
    name = _NOT_NAME.sub("-", text).strip("-.")
    name = _DOTS.sub(".", name)[:MAX_NAME_CHARS].strip("-.")
    return name or "imported"


def check_name(name: str) -> str:
    """A ``--name`` as given, when it is a valid run name; ``ValueError`` saying why if not."""
    if not name or len(name) > MAX_NAME_CHARS or import_name(name) != name:
        raise ValueError(
            f"--name {name[:80]!r}: a run name is 1-{MAX_NAME_CHARS} letters, digits, '.', '_'"
            " or '-', not starting or ending with '.' or '-'"
        )
    return name


def free_path(directory: Path, name: str, taken: set[str]) -> Path:
    """``{name}.json`` in ``directory``, else ``{name}-2.json``...: never a saved run's file."""
    candidate, number = name, 1
    while candidate in taken or (directory / f"{candidate}.json").exists():
        number += 1
        candidate = f"{name}-{number}"
    taken.add(candidate)
    return directory / f"{candidate}.json"


def save_trace(trace: ImportedTrace, path: Path) -> None:
    """Write an imported run's state as the run ``path.stem``, streamed node by node.

    The head and every node are checked against the published schema before
    they are written (a ``SchemaError`` gives the write up, nothing left behind).
    """
    head = trace.head
    head["session"]["name"] = path.stem
    validate_state({**head, "nodes": []})
    write_bytes_atomically(path, encode_state_chunks(head, _checked(trace.nodes)))


@functools.cache
def _node_validator() -> Validator:
    schema = published_schema()
    return Validator({**schema["$defs"]["node"], "$defs": schema["$defs"]})


def _checked(nodes: NodeWalk) -> NodeWalk:
    """The walk, each node checked against the schema and the tree's depth bounded."""
    validator = _node_validator()
    depth = 0
    for item in nodes:
        if item is None:
            depth -= 1
        else:
            depth += 1
            if depth > MAX_DEPTH:
                raise SchemaError(
                    f"nested more than {MAX_DEPTH} calls deep: a saved state is read as JSON,"
                    " which cannot nest that far"
                )
            validator.validate({**item[1], "children": []})
        yield item
