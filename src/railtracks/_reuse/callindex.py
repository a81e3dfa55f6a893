"""A recorded run's calls, indexed once for replay (SPEC 14).

Resume and ``rt.testing.replay`` answer many calls from one recorded run: all
that a call's answer needs which does not depend on the live call (its digest,
whether it completed, why it cannot be replayed, its recorded output, the
context changes of its subtree) is read here, in one pass over the saved
state, rather than by walking each call's subtree as it is answered. The
index keeps only those fields (tuples of strings and numbers), not the state:
a 100,000-node state is millions of containers the garbage collector would
otherwise rescan for as long as the session runs.

The state is untrusted input: a malformed field makes that call run live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from .._gc import gc_paused
from .._recording import attributes as attr
from .callkey import Place, walk

NO_INPUT: Final[Any] = None  # a call whose recorded input is not kept (it has a digest)


class Recorded(NamedTuple):
    """What replaying one recorded call needs (a tuple: the collector need not track it)."""

    digest: str | None
    input: Any  # the recorded input, when kept: no digest (matched on it) or strict replay
    input_whole: bool  # recorded and not cut at the value limit
    completed: bool
    reason: str | None  # why it cannot be replayed (itself or its subtree), or None
    output: Any  # the recorded JSON text when ``output_text``, else the parsed output
    output_text: bool
    output_cut: bool  # cut at the value limit and not recorded in full
    span_id: int
    changes: tuple[int, int]  # the range of ``CallIndex.changes`` of its subtree (may be empty)


# (time, operation, recorded JSON) of one context change
Change = tuple[int, str, str]


class CallIndex:
    """Every railtracks call of a recorded run by place (foreign spans looked through)."""

    __slots__ = ("calls", "changes")

    def __init__(self, state: Mapping[str, Any], *, keep_inputs: bool) -> None:
        # a burst of acyclic containers over a large state: see gc_paused
        with gc_paused():
            self._build(state, keep_inputs=keep_inputs)

    def _build(self, state: Mapping[str, Any], *, keep_inputs: bool) -> None:
        nodes = state.get("nodes")
        walked = walk(nodes if isinstance(nodes, list) else [])
        # depth first, a subtree is a range of ``walked``; its changes are laid out so
        # that the changes of a subtree are one slice of ``self.changes``
        self.changes: list[Change] = []
        starts = [0] * (len(walked) + 1)
        broken: dict[int, str] = {}  # position -> why its own changes cannot be applied again
        for position, call in enumerate(walked):
            starts[position] = len(self.changes)
            why = _own_changes(call.record, self.changes)
            if why is not None:
                broken[position] = why
        starts[len(walked)] = len(self.changes)
        next_broken = _next_marked(broken, len(walked))
        calls: dict[Place, Recorded] = {}
        for position, call in enumerate(walked):
            if call.foreign or call.place in calls:
                continue
            record = call.record
            reason = _own_reason(record)
            if reason is None and next_broken[position] < call.end:
                reason = broken[next_broken[position]]
            span = (starts[position], starts[call.end])
            calls[call.place] = _recorded(call.digest, record, reason, span, keep_inputs)
        self.calls = calls

    def subtree_changes(self, recorded: Recorded) -> list[Change]:
        """The context changes a call and the calls under it made, in time order."""
        start, end = recorded.changes
        if start == end:
            return []
        return sorted(self.changes[start:end], key=_at)


_EVENTS_DROPPED: Final = "some of its context changes were not recorded (event limit)"
_CHANGE_UNRECORDED: Final = "a context change it made was not recorded (redacted or unencodable)"


def _at(change: Change) -> int:
    return change[0]


def _next_marked(marked: Mapping[int, object], size: int) -> list[int]:
    """For each position, the first marked position at or after it (``size``: none)."""
    out = [size] * (size + 1)
    nearest = size
    for position in range(size - 1, -1, -1):
        if position in marked:
            nearest = position
        out[position] = nearest
    return out


def _own_changes(record: Mapping[str, Any], into: list[Change]) -> str | None:
    """Append the recorded context changes of one span; why some cannot be applied, if so."""
    dropped = record.get("dropped")
    why = _EVENTS_DROPPED if isinstance(dropped, dict) and dropped.get("events") else None
    changes = record.get("context_changes")
    if not isinstance(changes, list):
        return why
    for change in changes:
        attributes = change.get("attributes") if isinstance(change, dict) else None
        if not isinstance(attributes, dict):
            attributes = {}
        recorded = attributes.get(attr.CONTEXT_CHANGE_RECORDED)
        if not isinstance(recorded, str):
            why = why or _CHANGE_UNRECORDED
            continue
        operation = attributes.get(attr.CONTEXT_CHANGE_OPERATION)
        if isinstance(operation, str):
            at = change.get("time_unix_nano")
            into.append((at if type(at) is int else 0, operation, recorded))
    return why


def _own_reason(record: Mapping[str, Any]) -> str | None:
    attributes = record.get("attributes")
    reason = attributes.get(attr.NODE_UNREPLAYABLE) if isinstance(attributes, dict) else None
    return f"its output was not recorded ({reason[:80]})" if isinstance(reason, str) else None


def _recorded(
    digest: str | None,
    record: Mapping[str, Any],
    reason: str | None,
    changes: tuple[int, int],
    keep_inputs: bool,
) -> Recorded:
    raw = record.get("raw_fields")
    raw = raw if isinstance(raw, list) else ()
    attributes = record.get("attributes")
    text = attributes.get(attr.NODE_RECORDED_OUTPUT) if isinstance(attributes, dict) else None
    output_text = isinstance(text, str)
    return Recorded(
        digest=digest,
        input=record.get("input") if keep_inputs or digest is None else NO_INPUT,
        input_whole="input" in record and "input" not in raw,
        completed=record.get("status") == attr.STATUS_COMPLETED,
        reason=reason,
        output=text if output_text else record.get("output"),
        output_text=output_text,
        output_cut=not output_text and "output" in raw,
        span_id=hex_id(record.get("span_id"), 16),
        changes=changes,
    )


def hex_id(value: object, digits: int) -> int:
    """A hex id of ``digits`` digits as an int (0: not one)."""
    if isinstance(value, str) and len(value) == digits:
        try:
            return int(value, 16)
        except ValueError:
            return 0
    return 0
