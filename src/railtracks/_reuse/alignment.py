"""The calls of a saved state keyed by place, to align two runs (SPEC 14 "Diff").

A call's **place** is the chain, from the session, of ``(node name, ordinal)``
ending with the call itself; the ordinal counts the same-named calls under the
same calling node, in start order. The chain of a railtracks node holds only
railtracks nodes (the calling nodes, as the runtime sees them, whatever other
instrumentation's spans sit between); a foreign span (other instrumentation,
or every span of a trace imported from elsewhere) is placed under its direct
parent, marked ``~`` so it never takes a node's place.

A call's **arguments** are compared by ``args_digest`` (hex SHA-256 of the
canonical JSON of the bound arguments, recorded on each node span) when both
runs recorded one, else by the canonical JSON of the recorded input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._recording import attributes as attr

FOREIGN_MARK: Final = "~"
Place = tuple[tuple[str, int], ...]


@dataclass(slots=True)
class Call:
    """One call of a run, where it stands and what it was."""

    place: Place
    record: dict[str, Any]
    foreign: bool
    digest: str | None = None

    @property
    def name(self) -> str:
        return self.place[-1][0]


def canonical_json(value: Any) -> str:
    """The canonical JSON of a value: sorted keys, no spaces, as the call key digests it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def args_digest(value: Any) -> str:
    """Hex SHA-256 of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8", "surrogatepass")).hexdigest()


def recorded_digest(record: Mapping[str, Any]) -> str | None:
    """The digest the run recorded for a call (``args_digest``), if any."""
    found = record.get("args_digest")
    if not isinstance(found, str):
        attributes = record.get("attributes")
        found = attributes.get(attr.NODE_ARGS_DIGEST) if isinstance(attributes, dict) else None
    return found if isinstance(found, str) else None


def place_text(place: Place) -> str:
    """``plan/fetch[2]``: a place as one short line (ordinals from 1, shown past the first)."""
    return "/".join(name if ordinal == 0 else f"{name}[{ordinal + 1}]" for name, ordinal in place)


def _start_key(record: Mapping[str, Any]) -> tuple[int, str]:
    start = record.get("start_time_unix_nano")
    return (start if type(start) is int else 0, str(record.get("span_id", "")))


def calls_by_place(nodes: list[dict[str, Any]]) -> dict[Place, Call]:
    """Every call of a state's node tree, by its place (depth first, start order)."""
    found: dict[Place, Call] = {}
    for call in _walk(nodes):
        found.setdefault(call.place, call)
    return found


def _walk(nodes: list[dict[str, Any]]) -> list[Call]:
    """Depth first; ordinals in start order within each (calling call, name, kind) group.

    A node under a foreign span counts among its calling node's other calls, so
    ordinals are given after the whole tree is read, not as the walk meets them.
    """
    root = Call(place=(), record={}, foreign=False)
    calls: list[Call] = []
    anchors: list[Call] = []  # the call each one is placed under
    # (records left under this parent, the nearest railtracks node's call, the parent's)
    stack: list[tuple[Iterator[Any], Call, Call]] = [(iter(nodes), root, root)]
    while stack:
        records, caller, parent = stack[-1]
        record = next(records, None)
        if record is None:
            stack.pop()
            continue
        if not isinstance(record, dict):
            continue
        foreign = record.get("foreign") is True
        label = str(record.get("name", ""))
        call = Call(place=((FOREIGN_MARK + label if foreign else label, 0),), record=record,
                    foreign=foreign, digest=recorded_digest(record))  # fmt: skip
        calls.append(call)
        anchors.append(parent if foreign else caller)
        children = record.get("children")
        if isinstance(children, list) and children:
            stack.append((iter(children), caller if foreign else call, call))
    groups: dict[tuple[int, str], list[int]] = {}
    for index, (call, anchor) in enumerate(zip(calls, anchors, strict=True)):
        groups.setdefault((id(anchor), call.place[0][0]), []).append(index)
    ordinal = [0] * len(calls)
    for members in groups.values():
        members.sort(key=lambda i: _start_key(calls[i].record))
        for position, index in enumerate(members):
            ordinal[index] = position
    for index, (call, anchor) in enumerate(zip(calls, anchors, strict=True)):
        call.place = (*anchor.place, (call.place[0][0], ordinal[index]))  # anchors come first
    return calls
