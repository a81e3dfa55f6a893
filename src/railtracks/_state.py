"""The saved state, built from a session's finished spans and nothing else (SPEC 6).

The document keeps what is needed to re-create every span with its original
ids, times, attributes, events and status (``spans_from_state`` does it), and
shows inputs, outputs and context as readable JSON rather than the encoded
attribute strings they travel as.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan

from . import _attributes as attr

SCHEMA_VERSION: Final = 1

# Attributes shown as fields of their own, so not repeated under "attributes".
_NODE_FIELDS: Final = frozenset({attr.NODE_INPUT, attr.NODE_OUTPUT, attr.NODE_NAME, attr.STATUS})
# The session's answer attribute stays under "attributes" as written: with
# `with rt.Session()` there is none, and "answer" is derived (see build_state).
_SESSION_FIELDS: Final = frozenset(
    {attr.SESSION_ID, attr.SESSION_NAME, attr.SESSION_TIMEOUT, attr.STATUS}
)


def _hex_span(span_id: int | None) -> str | None:
    return None if span_id is None else format(span_id, "016x")


def _iso(unix_nano: int | None) -> str | None:
    if unix_nano is None:
        return None
    moment = dt.datetime.fromtimestamp(unix_nano / 1e9, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """Attribute values as JSON-native values (OTel arrays are tuples)."""
    return list(value) if isinstance(value, tuple) else value


def _decode(value: Any) -> tuple[Any, bool]:
    """``(parsed JSON, True)``, or ``(value, False)`` when it is not valid JSON (e.g. truncated)."""
    if not isinstance(value, str):
        return value, False
    try:
        return json.loads(value), True
    except ValueError:
        return value, False


def _events(span: ReadableSpan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(context changes, other events)`` of a span."""
    changes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for event in span.events:
        record = {
            "name": event.name,
            "time_unix_nano": event.timestamp,
            "attributes": {k: _plain(v) for k, v in (event.attributes or {}).items()},
        }
        (changes if event.name == attr.EVENT_CONTEXT_CHANGE else events).append(record)
    return changes, events


def _context(attributes: Mapping[str, Any]) -> dict[str, Any]:
    prefix = attr.CONTEXT_PREFIX
    return {k[len(prefix) :]: _plain(v) for k, v in attributes.items() if k.startswith(prefix)}


def _error(span: ReadableSpan, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
    if span.status.is_ok:
        return None
    return {"type": attributes.get(attr.ERROR_TYPE), "message": span.status.description}


def _common(span: ReadableSpan, attributes: Mapping[str, Any]) -> dict[str, Any]:
    assert span.context is not None  # SDK spans always have one
    start, end = span.start_time, span.end_time
    status = attributes.get(attr.STATUS)
    if status is None:
        status = attr.STATUS_COMPLETED if span.status.is_ok else attr.STATUS_FAILED
    changes, events = _events(span)
    return {
        "span_id": _hex_span(span.context.span_id),
        "parent_span_id": _hex_span(span.parent.span_id) if span.parent else None,
        "status": status,
        "status_code": span.status.status_code.name,
        "kind": span.kind.name,
        "started_at": _iso(start),
        "ended_at": _iso(end),
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "duration_seconds": (end - start) / 1e9 if start is not None and end is not None else None,
        "context": _context(attributes),
        "error": _error(span, attributes),
        "context_changes": changes,
        "events": events,
    }


def _others(attributes: Mapping[str, Any], shown: frozenset[str]) -> dict[str, Any]:
    prefix = attr.CONTEXT_PREFIX
    return {
        k: _plain(v) for k, v in attributes.items() if k not in shown and not k.startswith(prefix)
    }


def _node(span: ReadableSpan) -> dict[str, Any]:
    attributes = span.attributes or {}
    record: dict[str, Any] = {"name": attributes.get(attr.NODE_NAME, span.name)}
    record.update(_common(span, attributes))
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
    record["attributes"] = _others(attributes, _NODE_FIELDS)
    record["children"] = []
    return record


def _session_record(span: ReadableSpan) -> tuple[dict[str, Any], Any]:
    attributes = span.attributes or {}
    assert span.context is not None  # SDK spans always have one
    record: dict[str, Any] = {
        "identifier": attributes.get(attr.SESSION_ID),
        "name": attributes.get(attr.SESSION_NAME),
        "span_name": span.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "timeout": attributes.get(attr.SESSION_TIMEOUT),
    }
    record.update(_common(span, attributes))
    record["attributes"] = _others(attributes, _SESSION_FIELDS)
    record["resource"] = {k: _plain(v) for k, v in span.resource.attributes.items()}
    scope = span.instrumentation_scope
    record["scope"] = {"name": scope.name, "version": scope.version} if scope else None
    answer, _ = _decode(attributes.get(attr.SESSION_ANSWER))
    return record, answer


def _is_session_span(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return attr.SESSION_ID in attributes and attr.NODE_NAME not in attributes


def build_state(spans: Iterable[ReadableSpan]) -> dict[str, Any]:
    """The state document of one session from its finished spans."""
    session_span: ReadableSpan | None = None
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
            if record["status"] == attr.STATUS_COMPLETED:
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


def iter_nodes(nodes: Sequence[dict[str, Any]]) -> Iterable[tuple[int, dict[str, Any]]]:
    """``(depth, node)`` for every node of a call tree, depth first."""
    stack = [(0, node) for node in reversed(nodes)]
    while stack:
        depth, node = stack.pop()
        yield depth, node
        stack.extend((depth + 1, child) for child in reversed(node.get("children", [])))
