"""The call key (SPEC 14): a call's place in the call tree and the digest of its arguments.

One definition for resume, replay and diff. A call's **place** is the chain,
from the session, of ``(node name, ordinal)`` ending with the call itself;
the ordinal counts the same-named calls under the same calling node, in start
order (ties: by span id). The chain of a railtracks node holds only railtracks
nodes (the calling nodes, as the runtime sees them, whatever other
instrumentation's spans sit between). A foreign span (other instrumentation,
or every span of a trace imported from elsewhere) is not a call: resume and
replay look through it; diff places it under its direct parent, its name
marked ``~`` so it never takes a node's place.

The arguments digest is ``_reuse.recorded.arguments_digest``, recorded on a
node span as ``railtracks.node.args_digest`` (the node record's
``"args_digest"``). The runtime gives a live call its place as it starts
(``_runtime.replay.Replayer.place``), by the same rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._recording import attributes as attr

FOREIGN_MARK: Final = "~"
Place = tuple[tuple[str, int], ...]
ROOT: Place = ()


@dataclass(slots=True)
class Call:
    """One call (or foreign span) of a saved run, where it stands and what it was."""

    place: Place
    record: dict[str, Any]
    foreign: bool
    digest: str | None = None
    end: int = 0  # in ``walk``'s list: the index past its last descendant (its subtree's end)

    @property
    def name(self) -> str:
        return self.place[-1][0]


def format_place(place: Place) -> str:
    """``plan[0]/ask[2]``, every ordinal shown (replay's messages); ``(session)`` for the root."""
    return "/".join(f"{name}[{ordinal}]" for name, ordinal in place) or "(session)"


def place_text(place: Place) -> str:
    """``plan/fetch[2]``: a place as one short line (ordinals from 1, shown past the first)."""
    return "/".join(name if ordinal == 0 else f"{name}[{ordinal + 1}]" for name, ordinal in place)


def recorded_digest(record: Mapping[str, Any]) -> str | None:
    """The arguments digest the run recorded for a call, if any."""
    found = record.get("args_digest")
    if not isinstance(found, str):
        attributes = record.get("attributes")
        found = attributes.get(attr.NODE_ARGS_DIGEST) if isinstance(attributes, dict) else None
    return found if isinstance(found, str) else None


def places(state: Mapping[str, Any]) -> dict[Place, dict[str, Any]]:
    """Every railtracks call of a saved state by its place (foreign spans looked through)."""
    nodes = state.get("nodes")
    found: dict[Place, dict[str, Any]] = {}
    for call in walk(nodes if isinstance(nodes, list) else []):
        if not call.foreign:
            found.setdefault(call.place, call.record)
    return found


def calls_by_place(nodes: list[dict[str, Any]]) -> dict[Place, Call]:
    """Every call and foreign span of a state's node tree by its place (depth first)."""
    found: dict[Place, Call] = {}
    for call in walk(nodes):
        found.setdefault(call.place, call)
    return found


def _start_key(record: Mapping[str, Any]) -> tuple[int, str]:
    start = record.get("start_time_unix_nano")
    span_id = record.get("span_id")
    return (start if type(start) is int else 0, span_id if isinstance(span_id, str) else "")


def walk(nodes: list[dict[str, Any]]) -> list[Call]:
    """The calls and foreign spans of a node tree, depth first, each with its place.

    Each one's descendants follow it in the list, up to its ``end``.

    A node under a foreign span counts among its calling node's other calls, so
    ordinals are given after the whole tree is read, not as the walk meets them.
    Iterative: a hostile state nested deep never exhausts the stack.
    """
    root = Call(place=ROOT, record={}, foreign=False)
    calls: list[Call] = []
    anchors: list[Call] = []  # the call each one is placed under
    # (records left under this parent, the nearest railtracks node's call, the parent's)
    stack: list[tuple[Iterator[Any], Call, Call]] = [(iter(nodes), root, root)]
    while stack:
        records, caller, parent = stack[-1]
        record = next(records, None)
        if record is None:
            stack.pop()
            parent.end = len(calls)
            continue
        if not isinstance(record, dict):
            continue
        foreign = record.get("foreign") is True
        label = str(record.get("name", ""))
        call = Call(place=((FOREIGN_MARK + label if foreign else label, 0),), record=record,
                    foreign=foreign, digest=recorded_digest(record))  # fmt: skip
        calls.append(call)
        call.end = len(calls)
        anchors.append(parent if foreign else caller)
        children = record.get("children")
        if isinstance(children, list) and children:
            stack.append((iter(children), caller if foreign else call, call))
    groups: dict[tuple[int, str], list[int]] = {}
    for index, (call, anchor) in enumerate(zip(calls, anchors, strict=True)):
        groups.setdefault((id(anchor), call.place[0][0]), []).append(index)
    ordinal = [0] * len(calls)
    for members in groups.values():
        if len(members) > 1:
            members.sort(key=lambda i: _start_key(calls[i].record))
            for position, index in enumerate(members):
                ordinal[index] = position
    for index, (call, anchor) in enumerate(zip(calls, anchors, strict=True)):
        call.place = (*anchor.place, (call.place[0][0], ordinal[index]))  # anchors come first
    return calls
