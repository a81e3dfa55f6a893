"""Reading a saved state's nodes one at a time, never the file whole (SPEC 13: ``show`` streams).

``stream_nodes`` reads the file in blocks and yields each node's own fields
(every member before ``"children"``, which railtracks writes last) as soon as
they are read, then ``None`` where its children end: the first screen of a
state of any size is printed at once. Each node is checked against the
schema on its own (``validate_node``); the head is read and checked by
``_runs.head.read_head``. The file is untrusted: whatever is not a state as
railtracks writes it is a ``StateError`` naming the byte offset, never a
traceback; no value may take more than ``MAX_VALUE_CHARS``.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ..errors import StateError

_BLOCK: Final = 1 << 20
MAX_VALUE_CHARS: Final = 512 << 20
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
_DELIMITERS: Final = frozenset(",:]} \t\n\r")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
# A node as the walk yields it (its fields but children), or None where its children end.
Streamed = dict[str, Any] | None


class _Reader:
    """A window on the file's text, grown block by block as values need it."""

    def __init__(self, fd: int, source: object) -> None:
        self._fd = fd
        self._source = source
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._pos = 0
        self._consumed = 0  # characters dropped from the front of the window
        self._eof = False

    def fail(self, why: str) -> StateError:
        where = self._consumed + self._pos
        return StateError(f"{self._source} is not a readable railtracks state: {why} (at {where})")

    def _more(self) -> bool:
        if self._eof:
            return False
        try:
            block = os.read(self._fd, _BLOCK)
            text = self._utf8.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            raise self.fail(f"not UTF-8 ({exc.reason})") from None
        self._eof = not block
        self._consumed += self._pos
        self._text = self._text[self._pos :] + text
        self._pos = 0
        return bool(block)

    def peek(self) -> str:
        while True:
            self._pos = _WHITESPACE.match(self._text, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._text):
                return self._text[self._pos]
            if not self._more():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self._pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                found, end = _DECODER.raw_decode(self._text, self._pos)
            except (ValueError, RecursionError):
                found, end = None, -1
            # a value is whole when a delimiter follows it: one cut at the window's end
            # may go on ("12" of "123", "7.1" of "7.1e-06")
            if end >= 0 and (self._eof or self._text[end : end + 1] in _DELIMITERS):
                self._pos = end
                return found
            if len(self._text) - self._pos > MAX_VALUE_CHARS:
                raise self.fail("a value too large")
            if not self._more():
                if end >= 0:
                    self._pos = end
                    return found
                raise self.fail("not JSON")


def _node_fields(reader: _Reader) -> dict[str, Any]:
    """A node's members up to ``"children":[`` (consumed)."""
    reader.expect("{")
    record: dict[str, Any] = {}
    while True:
        key = reader.value()
        if type(key) is not str or key in record:
            raise reader.fail("expected a node's member name")
        reader.expect(":")
        if key == "children":
            reader.expect("[")
            return record
        record[key] = reader.value()
        if reader.peek() != ",":
            raise reader.fail("a node whose children are not its last member")
        reader.expect(",")


def _walk(reader: _Reader) -> Iterator[Streamed]:
    reader.expect("[")
    level, opened = 0, True
    while True:
        if not (opened and reader.peek() == "]"):
            yield _node_fields(reader)
            level, opened = level + 1, True
            continue
        reader.expect("]")
        while True:  # an array closed: a node's children (level > 0) or the top level
            if level == 0:
                return
            reader.expect("}")
            level -= 1
            yield None
            if reader.peek() == ",":
                reader.expect(",")
                opened = False
                break
            reader.expect("]")


def stream_nodes(path: Path) -> Iterator[Streamed]:
    """The nodes of the state at ``path``, depth first (``None`` after each node's children)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise StateError(f"{path} is not readable: {exc.strerror or exc}") from None
    try:
        reader = _Reader(fd, path)
        reader.expect("{")
        while True:
            key = reader.value()
            if type(key) is not str:
                raise reader.fail("expected a member name")
            reader.expect(":")
            if key == "nodes":
                break
            reader.value()  # the head's members: read and checked by read_head
            reader.expect(",")
        yield from _walk(reader)
        reader.expect("}")
        if reader.peek() != "":
            raise reader.fail("text after the state")
    finally:
        os.close(fd)
