"""The call key (SPEC 14): a call's place in the call tree and the digest of its arguments.

A call's *place* is the chain from the session root of ``(node name, ordinal
among same-named siblings under the same parent, counted in start order)``,
ending with the call itself; shown as ``plan[0]/ask[2]``. The arguments
digest is ``_reuse.recorded.arguments_digest``, recorded on every node span as
``railtracks.node.args_digest`` (the node record's ``"args_digest"``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Place = tuple[tuple[str, int], ...]
ROOT: Place = ()


def format_place(place: Place) -> str:
    """``plan[0]/ask[2]``; ``(session)`` for the root."""
    return "/".join(f"{name}[{ordinal}]" for name, ordinal in place) or "(session)"


def _start(node: Mapping[str, Any]) -> int:
    start = node.get("start_time_unix_nano")
    return start if type(start) is int else 0


def _named(node: Mapping[str, Any]) -> str:
    name = node.get("name")
    return name if isinstance(name, str) else ""


def with_places(nodes: Sequence[dict[str, Any]]) -> Iterator[tuple[Place, dict[str, Any]]]:
    """``(place, node record)`` for every railtracks call of a state's tree, depth first.

    A foreign span (another instrumentation's) is not a call: railtracks nodes
    under it count as children of the nearest railtracks call above.
    """
    stack: list[tuple[Place, list[dict[str, Any]]]] = [(ROOT, _own_level(nodes))]
    while stack:
        parent, level = stack.pop()
        seen: dict[str, int] = {}
        for node in level:
            name = _named(node)
            ordinal = seen.get(name, 0)
            seen[name] = ordinal + 1
            place = (*parent, (name, ordinal))
            yield place, node
            stack.append((place, _own_level(node.get("children"))))


def _own_level(nodes: Any) -> list[dict[str, Any]]:
    """The railtracks calls at one level, foreign spans looked through, in start order."""
    out: list[dict[str, Any]] = []
    pending = list(nodes) if isinstance(nodes, list) else []
    while pending:
        node = pending.pop()
        if not isinstance(node, dict):
            continue
        if node.get("foreign"):
            children = node.get("children")
            pending.extend(children if isinstance(children, list) else [])
        else:
            out.append(node)
    out.sort(key=_start)
    return out


def places(state: Mapping[str, Any]) -> dict[Place, dict[str, Any]]:
    """Every call of a saved state by its place."""
    nodes = state.get("nodes")
    return dict(with_places(nodes if isinstance(nodes, list) else []))
