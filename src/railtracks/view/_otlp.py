"""Decoding OTLP/HTTP trace exports (protobuf and JSON) into the viewer's spans.

Both encodings are untrusted: every field is type-checked, unknown ones are
ignored (as the OTLP/JSON rules ask of receivers), and a span without a valid
trace id and span id is skipped and counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

from .._recording import attributes as attr
from ._model import Span
from ._protobuf import (
    KINDS,
    MAX_ANY_DEPTH,
    TOO_DEEP,
    BadPayload,
    decode_protobuf,
    json_number,
)
from ._values import error_of, events_of, nanos, shown, shown_mapping, status_of, text

__all__ = ["BadPayload", "decode_json", "decode_protobuf", "json_records", "to_span"]

_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_HEX32: Final = re.compile(r"[0-9a-f]{32}")
STATUS_ERROR: Final = 2


# -- JSON (OTLP/JSON: hex ids, lowerCamelCase, int64 as strings) -----------------


def _json_value(value: Any, depth: int = 0) -> Any:  # noqa: PLR0911  # one exit per AnyValue case
    if not isinstance(value, dict):
        return None
    if depth >= MAX_ANY_DEPTH and ("arrayValue" in value or "kvlistValue" in value):
        return TOO_DEEP
    if "stringValue" in value:
        return value["stringValue"] if isinstance(value["stringValue"], str) else None
    if "boolValue" in value:
        return value["boolValue"] if isinstance(value["boolValue"], bool) else None
    if "intValue" in value:
        number = value["intValue"]
        if isinstance(number, str):
            try:
                return int(number)
            except ValueError:
                return None
        return number if isinstance(number, int) and not isinstance(number, bool) else None
    if "doubleValue" in value:
        number = value["doubleValue"]
        if isinstance(number, float):
            return json_number(number)
        return number if isinstance(number, int) and not isinstance(number, bool) else None
    if "arrayValue" in value:
        return [_json_value(v, depth + 1) for v in _list(value["arrayValue"], "values")]
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        return _json_attributes(inner.get("values") if isinstance(inner, dict) else None, depth + 1)
    if "bytesValue" in value:
        return value["bytesValue"] if isinstance(value["bytesValue"], str) else None
    return None


def _json_attributes(items: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {
        item["key"]: _json_value(item.get("value"), depth)
        for item in items
        if isinstance(item, dict) and isinstance(item.get("key"), str)
    }


def _json_kind(value: Any) -> str:
    if isinstance(value, int) and 0 <= value < len(KINDS):
        return KINDS[value]
    if isinstance(value, str) and value.startswith("SPAN_KIND_"):
        kind = value.removeprefix("SPAN_KIND_")
        return kind if kind in KINDS else "INTERNAL"
    return "INTERNAL"


def _json_status_code(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}.get(value, 0)
    return 0


def _list(value: Any, key: str) -> list[Any]:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, list) else []


def decode_json(body: bytes) -> Iterator[dict[str, Any]]:
    """The received spans; the body is parsed before the first is read."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadPayload(f"not OTLP/JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BadPayload("not OTLP/JSON: the body is not an object")
    return json_records(document)


def json_records(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The spans of one parsed OTLP/JSON export request, each let go once converted."""
    for resource_spans in _list(document, "resourceSpans"):
        resource_record = resource_spans.get("resource") if isinstance(resource_spans, dict) else {}
        resource = shown_mapping(_json_attributes(_list(resource_record, "attributes")))
        for scope_spans in _list(resource_spans, "scopeSpans"):
            scope_record = scope_spans.get("scope") if isinstance(scope_spans, dict) else None
            scope = scope_record.get("name") if isinstance(scope_record, dict) else None
            version = scope_record.get("version") if isinstance(scope_record, dict) else None
            spans = _list(scope_spans, "spans")
            for index, span in enumerate(spans):
                spans[index] = None  # each received span is let go once converted
                if isinstance(span, dict):
                    record = _json_span(span, resource, scope)
                    record["scope_version"] = version if isinstance(version, str) else None
                    yield record


def _json_span(span: dict[str, Any], resource: dict[str, Any], scope: Any) -> dict[str, Any]:
    found = span.get("status")
    status: dict[str, Any] = found if isinstance(found, dict) else {}
    parent = span.get("parentSpanId")
    return {
        "trace_id": span.get("traceId"),
        "span_id": span.get("spanId"),
        "parent_id": parent if parent else None,
        "name": span.get("name"),
        "kind": _json_kind(span.get("kind")),
        "start": span.get("startTimeUnixNano"),
        "end": span.get("endTimeUnixNano"),
        "attributes": _json_attributes(span.get("attributes")),
        "events": [
            {
                "name": e.get("name"),
                "time_unix_nano": e.get("timeUnixNano"),
                "attributes": _json_attributes(e.get("attributes")),
            }
            for e in _list(span, "events")
            if isinstance(e, dict)
        ],
        "status_code": _json_status_code(status.get("code")),
        "status_message": status.get("message"),
        "resource": resource,
        "scope": scope,
    }


# -- received span -> viewer span --------------------------------------------------


def _decoded(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value  # truncated (or too deeply nested) JSON stays the string it was


def to_span(record: dict[str, Any]) -> tuple[str, Span, str | None] | None:
    """``(trace id, span, session name or None)``, or None when the ids are not valid."""
    trace_id, span_id, parent_id = record["trace_id"], record["span_id"], record["parent_id"]
    if not (isinstance(trace_id, str) and _HEX32.fullmatch(trace_id) and trace_id != "0" * 32):
        return None
    if not (isinstance(span_id, str) and _HEX16.fullmatch(span_id)):
        return None
    if not (isinstance(parent_id, str) and _HEX16.fullmatch(parent_id)):
        parent_id = None
    attributes: dict[str, Any] = record["attributes"]
    is_session = attr.SESSION_ID in attributes and attr.NODE_NAME not in attributes
    is_node = attr.NODE_NAME in attributes
    failed = record["status_code"] == STATUS_ERROR
    context: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in attributes.items():
        if key.startswith(attr.CONTEXT_PREFIX):
            context[key[len(attr.CONTEXT_PREFIX) :]] = value
        elif key not in (attr.NODE_INPUT, attr.NODE_OUTPUT, attr.STATUS):
            rest[key] = value
    changes = [e for e in record["events"] if e["name"] == attr.EVENT_CONTEXT_CHANGE]
    others = [e for e in record["events"] if e["name"] != attr.EVENT_CONTEXT_CHANGE]
    name = attributes.get(attr.NODE_NAME) if is_node else record["name"]
    span = Span(
        span_id=span_id,
        parent_id=parent_id,
        name=text(name, "span"),
        status=status_of(attributes.get(attr.STATUS), failed),
        role="session" if is_session else "node" if is_node else "foreign",
        kind=record["kind"],
        start=nanos(record["start"]),
        end=nanos(record["end"]),
        context=shown_mapping(context),
        context_changes=events_of(changes),
        events=events_of(others),
        error=error_of(
            {"type": attributes.get(attr.ERROR_TYPE), "message": record["status_message"]}
        )
        if failed
        else None,
        attributes=shown_mapping(rest),
        extra={
            "resource": record["resource"],  # checked once per request, shared by its spans
            "scope": text(record["scope"]) or None,
        },
    )
    if is_node:
        span.input = shown(_decoded(attributes.get(attr.NODE_INPUT)))
        span.output = shown(_decoded(attributes.get(attr.NODE_OUTPUT)))
    elif is_session:
        span.output = shown(_decoded(attributes.get(attr.SESSION_ANSWER)))
    session_name = None
    if is_session:
        session_name = text(attributes.get(attr.SESSION_NAME)) or text(
            attributes.get(attr.SESSION_ID)
        )
    return trace_id, span, session_name
