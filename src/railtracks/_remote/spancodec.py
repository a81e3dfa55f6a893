"""Finished spans as plain data, and back: how a segment's spans travel to the caller.

The plain form is JSON-compatible (an HTTP service can send it as is). What
comes back is hostile input: every field is checked, bad attributes are left
out, strings are bounded by the value limit, and a malformed span is dropped
and counted. Which well-formed spans may enter the session is ``admission``'s call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from .._recording.encoding import ValueEncoder

MAX_SPANS: Final = 100_000
MAX_EVENTS: Final = 1_000
MAX_ATTRIBUTES: Final = 1_000
MAX_NAME: Final = 1_024
_HEX16 = re.compile(r"[0-9a-f]{16}")
_PRIMITIVES: Final = (str, bool, int, float)


def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in (attributes or {}).items()
    }


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """The plain form of a finished span (its trace id is the segment's, not repeated)."""
    context = span.context
    parent = span.parent
    scope = span.instrumentation_scope
    assert context is not None  # an SDK span always has one
    return {
        "name": span.name,
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "kind": span.kind.name,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": _plain(span.attributes),
        "events": [
            {"name": event.name, "time": event.timestamp, "attributes": _plain(event.attributes)}
            for event in span.events
        ],
        "status": [span.status.status_code.name, span.status.description],
        "scope": [scope.name, scope.version] if scope is not None else None,
    }


class SpanDecoder:
    """Rebuilds spans of one trace from plain data, keeping their ids and times."""

    def __init__(
        self,
        trace_id: int,
        flags: TraceFlags,
        resource: Resource,
        encoder: ValueEncoder,
    ) -> None:
        self._trace_id = trace_id
        self._flags = flags
        self._resource = resource
        self._encoder = encoder
        self.rejected = 0

    def decode_all(self, records: object) -> list[ReadableSpan]:
        if not isinstance(records, list):
            self.rejected += 1
            return []
        spans = []
        for record in records[:MAX_SPANS]:
            span = self.decode(record)
            if span is None:
                self.rejected += 1
            else:
                spans.append(span)
        self.rejected += max(len(records) - MAX_SPANS, 0)
        return spans

    def decode(self, record: object) -> ReadableSpan | None:
        if not isinstance(record, Mapping):
            return None
        span_id = parse_span_id(record.get("span_id"))
        parent_id = record.get("parent_span_id")
        parent = None if parent_id is None else parse_span_id(parent_id)
        start, end = record.get("start"), record.get("end")
        name = record.get("name")
        kind = record.get("kind")
        if (
            span_id is None
            or (parent_id is not None and parent is None)
            or not _is_time(start)
            or not _is_time(end)
            or not isinstance(name, str)
            or not isinstance(kind, str)
            or kind not in SpanKind.__members__
        ):
            return None
        return ReadableSpan(
            name=name[:MAX_NAME],
            context=SpanContext(self._trace_id, span_id, False, self._flags),
            parent=(
                SpanContext(self._trace_id, parent, False, self._flags)
                if parent is not None
                else None
            ),
            resource=self._resource,
            attributes=self.attributes(record.get("attributes")),
            events=self.events(record.get("events")),
            kind=SpanKind[kind],
            status=self._status(record.get("status")),
            start_time=start,
            end_time=end,
            instrumentation_scope=_scope(record.get("scope")),
        )

    def attributes(self, raw: object) -> dict[str, AttributeValue]:
        if not isinstance(raw, Mapping):
            return {}
        kept: dict[str, AttributeValue] = {}
        for key, value in list(raw.items())[:MAX_ATTRIBUTES]:
            checked = self._value(value)
            if isinstance(key, str) and checked is not None:
                kept[key[:MAX_NAME]] = checked
        return kept

    def events(self, raw: object) -> list[Event]:
        if not isinstance(raw, list):
            return []
        events = []
        for item in raw[:MAX_EVENTS]:
            if (
                isinstance(item, Mapping)
                and isinstance(item.get("name"), str)
                and _is_time(item.get("time"))
            ):
                events.append(
                    Event(
                        item["name"][:MAX_NAME],
                        self.attributes(item.get("attributes")),
                        timestamp=item["time"],
                    )
                )
        return events

    def _value(self, value: object) -> AttributeValue | None:
        if type(value) is str:
            return self._encoder.truncate(value)
        if type(value) in _PRIMITIVES:
            return value  # type: ignore[return-value]  # checked just above
        if isinstance(value, list | tuple) and value:
            kinds = {type(item) for item in value}
            if len(kinds) == 1 and kinds <= set(_PRIMITIVES):
                if kinds == {str}:
                    return tuple(self._encoder.truncate(item) for item in value)
                return tuple(value)
        if isinstance(value, list | tuple) and not value:
            return ()
        return None

    def _status(self, raw: object) -> Status:
        if isinstance(raw, list) and len(raw) == 2 and raw[0] in StatusCode.__members__:
            description = raw[1] if isinstance(raw[1], str) else None
            code = StatusCode[raw[0]]
            if code is StatusCode.ERROR and description is not None:
                return Status(code, self._encoder.truncate(description))
            return Status(code)
        return Status(StatusCode.UNSET)


def parse_span_id(value: object) -> int | None:
    """A span id from its 16 lowercase hex digits; None when it is not one (or zero)."""
    if not isinstance(value, str) or not _HEX16.fullmatch(value):
        return None
    number = int(value, 16)
    return number or None


def _is_time(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _scope(raw: object) -> InstrumentationScope | None:
    if isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], str):
        version = raw[1] if isinstance(raw[1], str) else None
        return InstrumentationScope(raw[0][:MAX_NAME], version)
    return None


def encode_all(spans: Iterable[ReadableSpan], trace_id: int) -> list[dict[str, Any]]:
    """The plain form of every span of ``trace_id`` (others were not made for the caller)."""
    return [
        span_to_dict(span)
        for span in spans
        if span.context is not None and span.context.trace_id == trace_id
    ]
