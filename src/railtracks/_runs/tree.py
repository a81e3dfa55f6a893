"""The call tree of a session's spans, assembled and walked without stalling other threads.

A state of a million nodes is built in a thread while the session's event
loop goes on. Python code lets the loop in every few milliseconds; a single C
call does not: sorting a million spans, resizing a million-entry set or
freeing a million objects at once each held the interpreter for tens of ms.
So nothing here is as large as the session in one C call: the start order is
checked in Python and sorted only when spans ended out of order, parents are
keyed only by the spans that have children, and the walk frees each span as
soon as its record is made.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeVar

from .._recording.compact import FinishedSpan

_T = TypeVar("_T")
_PARENT_ID: Final = operator.attrgetter("parent_id")
# (index among its siblings, the node's record), or None after a node's children
NodeWalk = Iterator[tuple[int, dict[str, Any]] | None]


def start_order(span: FinishedSpan) -> tuple[int, int]:
    return span.start_time or 0, span.span_id


def children_of(nodes: list[FinishedSpan]) -> dict[int | None, list[FinishedSpan]]:
    """Parent span id -> its child nodes in start order; ``None`` -> the top level.

    A node whose parent is not a node of this session (the session span, a
    remote caller, none) is top-level. Nothing here is as large as the
    session: a set of every span id would be resized, in C and holding the
    interpreter, to a million entries; the parent keys are few (one per node
    that has children). Parent links that loop (hostile or broken input: a
    node its own parent, two nodes each other's) would leave their nodes
    unreachable: each loop is cut at one node, which becomes top-level.
    """
    children: dict[int | None, list[FinishedSpan]] = {}
    for span in nodes:
        children.setdefault(span.parent_id, []).append(span)
    # the node of each parent key: the key's own parent decides whether it is reached
    parents = {span.span_id: span for span in nodes if span.span_id in children}
    orphans = [key for key in children if key not in parents]
    tops = [children.pop(key) for key in orphans]
    tops.extend([cut] for cut in _loops_cut(children, parents))
    roots = tops[0] if len(tops) == 1 else list(heapq.merge(*tops, key=start_order))
    if roots:
        children[None] = roots
    return children


def _loops_cut(
    children: dict[int | None, list[FinishedSpan]], parents: dict[int, FinishedSpan]
) -> list[FinishedSpan]:
    """Cut every loop of parent links among the parent keys (a loop is made of nodes that
    have children); the nodes taken out, one a loop, its first in start order."""
    cut: list[FinishedSpan] = []
    for loop in loops(parents, _PARENT_ID):
        node = min((parents[key] for key in loop), key=start_order)
        siblings = children[node.parent_id]
        siblings.remove(node)
        if not siblings:
            del children[node.parent_id]
        cut.append(node)
    cut.sort(key=start_order)
    return cut


def loops(links: Mapping[int, _T], parent: Callable[[_T], int | None]) -> Iterator[list[int]]:
    """Each loop of parent links among the keys of ``links``, once, as its keys.

    ``parent`` reads an entry's parent key. Each key is followed once: a chain
    stops at a key an earlier chain marked, so any links cost linear time.
    """
    mark: dict[int, int] = {}  # key -> the number of the chain that reached it
    for chain, start in enumerate(links):
        key = start
        while key not in mark:
            mark[key] = chain
            up = parent(links[key])
            if up is None or up not in links:
                break
            key = up
        else:  # stopped at a marked key: on this chain, it closes a loop
            if mark[key] == chain:
                loop = [key]
                while (up := parent(links[loop[-1]])) != key and up is not None:
                    loop.append(up)
                yield loop


def sort_by_start(spans: list[FinishedSpan]) -> None:
    """Start order (ties by span id), checked first: spans mostly end in the order they start.

    A sort runs in C without letting another thread in: over a million spans,
    long enough to stall an event loop; the check is Python, and usually enough.
    """
    previous: tuple[int, int] | None = None
    for span in spans:
        key = start_order(span)
        if previous is not None and key < previous:
            spans.sort(key=start_order)
            return
        previous = key


def walk(
    children: dict[int | None, list[FinishedSpan]],
    record_of: Callable[[FinishedSpan], dict[str, Any]],
) -> NodeWalk:
    """Depth first: ``(index among siblings, record)`` per node, ``None`` after its children."""
    # Each level is taken out of `children` when the walk reaches it and popped
    # span by span, so every span is freed right after its record is made:
    # dropping a million at the end, in one go, would hold the interpreter (and
    # every other thread) for a while.
    roots = children.pop(None, [])
    roots.reverse()
    stack: list[list[Any]] = [[roots, 0]]  # [spans left (last first), index of the next]
    while stack:
        level = stack[-1]
        left: list[FinishedSpan] = level[0]
        if not left:
            stack.pop()
            if stack:
                yield None  # the end of the node whose children these were
            continue
        span = left.pop()
        index = level[1]
        level[1] = index + 1
        yield index, record_of(span)
        below = children.pop(span.span_id, None)
        del span
        if below:
            below.reverse()
            stack.append([below, 0])
        else:
            yield None
