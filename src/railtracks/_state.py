"""The saved state, built from a session's finished spans and nothing else (SPEC 6).

The document keeps what is needed to re-create every span with its original
ids, times, attributes, events and status (``spans_from_state`` does it), and
shows inputs, outputs and context as readable JSON rather than the encoded
attribute strings they travel as.

Foreign spans (other instrumentation inside the session) are in the tree under
their true parent with ``"foreign": true`` and their instrumentation scope; a
railtracks node under one nests under it. ``session.sampled`` is false when the
trace was not sampled for export (the state is complete all the same); when an
application's sampler dropped the session, railtracks saw no span at all and
the state is built from what the session itself knows (``unsampled_state``).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan

from . import _attributes as attr
from ._compact import FinishedSpan, compact

SCHEMA_VERSION: Final = 1
_DECODER: Final = json.JSONDecoder()

# Attributes shown as fields of their own, so not repeated under "attributes";
# input.value/output.value are the same payload as the node's input/output.
_NODE_FIELDS: Final = frozenset(
    {
        attr.NODE_INPUT,
        attr.NODE_OUTPUT,
        attr.NODE_NAME,
        attr.STATUS,
        attr.INPUT_VALUE,
        attr.OUTPUT_VALUE,
    }
)
_SCOPE: Final = "railtracks"
# The session's answer attribute stays under "attributes" as written: with
# `with rt.Session()` there is none, and "answer" is derived (see build_state).
_SESSION_FIELDS: Final = frozenset(
    {attr.SESSION_ID, attr.SESSION_NAME, attr.SESSION_TIMEOUT, attr.STATUS, attr.OUTPUT_VALUE}
)


def _hex_span(span_id: int | None) -> str | None:
    return None if span_id is None else format(span_id, "016x")


def _iso(unix_nano: int | None) -> str | None:
    if unix_nano is None:
        return None
    moment = dt.datetime.fromtimestamp(unix_nano / 1e9, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _decode(value: Any) -> tuple[Any, bool]:
    """``(parsed JSON, True)``, or ``(value, False)`` when it is not valid JSON (e.g. truncated)."""
    if not isinstance(value, str):
        return value, False
    try:
        return _DECODER.decode(value), True
    except ValueError:
        return value, False


def _events(span: FinishedSpan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(context changes, other events)`` of a span."""
    changes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for name, timestamp, attributes in span.raw_events:
        record = {
            "name": name,
            "time_unix_nano": timestamp,
            "attributes": {k: list(v) if type(v) is tuple else v for k, v in attributes.items()},
        }
        (changes if name == attr.EVENT_CONTEXT_CHANGE else events).append(record)
    return changes, events


def _span_fields(
    span: FinishedSpan, attributes: Mapping[str, Any], shown: frozenset[str]
) -> dict[str, Any]:
    """The fields sessions and nodes share; context and ``shown`` keys go apart from the rest."""
    start, end = span.start_time, span.end_time
    ok = span.is_ok
    kept: dict[str, Any] = {}
    context: dict[str, Any] = {}
    prefix, cut = attr.CONTEXT_PREFIX, len(attr.CONTEXT_PREFIX)
    for key, value in attributes.items():
        if type(value) is tuple:
            value = list(value)  # noqa: PLW2901  # OTel arrays become JSON arrays
        if key.startswith(prefix):
            context[key[cut:]] = value
        elif key not in shown:
            kept[key] = value
    final = attributes.get(attr.STATUS)
    if final is None:
        final = attr.STATUS_COMPLETED if ok else attr.STATUS_FAILED
    changes, events = _events(span) if span.raw_events else ([], [])
    parent = span.parent_id
    fields = {
        "span_id": format(span.span_id, "016x"),
        "parent_span_id": None if parent is None else format(parent, "016x"),
        "status": final,
        "status_code": span.status_code.name,
        "kind": span.kind.name,
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "duration_seconds": (end - start) / 1e9 if start is not None and end is not None else None,
        "context": context,
        "error": (
            None
            if ok
            else {"type": attributes.get(attr.ERROR_TYPE), "message": span.status_description}
        ),
        "context_changes": changes,
        "events": events,
        "attributes": kept,
    }
    dropped = _dropped(span, attributes)
    if dropped:
        fields["dropped"] = dropped
    return fields


def _dropped(span: FinishedSpan, attributes: Mapping[str, Any]) -> dict[str, int]:
    """What a limit cut from this span, counted (SPEC 3): by railtracks and by the SDK."""
    counts = {
        "context_keys": attributes.get(attr.DROPPED_CONTEXT_KEYS, 0),
        "events": attributes.get(attr.DROPPED_EVENTS, 0),
        "sdk_attributes": span.dropped_attributes,
        "sdk_events": span.dropped_events,
        "sdk_links": span.dropped_links,
    }
    return {k: v for k, v in counts.items() if type(v) is int and v > 0}


def _is_foreign(span: FinishedSpan, attributes: Mapping[str, Any]) -> bool:
    scope = span.instrumentation_scope
    return attr.NODE_NAME not in attributes or scope is None or scope.name != _SCOPE


def _node(span: FinishedSpan) -> dict[str, Any]:
    attributes = span.attributes
    if _is_foreign(span, attributes):
        return _foreign(span, attributes)
    record: dict[str, Any] = {"name": attributes.get(attr.NODE_NAME, span.name)}
    record.update(_span_fields(span, attributes, _NODE_FIELDS))
    raw: list[str] = []
    for field, key in (("input", attr.NODE_INPUT), ("output", attr.NODE_OUTPUT)):
        if key in attributes:
            value, parsed = _decode(attributes[key])
            record[field] = value
            if not parsed:
                raw.append(field)
        else:
            record[field] = None
    if raw:
        record["raw_fields"] = raw
    record["children"] = []
    return record


def _scope(span: FinishedSpan) -> dict[str, Any] | None:
    scope = span.instrumentation_scope
    return {"name": scope.name, "version": scope.version} if scope else None


def _foreign(span: FinishedSpan, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Another instrumentation's span: kept whole, marked, under its true parent."""
    record: dict[str, Any] = {"name": span.name}
    record.update(_span_fields(span, attributes, frozenset()))
    record["input"] = None
    record["output"] = None
    record["foreign"] = True
    record["scope"] = _scope(span)
    record["children"] = []
    return record


def _session_record(span: FinishedSpan) -> tuple[dict[str, Any], Any]:
    attributes = span.attributes
    record: dict[str, Any] = {
        "identifier": attributes.get(attr.SESSION_ID),
        "name": attributes.get(attr.SESSION_NAME),
        "span_name": span.name,
        "trace_id": format(span.trace_id, "032x"),
        "timeout": attributes.get(attr.SESSION_TIMEOUT),
        "started_at": _iso(span.start_time),
        "ended_at": _iso(span.end_time),
    }
    record.update(_span_fields(span, attributes, _SESSION_FIELDS))
    record["resource"] = {
        k: list(v) if type(v) is tuple else v for k, v in span.resource.attributes.items()
    }
    record["scope"] = _scope(span)
    record["sampled"] = span.sampled
    answer, _ = _decode(attributes.get(attr.SESSION_ANSWER))
    return record, answer


def _is_session_span(span: FinishedSpan) -> bool:
    attributes = span.attributes
    if attr.SESSION_ID not in attributes or attr.NODE_NAME in attributes:
        return False
    scope = span.instrumentation_scope
    return scope is not None and scope.name == _SCOPE


def build_state(spans: Sequence[ReadableSpan | FinishedSpan]) -> dict[str, Any]:
    """The state document of one session from its finished spans (SDK or compact ones)."""
    # The tree is built from fresh, acyclic containers (about ten per node);
    # with the cyclic collector on, a 100,000-node build spends about as long
    # rescanning them as building them. It is paused for the build only.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _build(compact(spans))
    finally:
        if paused:
            gc.enable()


def _build(spans: Iterable[FinishedSpan]) -> dict[str, Any]:
    session_span: FinishedSpan | None = None
    nodes: dict[str, dict[str, Any]] = {}
    order: list[tuple[int, str]] = []
    for span in spans:
        if _is_session_span(span):
            session_span = span
            continue
        record = _node(span)
        nodes[record["span_id"]] = record
        order.append((span.start_time or 0, record["span_id"]))
    order.sort()
    session: dict[str, Any] | None = None
    answer: Any = None
    if session_span is not None:
        session, answer = _session_record(session_span)
    roots: list[dict[str, Any]] = []
    last_top_level: dict[str, Any] | None = None
    for _, span_id in order:
        record = nodes[span_id]
        parent = nodes.get(record["parent_span_id"])
        if parent is not None:
            parent["children"].append(record)
        else:
            roots.append(record)
            if record["status"] == attr.STATUS_COMPLETED and "foreign" not in record:
                last_top_level = record
    if (
        session is not None
        and session["status"] == attr.STATUS_COMPLETED
        and attr.SESSION_ANSWER not in session["attributes"]
    ):
        # `with rt.Session()` cannot see the block's result: the answer of a
        # completed session is the output of the last top-level node that completed.
        answer = last_top_level["output"] if last_top_level is not None else None
    return {
        "schema_version": SCHEMA_VERSION,
        "session": session,
        "answer": answer,
        "nodes": roots,
    }


def unsampled_state(
    *,
    identifier: str,
    name: str | None,
    span_name: str,
    trace_id: str,
    span_id: str,
    status: str,
    times: tuple[int, int],
    timeout: float | None,
    context: Mapping[str, Any],
    error: tuple[str, str] | None,
    answer_json: str | None,
) -> dict[str, Any]:
    """The state of a session an application's sampler dropped: no span was recorded.

    railtracks saw none of its spans (they were never recording), so the state
    holds what the session itself knows, says ``"sampled": false`` and has no
    nodes, rather than being empty.
    """
    start, end = times
    session: dict[str, Any] = {
        "identifier": identifier,
        "name": name,
        "span_name": span_name,
        "trace_id": trace_id,
        "timeout": timeout,
        "started_at": _iso(start),
        "ended_at": _iso(end),
        "span_id": span_id,
        "parent_span_id": None,
        "status": status,
        "status_code": "UNSET" if error is None else "ERROR",
        "kind": "INTERNAL",
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "duration_seconds": (end - start) / 1e9,
        "context": dict(context),
        "error": None if error is None else {"type": error[0], "message": error[1]},
        "context_changes": [],
        "events": [],
        "attributes": {},
        "resource": {},
        "scope": {"name": _SCOPE, "version": None},
        "sampled": False,
    }
    answer = _decode(answer_json)[0] if answer_json is not None else None
    return {"schema_version": SCHEMA_VERSION, "session": session, "answer": answer, "nodes": []}


def iter_nodes(nodes: Sequence[dict[str, Any]]) -> Iterable[tuple[int, dict[str, Any]]]:
    """``(depth, node)`` for every node of a call tree, depth first."""
    stack = [(0, node) for node in reversed(nodes)]
    while stack:
        depth, node = stack.pop()
        yield depth, node
        stack.extend((depth + 1, child) for child in reversed(node.get("children", [])))
