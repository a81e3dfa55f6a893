"""OTLP trace requests written straight to protobuf bytes.

The SDK's encoder builds a protobuf object per span, per attribute and per
value, then serialises them: about 50 microseconds a span for railtracks' node
spans, more than the span costs to make. This writes the same
``ExportTraceServiceRequest`` bytes directly (fields in number order, proto3
defaults left out, as protobuf's own serialiser does), and remembers the
encoding of the small key/value pairs every node span repeats (names, ids,
kinds, mime types, statuses).

It covers what SDK spans hold: string, bool, int, float and bytes values,
arrays and mappings of them, events, links, status, trace state, resources and
scopes. Like the SDK's encoder, an attribute whose value cannot be encoded is
left out; anything else unexpected raises, and the caller falls back to the
SDK's encoder (``_delivery.otlp.send.encode``). ``tests/test_otlp_wire.py`` checks the
bytes against the SDK's for every kind of value.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind

from ..._recording.compact import attribute_dict

_DOUBLE: Final = struct.Struct("<d").pack
_FIXED64: Final = struct.Struct("<Q").pack
_FIXED32: Final = struct.Struct("<I").pack
_SMALL: Final = tuple(bytes((n,)) for n in range(128))
_KIND: Final = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
# span flags: SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus _IS_REMOTE_MASK for a remote parent
_HAS_IS_REMOTE: Final = 0x100
_IS_REMOTE: Final = 0x200
_FLAGS_TAG: Final = b"\x85\x01"  # field 16, fixed32
# key/value pairs remembered, and the longest string value that is
_PAIRS_KEPT: Final = 4096
_PAIR_VALUE_MAX: Final = 64


def varint(value: int) -> bytes:
    """A protobuf varint (negative values as int64, in ten bytes)."""
    if value < 0:
        value += 1 << 64  # int64 as protobuf writes it: ten bytes of two's complement
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:  # noqa: PLR0911  # one exit per AnyValue case
    """The ``AnyValue`` message of a value, as the SDK's ``_encode_value`` builds it."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _delimited(b"\x0a", value.encode("utf-8"))
    if isinstance(value, int):
        if not -(1 << 63) <= value < 1 << 63:
            raise ValueError(f"{value} is out of int64 range")
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _delimited(b"\x3a", value)
    if isinstance(value, Sequence):
        items = b"".join(_delimited(b"\x0a", _any_value(item)) for item in value)
        return _delimited(b"\x2a", items)
    if isinstance(value, Mapping):
        pairs = b"".join(_delimited(b"\x0a", _key_value(str(k), v)) for k, v in value.items())
        return _delimited(b"\x32", pairs)
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _delimited(b"\x0a", key.encode("utf-8")) + _delimited(b"\x12", _any_value(value))


class TraceRequestWriter:
    """Writes ``ExportTraceServiceRequest`` bytes; one per exporting thread (it caches)."""

    __slots__ = ("_pairs", "_resources", "_scopes")

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, object], bytes] = {}
        self._resources: dict[int, tuple[Resource, bytes]] = {}
        self._scopes: dict[InstrumentationScope | None, bytes] = {}

    def _attributes(self, tag: bytes, attributes: Mapping[str, Any] | None) -> list[bytes]:
        if not attributes:
            return []
        out = []
        pairs = self._pairs
        for key, value in attributes.items():
            kind = type(value)
            cacheable = (kind is str and len(value) <= _PAIR_VALUE_MAX) or kind is bool
            encoded = pairs.get((key, value)) if cacheable else None
            if encoded is None:
                try:
                    encoded = _delimited(tag, _key_value(key, value))
                except Exception:  # the SDK's encoder leaves out what it cannot encode, too
                    continue
                if cacheable:
                    if len(pairs) >= _PAIRS_KEPT:
                        pairs.clear()
                    pairs[(key, value)] = encoded
            out.append(encoded)
        return out

    def _resource(self, resource: Resource) -> bytes:
        known = self._resources.get(id(resource))
        if known is not None and known[0] is resource:
            return known[1]
        encoded = _delimited(b"\x0a", b"".join(self._attributes(b"\x0a", resource.attributes)))
        if len(self._resources) < _PAIRS_KEPT:
            self._resources[id(resource)] = (resource, encoded)  # the object kept: its id stays its
        return encoded

    def _scope(self, scope: InstrumentationScope | None) -> bytes:
        encoded = self._scopes.get(scope)
        if encoded is None:
            parts = []
            if scope is not None:
                if scope.name:
                    parts.append(_delimited(b"\x0a", scope.name.encode("utf-8")))
                if scope.version:
                    parts.append(_delimited(b"\x12", scope.version.encode("utf-8")))
                parts.extend(self._attributes(b"\x1a", scope.attributes))
            encoded = _delimited(b"\x0a", b"".join(parts))
            if len(self._scopes) < _PAIRS_KEPT:
                self._scopes[scope] = encoded
        return encoded

    def span(self, span: ReadableSpan) -> bytes:  # noqa: PLR0912  # one branch per optional field
        """The ``Span`` message of one span."""
        context = span.context
        assert context is not None  # finished SDK spans always have one
        parent = span.parent
        parts = [
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        ]
        if context.trace_state is not None:
            state = ",".join(f"{key}={value}" for key, value in context.trace_state.items())
            if state:
                parts.append(_delimited(b"\x1a", state.encode("utf-8")))
        if parent:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        if span.name:
            parts.append(_delimited(b"\x2a", span.name.encode("utf-8")))
        parts.append(b"\x30" + _SMALL[_KIND[span.kind]])
        if span.start_time:
            parts.append(b"\x39" + _FIXED64(span.start_time))
        if span.end_time:
            parts.append(b"\x41" + _FIXED64(span.end_time))
        parts.extend(self._attributes(b"\x4a", attribute_dict(span)))
        if span.dropped_attributes:
            parts.append(b"\x50" + varint(span.dropped_attributes))
        for event in span.events:
            parts.append(_delimited(b"\x5a", self._event(event)))
        if span.dropped_events:
            parts.append(b"\x60" + varint(span.dropped_events))
        for link in span.links:
            parts.append(_delimited(b"\x6a", self._link(link)))
        if span.dropped_links:
            parts.append(b"\x70" + varint(span.dropped_links))
        status = span.status
        if status is not None:
            inner = b""
            if status.description:
                inner = _delimited(b"\x12", status.description.encode("utf-8"))
            if status.status_code.value:
                inner += b"\x18" + _SMALL[status.status_code.value]
            parts.append(_delimited(b"\x7a", inner))
        parts.append(_FLAGS_TAG + _FIXED32(_flags(parent)))
        return b"".join(parts)

    def _event(self, event: Any) -> bytes:
        parts = []
        if event.timestamp:
            parts.append(b"\x09" + _FIXED64(event.timestamp))
        if event.name:
            parts.append(_delimited(b"\x12", event.name.encode("utf-8")))
        parts.extend(self._attributes(b"\x1a", event.attributes))
        if event.dropped_attributes:
            parts.append(b"\x20" + varint(event.dropped_attributes))
        return b"".join(parts)

    def _link(self, link: Any) -> bytes:
        context = link.context
        parts = [
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        ]
        parts.extend(self._attributes(b"\x22", link.attributes))
        if link.dropped_attributes:
            parts.append(b"\x28" + varint(link.dropped_attributes))
        parts.append(b"\x35" + _FIXED32(_flags(context)))
        return b"".join(parts)

    def request(self, spans: Iterable[ReadableSpan]) -> bytes:
        """The ``ExportTraceServiceRequest`` of these spans, grouped by resource then scope."""
        # Grouped by equality like the SDK's encoder, but a Resource hashes by
        # dumping its attributes to JSON: each distinct object is matched once.
        groups: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
        seen: dict[int, dict[InstrumentationScope | None, list[bytes]]] = {}
        for span in spans:
            resource = span.resource
            scopes = seen.get(id(resource))
            if scopes is None:
                scopes = seen[id(resource)] = groups.setdefault(resource, {})
            scopes.setdefault(span.instrumentation_scope or None, []).append(
                _delimited(b"\x12", self.span(span))
            )
        out = []
        for resource, scopes in groups.items():
            parts = [self._resource(resource)]
            for scope, encoded in scopes.items():
                scope_spans = [self._scope(scope), *encoded]
                if scope is not None and scope.schema_url:
                    scope_spans.append(_delimited(b"\x1a", scope.schema_url.encode("utf-8")))
                parts.append(_delimited(b"\x12", b"".join(scope_spans)))
            if resource.schema_url:
                parts.append(_delimited(b"\x1a", resource.schema_url.encode("utf-8")))
            out.append(_delimited(b"\x0a", b"".join(parts)))
        return b"".join(out)


def _flags(parent: SpanContext | None) -> int:
    if parent is not None and parent.is_remote:
        return _HAS_IS_REMOTE | _IS_REMOTE
    return _HAS_IS_REMOTE
