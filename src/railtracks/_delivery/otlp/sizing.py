"""Trace requests sized to what collectors accept (SPEC 5, "Nothing blocks the line").

A request is at most ``RAILTRACKS_OTLP_MAX_REQUEST_BYTES`` encoded bytes
(before compression; default 4 MiB, gRPC's default message limit). A bigger
encoded ``ExportTraceServiceRequest`` is cut into requests under the limit at
the wire level, without decoding the spans: each piece keeps its spans'
resource and scope. A refused request (HTTP 413, gRPC "larger than max") is cut
in halves the same way. A span that alone exceeds the limit is returned apart,
to be set aside.

The same walk checks a request read from the outbox: a file that is not a
well-formed request at these three levels raises ``Unreadable``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Final

from ...errors import ConfigurationError
from .wire import varint

DEFAULT_MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
ENV_MAX_REQUEST_BYTES: Final = "RAILTRACKS_OTLP_MAX_REQUEST_BYTES"
MIN_REQUEST_BYTES: Final = 1024
# what a piece costs beyond its spans, per resource and scope it carries: a tag and a length
_CONTAINER: Final = 1 + 5


def max_request_bytes_from_env() -> int:
    """``RAILTRACKS_OTLP_MAX_REQUEST_BYTES`` (an integer of at least 1024), or the default."""
    raw = os.environ.get(ENV_MAX_REQUEST_BYTES, "").strip()
    if not raw:
        return DEFAULT_MAX_REQUEST_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < MIN_REQUEST_BYTES:
        raise ConfigurationError(
            f"{ENV_MAX_REQUEST_BYTES}: expected a number of bytes (at least "
            f"{MIN_REQUEST_BYTES}), got {raw!r}"
        )
    return value


class Unreadable(ValueError):
    """Bytes that are not an ``ExportTraceServiceRequest``."""


@dataclasses.dataclass(frozen=True)
class Piece:
    """One request's bytes and how many spans it carries."""

    data: bytes
    spans: int


class Limit:
    """The request size limit of one route; lowered when a collector refuses a smaller one."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def refused(self, size: int) -> None:
        """A request of ``size`` bytes was too large: send at most half of that from now on."""
        self.max_bytes = max(min(self.max_bytes, size // 2), MIN_REQUEST_BYTES)


def _fields(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """``(number, field start, value start, value end)`` of each field of ``data[start:end]``."""
    out = []
    pos = start
    while pos < end:
        field_start = pos
        tag, pos = _read_varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise Unreadable("field number 0")
        if wire == 0:
            _, pos = _read_varint(data, pos, end)
            value_start = pos
        elif wire == 2:
            size, value_start = _read_varint(data, pos, end)
            pos = value_start + size
        elif wire in (1, 5):
            value_start = pos
            pos += 8 if wire == 1 else 4
        else:
            raise Unreadable(f"wire type {wire}")
        if pos > end:
            raise Unreadable("truncated")
        out.append((number, field_start, value_start, pos))
    return out


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise Unreadable("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


@dataclasses.dataclass
class _Container:
    """A ResourceSpans or ScopeSpans: its other fields, before and after the repeated one."""

    head: bytes
    tail: bytes


def _split_container(
    data: bytes, start: int, end: int, inner: int
) -> tuple[_Container, list[tuple[int, int, int]]]:
    head: list[bytes] = []
    tail: list[bytes] = []
    items = []
    for number, field_start, value_start, value_end in _fields(data, start, end):
        if number == inner:
            if data[field_start] != (inner << 3 | 2):
                raise Unreadable("a repeated message that is not length-delimited")
            items.append((field_start, value_start, value_end))
        else:
            (head if number < inner else tail).append(data[field_start:value_end])
    return _Container(b"".join(head), b"".join(tail)), items


_Span = tuple[_Container, _Container, bytes]  # resource, scope, the span field's bytes


def _spans(data: bytes) -> list[_Span]:
    out: list[_Span] = []
    for number, field_start, value_start, value_end in _fields(data, 0, len(data)):
        if number != 1 or data[field_start] != 0x0A:
            raise Unreadable(f"unexpected field {number} in a trace request")
        resource, scopes = _split_container(data, value_start, value_end, 2)
        for _, scope_start, scope_end in scopes:
            scope, spans = _split_container(data, scope_start, scope_end, 2)
            out.extend((resource, scope, data[s:e]) for s, _, e in spans)
    return out


def count_spans(data: bytes) -> int:
    """The spans of an encoded request; raises ``Unreadable`` if it is not one."""
    return len(_spans(data))


def _assemble(spans: list[_Span]) -> bytes:
    groups: dict[int, tuple[_Container, dict[int, tuple[_Container, list[bytes]]]]] = {}
    for resource, scope, raw in spans:
        scopes = groups.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(raw)
    out = []
    for resource, scopes in groups.values():
        parts = [resource.head]
        for scope, raws in scopes.values():
            body = b"".join([scope.head, *raws, scope.tail])
            parts.append(b"\x12" + varint(len(body)) + body)
        parts.append(resource.tail)
        body = b"".join(parts)
        out.append(b"\x0a" + varint(len(body)) + body)
    return b"".join(out)


def _cost(span: _Span, resources: set[int], scopes: set[int]) -> int:
    resource, scope, raw = span
    cost = len(raw)
    if id(scope) not in scopes:
        cost += _CONTAINER + len(scope.head) + len(scope.tail)
    if id(resource) not in resources:
        cost += _CONTAINER + len(resource.head) + len(resource.tail)
    return cost


def split(data: bytes, max_bytes: int) -> tuple[list[Piece], list[Piece]]:
    """``(pieces within max_bytes, single spans too large for any request)``, in order.

    A request within the limit comes back unchanged. Raises ``Unreadable``.
    """
    spans = _spans(data)
    if len(data) <= max_bytes:
        return [Piece(data, len(spans))], []
    fits: list[Piece] = []
    too_large: list[Piece] = []
    current: list[_Span] = []
    size = 0
    resources: set[int] = set()
    scopes: set[int] = set()
    for span in spans:
        alone = _cost(span, set(), set())
        if alone > max_bytes:
            too_large.append(Piece(_assemble([span]), 1))
            continue
        cost = _cost(span, resources, scopes)
        if current and size + cost > max_bytes:
            fits.append(Piece(_assemble(current), len(current)))
            current, size, resources, scopes = [], 0, set(), set()
            cost = alone
        current.append(span)
        size += cost
        resources.add(id(span[0]))
        scopes.add(id(span[1]))
    if current:
        fits.append(Piece(_assemble(current), len(current)))
    return fits, too_large


def halves(data: bytes) -> list[Piece]:
    """A request of two or more spans cut in two of about equal bytes; raises ``Unreadable``."""
    spans = _spans(data)
    if len(spans) < 2:
        return [Piece(data, len(spans))]
    half = sum(len(raw) for _, _, raw in spans) / 2
    taken = 0
    cut = 1
    for cut, (_, _, raw) in enumerate(spans[:-1], start=1):  # noqa: B007  # the cut is used after
        taken += len(raw)
        if taken >= half:
            break
    first, second = spans[:cut], spans[cut:]
    return [Piece(_assemble(first), len(first)), Piece(_assemble(second), len(second))]
