"""A saved state assembled from a run journal by streaming (SPEC 13).

The journal (``_runs.journal``) is read twice, never held whole. The first
pass keeps, per span line, only a few integers in flat arrays (its offset,
length, start time, span and parent ids, and flags): about 40 bytes a node,
whatever the node carried. The call tree is linked through those arrays
(first child, next sibling, in start order), and the second pass walks it
depth first, reading each node's line again (``pread``) to make its record:
the state is streamed to disk as ``_runs.store.encode_state_chunks`` expects.

A span whose ``"b"`` (started) line has no ``"s"`` (ended) line was still
running when its process died: it is read as ``unfinished`` (the session's own
span: ``crashed``), with no end time.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator
from typing import Any, Final

from .._config import CONFIG
from .._recording import attributes as attr
from .._recording.compact import FinishedSpan, Record
from .journal_lines import Decoder, Line, Scanned, lines_of_file
from .state import assembled_head, node_record
from .tree import NodeWalk
from .usage import usage_from_attributes

_FAILED: Final = 1
_STARTED_ONLY: Final = 2
_DEAD: Final = 4
_NONE: Final = -1


class _Index:
    """The span lines of a journal as flat arrays (one slot per line kept)."""

    def __init__(self) -> None:
        self.offsets = array("q")
        self.lengths = array("I")
        self.starts = array("q")
        self.spans = array("Q")
        self.parents = array("Q")  # 0: no parent
        self.flags = bytearray()
        self.session: tuple[int, int, int] | None = None  # (offset, length, line number)
        self.session_started_only = False

    def add(self, offset: int, length: int, line: Scanned) -> None:
        if line.session:
            if self.session is None or line.kind == "s":
                self.session = (offset, length, 0)
                self.session_started_only = line.kind == "b"
            return
        started_only = line.kind == "b"
        self.offsets.append(offset)
        self.lengths.append(length)
        self.starts.append(line.start)
        self.spans.append(line.span_id)
        self.parents.append(line.parent_id)
        self.flags.append(
            (_STARTED_ONLY | _FAILED) if started_only else (_FAILED if line.failed else 0)
        )


def _index(fd: int, decoder: Decoder) -> _Index:
    index = _Index()
    began: dict[int, int] = {}  # span id -> slot of its "b" line, while no "s" line came
    for offset, length, line in lines_of_file(fd, decoder):
        if line is None:
            continue
        if line.kind == "s":
            slot = began.pop(line.span_id, None)
            if slot is not None:
                index.flags[slot] |= _DEAD
        elif not line.session:
            began[line.span_id] = len(index.flags)
        index.add(offset, length, line)
    return index


class _Tree:
    """First child and next sibling of every live slot, in start order (ties: span id)."""

    def __init__(self, index: _Index) -> None:
        n = len(index.flags)
        referenced = set(index.parents)
        spans, parents = index.spans, index.parents
        slot_of = {spans[i]: i for i in range(n) if spans[i] in referenced}
        self.first = array("i", [_NONE]) * n
        self.next = array("i", [_NONE]) * n
        self.root = _NONE
        flags = index.flags
        for i in reversed(_start_order(index)):
            if flags[i] & _DEAD:
                continue
            parent = slot_of.get(parents[i], _NONE)
            if parent == i:
                parent = _NONE  # its own parent (a crafted line): top level
            if parent == _NONE:
                self.next[i], self.root = self.root, i
            else:
                self.next[i], self.first[parent] = self.first[parent], i

    def depth_first(self) -> Iterator[int]:
        """Every slot reachable from the top level, depth first (-1 after a node's children)."""
        stack = [self.root]
        first, following = self.first, self.next
        while stack:
            slot = stack.pop()
            if slot == _NONE:
                continue
            if slot < -1:  # the end marker of node -(slot + 2)
                yield -1
                continue
            stack.append(following[slot])
            yield slot
            stack.append(-(slot + 2))
            stack.append(first[slot])


def _start_order(index: _Index) -> range | list[int]:
    """The live slots in start order (ties: span id), without a list when already so.

    Spans are journaled as they end, which is start order for sequential calls:
    then the slots need no list (a million Python ints), only a check.
    """
    flags, starts, spans = index.flags, index.starts, index.spans
    n = len(flags)
    previous = (-1, 0)
    for i in range(n):
        if flags[i] & _DEAD:
            continue
        key = (starts[i], spans[i])
        if key < previous:
            break
        previous = key
    else:
        return range(n)  # the caller skips the dead slots
    live = [i for i in range(n) if not flags[i] & _DEAD]
    live.sort(key=spans.__getitem__)
    live.sort(key=starts.__getitem__)  # stable: start, then span id
    return live


def _counts(index: _Index, tree: _Tree) -> dict[str, int]:
    nodes = failed = 0
    flags = index.flags
    for slot in tree.depth_first():
        if slot >= 0:
            nodes += 1
            failed += flags[slot] & _FAILED
    return {"nodes": nodes, "failed": failed}


def _read(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise OSError(f"the journal was cut short while read (at byte {offset})")
    return data


def _unfinished(kept: Record, status: str) -> Record:
    """A started span's record read as never ended: no end time, ``status`` said."""
    keys, values = kept[11], kept[12]
    if attr.STATUS in keys:
        at = keys.index(attr.STATUS)
        values = (*values[:at], status, *values[at + 1 :])
    else:
        keys, values = (*keys, attr.STATUS), (*values, status)
    return (*kept[:8], None, 0, None, keys, values, *kept[13:])


class Assembly:
    """The state of one journal: ``head`` (counts, session, answer) and ``nodes()``."""

    def __init__(self, fd: int, source: object) -> None:
        self._fd = fd
        self._decoder = Decoder(source)
        self._index = _index(fd, self._decoder)
        self.header = self._decoder.header
        self._tree = _Tree(self._index)
        self.crashed = self._index.session is None or self._index.session_started_only
        session_span = self._session_span()
        self.head = assembled_head(
            session_span, _counts(self._index, self._tree), self._last_output
        )
        if session_span is not None and self.head["session"] is not None:
            _add_usage(self.head["session"], session_span)

    def _line(self, offset: int, length: int) -> Line:
        line = self._decoder.decode(_read(self._fd, offset, length), 2)
        assert line is not None  # it was a span line on the first pass
        return line

    def _session_span(self) -> FinishedSpan | None:
        where = self._index.session
        if where is None:
            return None
        kept = self._line(where[0], where[1]).record
        if self._index.session_started_only:
            kept = _unfinished(kept, attr.STATUS_CRASHED)
        return FinishedSpan.view(kept)

    def _span(self, slot: int) -> FinishedSpan:
        index = self._index
        kept = self._line(index.offsets[slot], index.lengths[slot]).record
        if index.flags[slot] & _STARTED_ONLY:
            kept = _unfinished(kept, attr.STATUS_UNFINISHED)
        return FinishedSpan.view(kept)

    def _last_output(self) -> Any:
        completed = array("i")  # top-level slots not failed (4 bytes each, not a list)
        slot, flags = self._tree.root, self._index.flags
        while slot != _NONE:
            if not flags[slot] & _FAILED:
                completed.append(slot)
            slot = self._tree.next[slot]
        for slot in reversed(completed):
            record = node_record(self._span(slot))
            if record["status"] == attr.STATUS_COMPLETED and "foreign" not in record:
                return record["output"]
        return None

    def nodes(self) -> NodeWalk:
        """The nodes as a walk: ``(index among siblings, record)``, None after a node's children."""
        siblings = [0]
        for slot in self._tree.depth_first():
            if slot < 0:
                siblings.pop()
                yield None
                continue
            span = self._span(slot)
            record = node_record(span)
            _add_usage(record, span)
            yield siblings[-1], record
            siblings[-1] += 1
            siblings.append(0)


def _add_usage(record: dict[str, Any], span: FinishedSpan) -> None:
    """The record's ``usage``, from the totals its span carries (the spans are not all here)."""
    usage = usage_from_attributes(span.attributes, CONFIG.telemetry.prices)
    if usage is not None:
        record["usage"] = usage
