"""The lines of a run journal (SPEC 13): written by the journal thread, read as untrusted input.

Every line is one JSON array ending in ``\\n``:

* ``["railtracks-journal", 2, {"session_id", "name", "state", "pid"}]`` first
  (version 1 files, which have no ``"S"`` line, are read too);
* ``["o", N, {resource attributes}, scope name, scope version]``: origin N;
* ``["k", N, [attribute keys]]``: key list N (every call of a node shares one);
* ``["t", trace id]``: the journal's trace, once (a span line of it says 0);
* ``["s", name, trace id or 0, span id, flags, parent id, kind, start, end, status
  code, description, keys (N or a list), values, events, origin N, dropped
  attributes, dropped events, dropped links]``: a span that ended. Its values
  are an array, or, when every value is a string (none holding U+001F), one
  string of them joined by U+001F;
* ``["b", ...the same]``: a railtracks span that had started (read as
  unfinished unless its ``"s"`` line follows).

A journal is read back (``decode``) as hostile input: each field is checked
and anything else is a ``JournalError`` naming the line, except a last line
cut short (the writer was killed mid-write), which is dropped.
"""

from __future__ import annotations

import json
import os
from binascii import a2b_base64
from collections.abc import Callable, Iterator
from typing import Any, Final, NamedTuple

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .._recording import attributes as attr
from .._recording.compact import (
    JOURNAL_ARRAY,
    JOURNAL_HEAD,
    JOURNAL_JOINED,
    JOURNAL_SEPARATOR,
    Record,
)
from ..errors import StateError

MAGIC: Final = "railtracks-journal"
VERSION: Final = 2
_READABLE_VERSIONS: Final = (1, 2)
_BLOCK: Final = 1 << 20
_DECODER: Final = json.JSONDecoder()
_STATUS: Final = attr.STATUS
_COMPLETED: Final = attr.STATUS_COMPLETED
_SESSION_ID: Final = attr.SESSION_ID
_NODE_NAME: Final = attr.NODE_NAME
_ERROR: Final = 2  # StatusCode.ERROR
_RAILTRACKS: Final = "railtracks"  # the scope of railtracks' own spans
MAX_LINE_BYTES: Final = 256 << 20
"""A longer line is not one railtracks wrote (a value is bounded well below it)."""
_SCALAR_TYPES: Final = frozenset({str, bool, int, float})
# A span line carries the record's fields (``_recording.compact``) in order; trace state
# and links are not part of a saved state.
_SPAN_FIELDS: Final = 18  # "b"/"s" line length
_HEAD_CHARACTERS: Final = 76  # the base64 of a payload's head (57 bytes)


class JournalError(StateError):
    """A journal that is not one railtracks wrote; the message says where."""


class Scanned(NamedTuple):
    """A span line as the first pass of an assembly reads it."""

    kind: str  # "s" (ended) or "b" (started)
    span_id: int
    parent_id: int  # 0: none
    start: int
    failed: bool  # its status in the state will not be "completed"
    session: bool  # a session's own span


class Line:
    """One span line read back: its kind (``"s"`` or ``"b"``) and its record."""

    __slots__ = ("kind", "record")

    def __init__(self, kind: str, kept: Record) -> None:
        self.kind = kind
        self.record = kept


class Decoder:
    """Reads a journal's lines in order, keeping its origins and key lists."""

    def __init__(self, source: object) -> None:
        self.source = source
        self.header: dict[str, Any] | None = None
        self._origins: dict[int, tuple[Resource, InstrumentationScope | None]] = {}
        self._keys: dict[int, tuple[str, ...]] = {}
        self._trace = 0  # the journal's trace id, once its "t" line is read
        self._kinds: dict[tuple[object, object], bool] = {}  # (keys, origin) -> a session's

    def fail(self, number: int, why: str) -> JournalError:
        return JournalError(f"{self.source} is not a readable run journal: line {number}: {why}")

    def _fields(self, raw: bytes, number: int) -> list[Any]:
        try:
            text = raw.decode("ascii")
            fields, end = _DECODER.raw_decode(text)
        except (ValueError, RecursionError):  # UnicodeDecodeError included
            raise self.fail(number, "not JSON") from None
        if type(fields) is not list or not fields or end != len(text):
            raise self.fail(number, "not one JSON array")
        return fields

    def scan(self, raw: bytes, number: int) -> Scanned | None:
        """What the first pass needs of a span line, checked (see ``Scanned``); others decoded."""
        fields = self._fields(raw, number)
        if number != 1 and fields[0] == "S":
            return self._scan_compact(fields, number)
        if number == 1 or len(fields) != _SPAN_FIELDS or fields[0] not in ("s", "b"):
            self._decoded(fields, number)
            return None
        span, parent, start, code, keys, values = (fields[i] for i in (3, 5, 7, 9, 11, 12))
        try:
            keys = self._keys[keys] if type(keys) is int else _strings(keys)
            _expect(type(values) is list and len(values) == len(keys), "bad values")
            _expect(type(span) is int and span > 0 and type(code) is int, "bad id or code")
            for value in (parent, start):
                _expect(value is None or (type(value) is int and value >= 0), "bad time or id")
            scope = self._origins[fields[14]][1]
        except KeyError as exc:
            raise self.fail(number, f"no origin or key list {exc}") from None
        except (ValueError, TypeError) as exc:
            raise self.fail(number, str(exc) or type(exc).__name__) from None
        status = values[keys.index(_STATUS)] if _STATUS in keys else None
        failed = code == _ERROR if status is None else status != _COMPLETED
        session = (
            _SESSION_ID in keys
            and _NODE_NAME not in keys
            and scope is not None
            and scope.name == _RAILTRACKS
        )
        return Scanned(fields[0], span, parent or 0, start or 0, failed, session)

    def _scan_compact(self, fields: list[Any], number: int) -> Scanned:
        """An ``"S"`` line's head only: the rest is checked when the node is read."""
        try:
            _expect(len(fields) == 5 and type(fields[4]) is str, "bad span line")
            head = a2b_base64(fields[4][:_HEAD_CHARACTERS], strict_mode=True)
            _expect(len(head) == JOURNAL_HEAD.size, "payload too short")
            span, parent, start, _, _, _, code, _, outcome, *_ = JOURNAL_HEAD.unpack(head)
            _expect(span > 0 and outcome < 3, "bad id or status")
            session = self._session_kind(fields[2], fields[3])
        except KeyError as exc:
            raise self.fail(number, f"no origin or key list {exc}") from None
        except (ValueError, TypeError) as exc:
            raise self.fail(number, str(exc) or type(exc).__name__) from None
        failed = code == _ERROR if outcome == 0 else outcome == 2
        return Scanned("s", span, parent, start, failed, session)

    def _session_kind(self, keys: object, origin: object) -> bool:
        """Whether spans of this key list and origin are a session's own span."""
        cached = self._kinds.get((keys, origin)) if type(keys) is int else None
        if cached is not None:
            return cached
        names = self._keys[keys] if type(keys) is int else _strings(keys)
        scope = self._origins[origin][1]  # type: ignore[index]
        session = (
            _SESSION_ID in names
            and _NODE_NAME not in names
            and scope is not None
            and scope.name == _RAILTRACKS
        )
        if type(keys) is int:
            self._kinds[(keys, origin)] = session
        return session

    def decode(self, raw: bytes, number: int) -> Line | None:
        """The span of one line (None for a header, origin or key line)."""
        return self._decoded(self._fields(raw, number), number)

    def _decoded(self, fields: list[Any], number: int) -> Line | None:
        if number == 1:
            self.header = _header(fields)
            if self.header is None:
                raise self.fail(number, "no railtracks-journal header")
            return None
        kind = fields[0]
        try:
            if kind in ("o", "k"):
                self._kinds.clear()
            if kind == "o":
                self._origin(fields)
            elif kind == "t":
                _expect(len(fields) == 2 and _is_int(fields[1]) and fields[1] > 0, "bad trace")
                self._trace = fields[1]
            elif kind == "k":
                _expect(len(fields) == 3 and _is_int(fields[1]), "bad key list")
                self._keys[fields[1]] = _strings(fields[2])
            elif kind in ("s", "b") and len(fields) == _SPAN_FIELDS:
                return Line(kind, self._record(fields))
            elif kind == "S":
                return Line("s", self._compact(fields))
            else:
                _expect(False, "unknown line")
        except KeyError as exc:
            raise self.fail(number, f"no origin or key list {exc}") from None
        except (ValueError, TypeError, RecursionError) as exc:
            raise self.fail(number, str(exc) or type(exc).__name__) from None
        return None

    def _line(self, fields: list[Any], number: int, read: Callable[[list[Any]], Record]) -> Record:
        try:
            return read(fields)
        except KeyError as exc:
            raise self.fail(number, f"no origin or key list {exc}") from None
        except (ValueError, TypeError, RecursionError) as exc:
            raise self.fail(number, str(exc) or type(exc).__name__) from None

    def _compact(self, fields: list[Any]) -> Record:
        """The record of an ``"S"`` line (its payload made by ``compact.journal_text``)."""
        _expect(len(fields) == 5 and type(fields[4]) is str, "bad span line")
        _, trace, keys, origin, payload = fields
        _expect(_is_int(trace) and trace >= 0, "bad trace")
        keys = self._keys[keys] if type(keys) is int else _strings(keys)
        data = a2b_base64(payload, strict_mode=True)  # binascii.Error is a ValueError
        at = JOURNAL_HEAD.size
        _expect(len(data) >= at, "payload too short")
        (span, parent, start, end, flags, kind, code, form, outcome, dropped_a, dropped_e,
         dropped_l, name_length, described) = JOURNAL_HEAD.unpack_from(data)  # fmt: skip
        _expect(span > 0 and kind < 5 and code < 3, "bad id, kind or code")
        _expect(form in (JOURNAL_JOINED, JOURNAL_ARRAY), "bad values form")
        _expect(at + name_length + max(described, 0) <= len(data) and described >= -1, "bad length")
        name = data[at : at + name_length].decode()  # UnicodeDecodeError is a ValueError
        at += name_length
        description = None
        if described >= 0:
            description = data[at : at + described].decode()
            at += described
        text = data[at:].decode()
        if form == JOURNAL_JOINED:
            values = tuple(text.split(JOURNAL_SEPARATOR))
        else:
            array, end_at = _DECODER.raw_decode(text)  # RecursionError: too deep to be ours
            _expect(end_at == len(text), "bad values")
            values = _values(array)
        _expect(len(values) == len(keys), "keys and values differ in length")
        status = values[keys.index(_STATUS)] if _STATUS in keys else None
        said = 0 if status is None else 1 if status == _COMPLETED else 2
        _expect(outcome == said, "its status differs from its head's")
        trace = trace or self._trace
        _expect(trace > 0, "no trace id")
        return (name, trace, span, flags, None, parent or None, kind, start, end, code, description,
                keys, values, (), (), self._origins[origin], dropped_a, dropped_e,
                dropped_l)  # fmt: skip

    def _origin(self, fields: list[Any]) -> None:
        _expect(len(fields) == 5 and _is_int(fields[1]) and type(fields[2]) is dict, "bad origin")
        name, version = fields[3], fields[4]
        _expect(name is None or type(name) is str, "bad scope name")
        _expect(version is None or type(version) is str, "bad scope version")
        attributes = {str(k): _value(v) for k, v in fields[2].items()}
        scope = None if name is None else InstrumentationScope(name, version)
        self._origins[fields[1]] = (Resource(attributes), scope)

    def _record(self, f: list[Any]) -> Record:
        (_, name, trace, span, flags, parent, kind, start, end, code, description, keys, values,
         events, origin, dropped_a, dropped_e, dropped_l) = f  # fmt: skip
        _expect(
            type(name) is str
            and type(trace) is int
            and type(span) is int
            and type(flags) is int
            and type(kind) is int
            and type(code) is int
            and trace >= 0
            and span > 0
            and flags >= 0
            and 0 <= kind < 5
            and 0 <= code < 3
            and (description is None or type(description) is str),
            "bad name, id or code",
        )
        for value in (parent, start, end):
            _expect(value is None or (type(value) is int and value >= 0), "bad time or id")
        for value in (dropped_a, dropped_e, dropped_l):
            _expect(type(value) is int and value >= 0, "bad dropped count")
        keys = self._keys[keys] if type(keys) is int else _strings(keys)
        values = _values(values)
        _expect(len(keys) == len(values), "keys and values differ in length")
        trace = trace or self._trace
        _expect(trace > 0, "no trace id")
        return (name, trace, span, flags, None, parent, kind, start, end, code, description,
                keys, values, _events(events) if events else (), (), self._origins[origin],
                dropped_a, dropped_e, dropped_l)  # fmt: skip


def _header(fields: list[Any]) -> dict[str, Any] | None:
    if len(fields) != 3 or fields[0] != MAGIC or not _is_int(fields[1]):
        return None
    if fields[1] not in _READABLE_VERSIONS:
        return None
    head = fields[2]
    if type(head) is not dict or type(head.get("session_id")) is not str:
        return None
    state, name = head.get("state"), head.get("name")
    if type(state) is not str or not _plain_name(state) or not state.endswith(".json"):
        return None
    return head if name is None or type(name) is str else None


def _plain_name(name: str) -> bool:
    return "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")


def _expect(condition: bool, why: str) -> None:
    if not condition:
        raise ValueError(why)


def _is_int(value: object) -> bool:
    return type(value) is int


def _strings(value: object) -> tuple[str, ...]:
    _expect(type(value) is list and all(type(k) is str for k in value), "bad keys")
    return tuple(value)  # type: ignore[arg-type]


def _value(value: object) -> Any:
    if type(value) in _SCALAR_TYPES:
        return value
    _expect(type(value) is list and all(type(v) in _SCALAR_TYPES for v in value), "bad value")
    return value


def _values(value: object) -> tuple[Any, ...]:
    """Attribute values as read (an array stays a list: the state writes it as one)."""
    _expect(type(value) is list, "bad values")
    for item in value:  # type: ignore[attr-defined]
        if type(item) not in _SCALAR_TYPES:
            _value(item)
    return tuple(value)  # type: ignore[arg-type]


def _events(value: object) -> tuple[tuple[str, int, tuple[str, ...], tuple[Any, ...]], ...]:
    _expect(type(value) is list, "bad events")
    events = []
    for event in value:  # type: ignore[attr-defined]
        _expect(type(event) is list and len(event) == 4, "bad event")
        name, moment, keys, values = event
        _expect(type(name) is str and _is_int(moment) and moment >= 0, "bad event")
        keys, values = _strings(keys), _values(values)
        _expect(len(keys) == len(values), "bad event")
        events.append((name, moment, keys, values))
    return tuple(events)


def lines_of_file(fd: int, decoder: Decoder) -> Iterator[tuple[int, int, Scanned | None]]:
    """``(offset, length, scanned span line or None)`` of every complete line of the file ``fd``.

    Read in blocks, never whole. A last line cut short (its writer was killed
    mid-write) is dropped; a file that does not begin with a journal header is
    a ``JournalError``.
    """
    offset, number, pending = 0, 0, b""
    while True:
        block = os.pread(fd, _BLOCK, offset + len(pending))
        if not block:
            break
        pending += block
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            if end - start > MAX_LINE_BYTES:
                raise decoder.fail(number, "too long")
            yield offset + start, end - start, decoder.scan(pending[start:end], number)
            start = end + 1
        offset += start
        pending = pending[start:]
        if len(pending) > MAX_LINE_BYTES:
            raise decoder.fail(number + 1, "too long")
    if decoder.header is None:
        raise decoder.fail(1, "no railtracks-journal header")
