"""``railtracks show RUN``: a saved state's call tree, narrowed to what is asked for.

    --depth N     N levels below the session (below the chosen node with --node)
    --failed      nodes that failed, timed out or were cancelled, with their ancestors
    --node X      the subtree of the node whose span id is X, or of every node named X
    --limit N     at most N node lines (default 1,000); --all for every one

The filters combine. The session line, its context and the answer are always
printed, and the context at the session's end (``final context:``) when it
differs from the context at its start; ancestors of what is chosen are printed
too, so each line keeps its place in the tree. When the limit (or the depth)
leaves nodes out, the tree says how many, so a 200,000-node state prints a
page, not 200,003 lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any, Final, TextIO

from .._delivery.console import format_duration, short
from .._logs.terminal import inert
from .._runs.store import load_state
from ..errors import RailtracksError
from .usage_text import usage_by_model, usage_suffix

DEFAULT_LIMIT: Final = 1000


class NoSuchNode(RailtracksError):
    """``--node`` names no node of the state."""


@dataclass(frozen=True)
class Narrowing:
    """What ``show`` prints of the tree; None for no bound."""

    depth: int | None = None
    failed: bool = False
    node: str | None = None
    limit: int | None = DEFAULT_LIMIT


@dataclass(slots=True)
class _Entry:
    depth: int
    record: dict[str, Any]
    parent: int  # index of the parent entry, -1 at the top level
    below: int = 0  # nodes under this one, at any depth


def _flatten(nodes: list[dict[str, Any]]) -> list[_Entry]:
    """The tree depth first, each node with its parent's index and its subtree's size."""
    entries: list[_Entry] = []
    stack: list[tuple[int, dict[str, Any], int]] = [(0, node, -1) for node in reversed(nodes)]
    while stack:
        depth, record, parent = stack.pop()
        index = len(entries)
        entries.append(_Entry(depth, record, parent))
        stack.extend((depth + 1, child, index) for child in reversed(record["children"]))
    for entry in reversed(entries):  # children come after their parent
        if entry.parent >= 0:
            entries[entry.parent].below += entry.below + 1
    return entries


def _matches(record: dict[str, Any], wanted: str, span_id: str) -> bool:
    return bool(record["span_id"] == span_id or record["name"] == wanted)


def select(nodes: list[dict[str, Any]], narrowing: Narrowing) -> list[tuple[_Entry, int]]:
    """``(entry, nodes hidden under it by the depth)`` for each node to print, in tree order."""
    entries = _flatten(nodes)
    shown = [False] * len(entries)
    # with --node, depth counts from the chosen node (0) rather than the session
    scope_depth = -1
    base = [-1] * len(entries)
    span_id = (narrowing.node or "").lower()
    for index, entry in enumerate(entries):
        if scope_depth >= 0 and entry.depth <= scope_depth:
            scope_depth = -1
        if narrowing.node is None:
            base[index] = -1
        elif scope_depth >= 0:
            base[index] = scope_depth
        elif _matches(entry.record, narrowing.node, span_id):
            scope_depth = base[index] = entry.depth
        else:
            continue
        level = entry.depth - base[index]
        if narrowing.depth is not None and level > narrowing.depth:
            continue
        if narrowing.failed and entry.record["status"] == "completed":
            continue
        shown[index] = True
        parent = entry.parent
        while parent >= 0 and not shown[parent]:  # ancestors, once each
            shown[parent] = True
            parent = entries[parent].parent
    if narrowing.node is not None and not any(b >= 0 for b in base):
        raise NoSuchNode(f"no node {narrowing.node!r} in this state (a span id or a node name)")
    chosen: list[tuple[_Entry, int]] = []
    for index, entry in enumerate(entries):
        if not shown[index]:
            continue
        cut = narrowing.depth is not None and entry.depth - base[index] == narrowing.depth
        chosen.append((entry, entry.below if cut and not narrowing.failed else 0))
    return chosen


def tree_line(depth: int, record: dict[str, Any], *, session: bool) -> str:
    """One line of the tree: name, status, duration, then the error or the output."""
    duration = record.get("duration_seconds")
    shown = format_duration(duration) if isinstance(duration, int | float) else "-"
    name = record.get("span_name") if session else record.get("name")
    line = f"{'  ' * depth}{name}  {record['status']}  {shown}{usage_suffix(record)}"
    if record["status"] != "completed" and record.get("error"):
        line += f"  {short(record['error'].get('message') or record['error'].get('type'), 160)}"
    elif not session and record.get("output") is not None:
        line += f"  -> {short(json.dumps(record['output'], ensure_ascii=False))}"
    return line


def _context_line(context: dict[str, Any]) -> str:
    return short(", ".join(f"{k}={v!r}" for k, v in context.items()), 200)


def _say(text: str, stream: TextIO | None = None) -> None:
    print(inert(text), file=stream or sys.stdout)


def say(text: str) -> None:
    """Print one line of untrusted text: control characters shown, never obeyed."""
    _say(text)


def session_lines(session: dict[str, Any]) -> list[str]:
    """The lines under the session's: its context at its start, at its end when that
    differs, and its model calls' usage by model."""
    lines = []
    if session.get("context"):
        lines.append(f"  context: {_context_line(session['context'])}")
    final = session.get("final_context")
    if final is not None and final != session.get("context"):
        lines.append(f"  final context: {_context_line(final) if final else '(empty)'}")
    return lines + usage_by_model(session)


def show(run: str, narrowing: Narrowing) -> int:
    """Print the (narrowed) call tree of a saved state; the exit status."""
    from .show_stream import show_streamed, streams  # noqa: PLC0415  # it builds on this module

    if streams(narrowing) and (status := show_streamed(run, narrowing)) >= 0:
        return status
    state = load_state(run)
    chosen = select(state["nodes"], narrowing)  # before any line: --node may name no node
    session = state["session"]
    _say(f"{tree_line(0, session, session=True)}  trace {session['trace_id']}")
    for line in session_lines(session):
        _say(line)
    limit = narrowing.limit
    for entry, hidden in chosen[:limit] if limit is not None else chosen:
        line = tree_line(entry.depth + 1, entry.record, session=False)
        _say(f"{line}  [+{hidden:,} below]" if hidden else line)
    if not chosen and narrowing.failed:
        _say("  (no node failed, timed out or was cancelled)")
    elif not chosen and state["nodes"] and narrowing.depth == 0:
        _say("  [nodes below: --depth 1 or more to print them]")
    if limit is not None and len(chosen) > limit:
        _say(f"  ... {len(chosen) - limit:,} more nodes: --limit N or --all to print them")
    if state.get("answer") is not None:
        _say(f"answer: {short(json.dumps(state['answer'], ensure_ascii=False), 200)}")
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``show``'s narrowing options."""
    parser.add_argument(
        "--depth", type=_count, metavar="N", help="N levels of nodes (below --node's node)"
    )
    parser.add_argument(
        "--failed",
        action="store_true",
        help="only failed, timed-out and cancelled nodes, with their ancestors",
    )
    parser.add_argument(
        "--node", metavar="ID_OR_NAME", help="the subtree of one node: its span id, or a name"
    )
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument(
        "--limit",
        type=_count,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"print at most N nodes (default {DEFAULT_LIMIT:,})",
    )
    bound.add_argument("--all", action="store_true", help="print every node")


def narrowing_of(args: argparse.Namespace) -> Narrowing:
    """The narrowing the parsed options ask for."""
    return Narrowing(
        depth=args.depth,
        failed=args.failed,
        node=args.node,
        limit=None if args.all else args.limit,
    )
