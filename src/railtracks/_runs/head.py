"""A saved state's head: the counts written ahead of its nodes, and reading it without them.

A state is written with its head first (``schema_version``, ``counts``,
``session``, ``answer``) and ``"nodes"`` last (``_runs.store``). Since
``schema_version`` 2 the head holds ``counts``: how many nodes the state holds
and how many of them did not complete. They are computed before the first
node is written (``tree_counts``), from the same parent links the writer
walks, so they match what ``_runs.state.iter_nodes`` counts, foreign spans included.

``read_head`` reads a file's first bytes (64 KiB, grown as needed up to
``MAX_HEAD_BYTES``), parses the top-level object member by member and stops at
the ``"nodes"`` key: ``railtracks runs`` lists a 1,000,000-node state without
parsing it. The file is untrusted: what was read is validated against the
published schema, the counts must agree with each other and the file must end
the way a complete state ends; anything else is a ``StateError``. A version 1
head has no counts: ``read_head`` returns None and the caller parses the file
whole, as before (so does any file without counts before its nodes).
"""

from __future__ import annotations

import codecs
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._recording import attributes as attr
from ..errors import StateError
from .schema import SchemaError, validate_state

if TYPE_CHECKING:
    from .._recording.compact import FinishedSpan

MAX_HEAD_BYTES: Final = 16 << 20
"""The most a head may take: past it, the file is not listed as a state."""
_FIRST_READ: Final = 64 << 10
_TAIL_BYTES: Final = 256
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
# A complete state ends with its node list closing, then the document: `]}`.
_COMPLETE_END: Final = re.compile(rb"\][ \t\n\r]*\}[ \t\n\r]*\Z")
_HEAD_KEYS: Final = frozenset({"schema_version", "counts", "session", "answer"})


def tree_counts(children: Mapping[int | None, Sequence[FinishedSpan]]) -> dict[str, int]:
    """``{"nodes": N, "failed": F}`` of the tree the state writer walks (``_runs.tree.walk``).

    ``children`` maps a parent span id (None for the top level) to its child
    spans; a node is failed when its status is not ``completed`` (failed,
    timeout or cancelled), the status the state records for it.
    """
    nodes = failed = 0
    completed = attr.STATUS_COMPLETED
    key = attr.STATUS
    stack = list(children.get(None, ()))
    # each parent's children are taken once, as the writer's walk pops them: on
    # any parent links (a loop, a repeated id) the count ends and matches the walk
    left = dict(children)
    while stack:
        span = stack.pop()
        nodes += 1
        status = span.attribute(key)
        if status is None:
            failed += not span.is_ok
        elif status != completed:
            failed += 1
        below = left.pop(span.span_id, None)
        if below:
            stack.extend(below)
    return {"nodes": nodes, "failed": failed}


def document_counts(nodes: Iterable[Any]) -> dict[str, int]:
    """The same counts, of a parsed (already validated) document's call tree."""
    count = failed = 0
    stack = list(nodes)
    while stack:
        node = stack.pop()
        count += 1
        failed += node["status"] != attr.STATUS_COMPLETED
        stack.extend(node["children"])
    return {"nodes": count, "failed": failed}


@dataclass(frozen=True)
class StateHead:
    """What a state says before its nodes: enough for a row of ``railtracks runs``."""

    schema_version: int
    session: dict[str, Any]
    answer: Any
    nodes: int
    failed: int


class _Invalid(Exception):
    """Not a state, whatever follows: stop reading."""


class _NeedMore(Exception):
    """The member being parsed runs past what has been read so far."""


def _reject_constant(name: str) -> Any:
    raise _Invalid(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


class _Head:
    """The top-level object parsed member by member, resumable where more text is needed."""

    def __init__(self) -> None:
        self.members: dict[str, Any] = {}
        self.position = -1  # before the opening brace
        self.done = False

    def parse(self, text: str) -> None:
        """Parse members up to ``"nodes"``; ``_NeedMore`` keeps what is complete."""
        if self.position < 0:
            start = _next(text, 0)
            if text[start] != "{":
                raise _Invalid("not a JSON object")
            self.position = start + 1
        while not self.done:
            self.position = self._member(text, self.position)

    def _member(self, text: str, position: int) -> int:
        """Parse one ``"key": value,`` from ``position``; where the next one starts."""
        at = _next(text, position)
        if text[at] != '"':
            raise _Invalid("a state ends with its nodes" if text[at] == "}" else "not JSON")
        key, at = _decoded(text, at)
        at = _next(text, at)
        if text[at] != ":":
            raise _Invalid("not JSON")
        at = _next(text, at + 1)
        if key in self.members:
            raise _Invalid(f"{key!r} given twice")
        if key == "nodes":
            if text[at] != "[":
                raise _Invalid("nodes is not a list")
            self.done = True
            return at
        if key not in _HEAD_KEYS:
            raise _Invalid(f"unexpected field {key!r}")
        value, at = _decoded(text, at)
        # a number cut at the end of what was read would parse as a shorter one:
        # a member is complete only once the character after it has been read
        at = _next(text, at)
        if text[at] != ",":
            raise _Invalid("a state ends with its nodes" if text[at] == "}" else "not JSON")
        self.members[key] = value
        return at + 1


def _next(text: str, position: int) -> int:
    """Where the next character other than whitespace is; ``_NeedMore`` if not read yet."""
    at = _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]  # always matches
    if at >= len(text):
        raise _NeedMore
    return at


def _decoded(text: str, position: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, position)
    except RecursionError:
        raise _Invalid("nested too deeply") from None
    except ValueError:  # invalid, or cut where the read ended: more text tells which
        raise _NeedMore from None


def _open_regular(path: Path) -> int:
    # O_NONBLOCK: a FIFO named *.json must not hang the listing
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise _Invalid("not a regular file")
    return fd


def _parse_head(fd: int, size: int) -> dict[str, Any]:
    head = _Head()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    text = ""
    taken = 0
    want = _FIRST_READ
    while True:
        chunk = _read_at(fd, min(want, MAX_HEAD_BYTES) - taken, taken)
        taken += len(chunk)
        at_end = not chunk or taken >= size
        try:
            text += decoder.decode(chunk, final=at_end)
        except UnicodeDecodeError as exc:
            raise _Invalid(f"not UTF-8 ({exc.reason})") from None
        try:
            head.parse(text)
        except _NeedMore:
            if at_end:
                raise _Invalid("it ends before its nodes") from None
            if taken >= MAX_HEAD_BYTES:
                raise _Invalid(f"its head is larger than {MAX_HEAD_BYTES >> 20} MiB") from None
            want = taken * 2
            continue
        return head.members


def _read_at(fd: int, count: int, offset: int) -> bytes:
    """Up to ``count`` bytes from ``offset`` (``os.pread`` is not on every platform)."""
    os.lseek(fd, offset, os.SEEK_SET)
    parts: list[bytes] = []
    while count > 0:
        part = os.read(fd, count)
        if not part:
            break
        parts.append(part)
        count -= len(part)
    return b"".join(parts)


def _ends_complete(fd: int, size: int) -> bool:
    start = max(0, size - _TAIL_BYTES)
    return _COMPLETE_END.search(_read_at(fd, size - start, start)) is not None


def read_head(path: Path) -> StateHead | None:
    """The head of the state at ``path``; None when it has no counts (version 1: read it whole).

    Raises ``StateError`` when the file is not a readable state.
    """
    try:
        fd = _open_regular(path)
    except OSError as exc:
        raise StateError(f"{path} is not readable: {exc.strerror or exc}") from None
    except _Invalid as exc:
        raise StateError(f"{path} is not a railtracks state: {exc}") from None
    try:
        size = os.fstat(fd).st_size
        members = _parse_head(fd, size)
        complete = _ends_complete(fd, size)
    except _Invalid as exc:
        raise StateError(f"{path} is not a readable railtracks state: {exc}") from None
    except OSError as exc:
        raise StateError(f"{path} is not readable: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if "counts" not in members:  # version 1, or a file written otherwise: read it whole
        return None
    try:
        # the head as a state with no nodes: the schema checks the session record
        validate_state({**members, "nodes": []})
    except SchemaError as exc:
        raise StateError(f"{path} is not a valid railtracks state: {exc}") from None
    except RecursionError:
        raise StateError(f"{path} is not a readable railtracks state: nested too deeply") from None
    counts = members["counts"]
    if counts["failed"] > counts["nodes"]:
        raise StateError(f"{path} is not a valid railtracks state: more failed nodes than nodes")
    if not complete:
        raise StateError(f"{path} is not a readable railtracks state: the file is cut short")
    return StateHead(members["schema_version"], members["session"], members["answer"], **counts)
