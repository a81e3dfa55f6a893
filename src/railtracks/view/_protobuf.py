"""OTLP protobuf trace exports, decoded field by field.

Not by ``ParseFromString``: spans are read one at a time (never the whole
request's objects at once), with no nesting limit to refuse a whole request
for (AnyValue nesting beyond ``MAX_ANY_DEPTH`` is shown as ``TOO_DEEP``),
and invalid UTF-8 is shown replaced rather than failing the request. The
request's framing is checked before its first span is read; a span whose own
content is malformed comes out without ids, to be counted as rejected.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any, Final

from ._values import shown_mapping

KINDS: Final = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
MAX_ANY_DEPTH: Final = 32
TOO_DEEP: Final = "[nested too deeply to show]"


class BadPayload(Exception):
    """The body is not an OTLP trace export in the announced encoding."""


def json_number(value: float) -> float | str:
    """A double as JSON can carry it: NaN and the infinities become their names."""
    return value if math.isfinite(value) else str(value)


_Field = tuple[int, int, int, int]  # number, wire type, value or start, end


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    result, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 63:
            raise BadPayload("not an OTLP protobuf trace export: varint too long")


def _fields(data: bytes, pos: int, end: int) -> Iterator[_Field]:
    """The fields of the message in ``data[pos:end]``; lengths checked, groups refused."""
    try:
        while pos < end:
            tag, pos = _varint(data, pos)
            wire = tag & 7
            if wire == 0:
                value, pos = _varint(data, pos)
                yield tag >> 3, 0, value, 0
                continue
            if wire == 2:
                size, pos = _varint(data, pos)
                stop = pos + size
            elif wire in (1, 5):
                stop = pos + (8 if wire == 1 else 4)
            else:
                raise BadPayload(f"not an OTLP protobuf trace export: wire type {wire}")
            if stop > end:
                raise BadPayload("not an OTLP protobuf trace export: truncated field")
            yield tag >> 3, wire, pos, stop
            pos = stop
    except IndexError as exc:
        raise BadPayload("not an OTLP protobuf trace export: truncated") from exc
    if pos != end:
        raise BadPayload("not an OTLP protobuf trace export: truncated")


def _field_list(data: bytes, pos: int, end: int) -> list[_Field]:
    """``list(_fields(...))`` for a small message (a span and what is in it), made faster:
    one-byte tags and lengths, the common case, are read inline."""
    out: list[_Field] = []
    append = out.append
    try:
        while pos < end:
            tag = data[pos]
            pos += 1
            if tag >= 0x80:
                tag, pos = _varint(data, pos - 1)
            wire = tag & 7
            if wire == 2:
                size = data[pos]
                pos += 1
                if size >= 0x80:
                    size, pos = _varint(data, pos - 1)
                stop = pos + size
            elif wire == 0:
                value = data[pos]
                pos += 1
                if value >= 0x80:
                    value, pos = _varint(data, pos - 1)
                append((tag >> 3, 0, value, 0))
                continue
            elif wire in (1, 5):
                stop = pos + (8 if wire == 1 else 4)
            else:
                raise BadPayload(f"not an OTLP protobuf trace export: wire type {wire}")
            if stop > end:
                raise BadPayload("not an OTLP protobuf trace export: truncated field")
            append((tag >> 3, wire, pos, stop))
            pos = stop
    except IndexError as exc:
        raise BadPayload("not an OTLP protobuf trace export: truncated") from exc
    if pos != end:
        raise BadPayload("not an OTLP protobuf trace export: truncated")
    return out


def _text(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", "replace")


def _any(data: bytes, start: int, end: int, depth: int) -> Any:
    value: Any = None
    for number, wire, a, b in _field_list(data, start, end):
        if wire == 2 and number == 1:
            value = _text(data, a, b)
        elif wire == 0 and number == 2:
            value = bool(a)
        elif wire == 0 and number == 3:
            value = a - (1 << 64) if a >= 1 << 63 else a
        elif wire == 1 and number == 4:
            value = json_number(struct.unpack_from("<d", data, a)[0])
        elif wire == 2 and number in (5, 6):
            if depth >= MAX_ANY_DEPTH:
                value = TOO_DEEP
            elif number == 5:
                items = _field_list(data, a, b)
                value = [_any(data, x, y, depth + 1) for n, w, x, y in items if n == 1 and w == 2]
            else:
                value = _kvs(data, a, b, 1, depth + 1)
        elif wire == 2 and number == 7:
            value = data[a:b].hex()
    return value


def _kvs(data: bytes, start: int, end: int, field: int, depth: int = 0) -> dict[str, Any]:
    """The KeyValue list under ``field`` of the message in ``data[start:end]``."""
    return dict(
        _kv(data, a, b, depth)
        for number, wire, a, b in _field_list(data, start, end)
        if number == field and wire == 2
    )


def _kv(data: bytes, start: int, end: int, depth: int = 0) -> tuple[str, Any]:
    # the common shape, read inline: a short key, then a short AnyValue holding a string
    if end - start >= 6 and data[start] == 0x0A and data[start + 1] < 0x80:
        at = start + 2 + data[start + 1]  # the value's tag
        if at + 4 <= end and data[at] == 0x12 and data[at + 2] == 0x0A:
            size, length = data[at + 1], data[at + 3]
            if size == end - at - 2 and length == end - at - 4 and size < 0x80:
                return _text(data, start + 2, at), _text(data, at + 4, end)
    key, value = "", None
    for number, wire, a, b in _field_list(data, start, end):
        if number == 1 and wire == 2:
            key = _text(data, a, b)
        elif number == 2 and wire == 2:
            value = _any(data, a, b, depth)
    return key, value


def _fixed64(data: bytes, start: int) -> int:
    return int.from_bytes(data[start : start + 8], "little")


def _event(data: bytes, start: int, end: int) -> dict[str, Any]:
    event: dict[str, Any] = {"name": "", "time_unix_nano": 0, "attributes": {}}
    for number, wire, a, _ in _field_list(data, start, end):
        if number == 1 and wire == 1:
            event["time_unix_nano"] = _fixed64(data, a)
        elif number == 2 and wire == 2:
            event["name"] = _text(data, a, _)
        elif number == 3 and wire == 2:
            key, value = _kv(data, a, _)
            event["attributes"][key] = value
    return event


def _span(data: bytes, start: int, end: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "trace_id": "", "span_id": "", "parent_id": None, "name": "", "kind": "INTERNAL",
        "start": 0, "end": 0, "events": [], "status_code": 0, "status_message": "",
        "attributes": {},
    }  # fmt: skip
    for number, wire, a, b in _field_list(data, start, end):
        if wire == 2 and number in (1, 2, 4):
            key = ("trace_id", "span_id", "", "parent_id")[number - 1]
            record[key] = data[a:b].hex()
        elif wire == 2 and number == 5:
            record["name"] = _text(data, a, b)
        elif wire == 0 and number == 6:
            record["kind"] = KINDS[a] if a < len(KINDS) else "INTERNAL"
        elif wire == 1 and number in (7, 8):
            record["start" if number == 7 else "end"] = _fixed64(data, a)
        elif wire == 2 and number == 9:
            key, value = _kv(data, a, b)
            record["attributes"][key] = value
        elif wire == 2 and number == 11:
            record["events"].append(_event(data, a, b))
        elif wire == 2 and number == 15:
            for n, w, x, y in _field_list(data, a, b):
                if n == 2 and w == 2:
                    record["status_message"] = _text(data, x, y)
                elif n == 3 and w == 0:
                    record["status_code"] = x
    record["parent_id"] = record["parent_id"] or None
    return record


def _spans_of(data: bytes) -> Iterator[tuple[dict[str, Any], tuple[str, str | None], int, int]]:
    """``(resource, (scope name, version), start, end)`` of each span; a resource is read once."""
    for number, wire, a, b in _fields(data, 0, len(data)):
        if number != 1 or wire != 2:
            continue
        resource: dict[str, Any] = {}
        for n, w, x, y in _fields(data, a, b):
            if n == 1 and w == 2:
                resource = shown_mapping(_decoded_or({}, _kvs, data, x, y, 1))
        for n, w, x, y in _fields(data, a, b):
            if n != 2 or w != 2:
                continue
            scope: tuple[str, str | None] = ("", None)
            for m, v, i, j in _fields(data, x, y):
                if m == 1 and v == 2:
                    scope = _decoded_or(("", None), _scope_of, data, i, j)
            for m, v, i, j in _fields(data, x, y):
                if m == 2 and v == 2:
                    yield resource, scope, i, j


def _scope_of(data: bytes, start: int, end: int) -> tuple[str, str | None]:
    """An InstrumentationScope's ``(name, version)``."""
    fields = _field_list(data, start, end)
    names = [_text(data, a, b) for n, w, a, b in fields if n == 1 and w == 2]
    versions = [_text(data, a, b) for n, w, a, b in fields if n == 2 and w == 2]
    return (names[-1] if names else "", versions[-1] if versions else None)


def _decoded_or(default: Any, decode: Any, *args: Any) -> Any:
    """``decode(*args)``, or ``default`` when that part of the request is malformed."""
    try:
        return decode(*args)
    except BadPayload:
        return default


def decode_protobuf(body: bytes) -> Iterator[dict[str, Any]]:
    """The received spans; the request's framing is checked before the first is read.

    A span whose own content is malformed comes out without ids (counted as rejected).
    """
    for number, wire, a, b in _fields(body, 0, len(body)):  # a walk over the framing only
        if number == 1 and wire == 2:
            for n, w, x, y in _fields(body, a, b):
                if n == 2 and w == 2:
                    for _ in _field_list(body, x, y):
                        pass
    return _proto_records(body)


def _proto_records(body: bytes) -> Iterator[dict[str, Any]]:
    for resource, scope, start, end in _spans_of(body):
        try:
            record = _span(body, start, end)
        except BadPayload:
            record = {"trace_id": None, "span_id": None, "parent_id": None}
        record["resource"], (record["scope"], record["scope_version"]) = resource, scope
        yield record
