"""Re-creating a saved state's spans, with their original ids and times (``railtracks export``).

Foreign spans of the session (other instrumentation) are re-created too, with
their own attributes and instrumentation scope.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from .._recording import attributes as attr
from .._recording.encoding import to_json
from .state import iter_nodes

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _value(value: Any) -> AttributeValue:
    return tuple(value) if isinstance(value, list) else value


def _attributes(values: Mapping[str, Any]) -> dict[str, AttributeValue]:
    return {key: _value(value) for key, value in values.items()}


def _events(record: Mapping[str, Any]) -> list[Event]:
    events = [*record["context_changes"], *record["events"]]
    events.sort(key=lambda event: event["time_unix_nano"])
    return [
        Event(e["name"], _attributes(e["attributes"]), timestamp=e["time_unix_nano"])
        for e in events
    ]


def _context_attributes(record: Mapping[str, Any]) -> dict[str, AttributeValue]:
    return {attr.CONTEXT_PREFIX + key: _value(value) for key, value in record["context"].items()}


def _final_context_attributes(
    session: Mapping[str, Any], attributes: Mapping[str, AttributeValue]
) -> dict[str, AttributeValue]:
    """``railtracks.final_context.*`` as the session span had them (none when it never changed)."""
    final = session.get("final_context")
    if final is None:
        return {}
    if attributes.get(attr.SESSION_CONTEXT_CHANGED) is not True and final == session["context"]:
        return {}
    restored = {attr.FINAL_CONTEXT_PREFIX + key: _value(value) for key, value in final.items()}
    restored[attr.SESSION_CONTEXT_CHANGED] = True
    return restored


def _span(
    record: Mapping[str, Any],
    name: str,
    *,
    attributes: dict[str, AttributeValue],
    trace_id: int,
    resource: Resource,
    scope: InstrumentationScope | None,
) -> ReadableSpan:
    parent_id = record["parent_span_id"]
    error = record["error"] or {}
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, int(record["span_id"], 16), False, _SAMPLED),
        parent=(
            SpanContext(trace_id, int(parent_id, 16), False, _SAMPLED)
            if parent_id is not None
            else None
        ),
        resource=resource,
        attributes=attributes,
        events=_events(record),
        kind=SpanKind[record["kind"]],
        status=Status(StatusCode[record["status_code"]], error.get("message")),
        start_time=record["start_time_unix_nano"],
        end_time=record["end_time_unix_nano"],
        instrumentation_scope=scope,
    )


def _node_attributes(node: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attributes = _attributes(node["attributes"])
    attributes[attr.NODE_NAME] = node["name"]
    attributes.update(_context_attributes(node))
    raw = set(node.get("raw_fields", ()))
    for field, key in (("input", attr.NODE_INPUT), ("output", attr.NODE_OUTPUT)):
        if node[field] is not None or field in raw:
            attributes[key] = node[field] if field in raw else to_json(node[field])
    if node["status"] is not None:
        attributes[attr.STATUS] = node["status"]
    if isinstance(node.get("args_digest"), str):  # SPEC 14: fields of the node record
        attributes[attr.NODE_ARGS_DIGEST] = node["args_digest"]
    if node.get("replayed") is True:
        attributes[attr.NODE_REPLAYED] = True
    _restore_payloads(attributes, attr.NODE_OUTPUT)
    return attributes


def _restore_payloads(attributes: dict[str, AttributeValue], output_key: str) -> None:
    """``input.value``/``output.value``: the state keeps each payload once
    (``_recording.spans``)."""
    for mime, value, key in (
        (attr.INPUT_MIME_TYPE, attr.INPUT_VALUE, attr.NODE_INPUT),
        (attr.OUTPUT_MIME_TYPE, attr.OUTPUT_VALUE, output_key),
    ):
        if mime in attributes and value not in attributes and key in attributes:
            attributes[value] = attributes[key]


def _scope_of(record: Mapping[str, Any] | None) -> InstrumentationScope | None:
    if not record:
        return None
    return InstrumentationScope(record["name"], record.get("version"))


def spans_from_state(state: Mapping[str, Any]) -> Iterator[ReadableSpan]:
    """Every span of a saved state: the session's first, then its nodes depth first."""
    session = state["session"]
    trace_id = int(session["trace_id"], 16)
    resource = Resource(_attributes(session["resource"]))
    scope = _scope_of(session.get("scope"))
    attributes = _attributes(session["attributes"])
    attributes[attr.SESSION_ID] = session["identifier"]
    if session["name"] is not None:
        attributes[attr.SESSION_NAME] = session["name"]
    if session["timeout"] is not None:
        attributes[attr.SESSION_TIMEOUT] = session["timeout"]
    attributes[attr.STATUS] = session["status"]
    if isinstance(session.get("replayed"), int):
        attributes[attr.SESSION_REPLAYED] = session["replayed"]
    attributes.update(_context_attributes(session))
    attributes.update(_final_context_attributes(session, attributes))
    _restore_payloads(attributes, attr.SESSION_ANSWER)
    yield _span(
        session,
        session["span_name"],
        attributes=attributes,
        trace_id=trace_id,
        resource=resource,
        scope=scope,
    )
    for _, node in iter_nodes(state["nodes"]):
        foreign = bool(node.get("foreign"))
        yield _span(
            node,
            node["name"],
            # a foreign span is re-created as it was: its attributes, its own scope
            attributes=_attributes(node["attributes"]) if foreign else _node_attributes(node),
            trace_id=trace_id,
            resource=resource,
            scope=_scope_of(node.get("scope")) if foreign else scope,
        )
