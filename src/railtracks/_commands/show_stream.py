"""``railtracks show RUN`` streamed: the first screen of a state of any size at once (SPEC 13).

Without ``--failed`` or ``--node`` (which need the whole tree before the
first line), ``show`` prints the session from the state's head and then each
node as it is read from the file (``_runs.stream``), exactly the lines the
whole-tree path prints: ``--depth N`` keeps the first N levels (a node at the
last level says how many nodes lie below it, printed once its subtree has been
read), ``--limit N`` the first N lines. Output is flushed once the first
screen is out; the rest of the file is still read, to count what was left out
and to check every node (a node that is not valid ends it with one line of
error, after what was printed).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Final

from .._delivery.console import short
from .._runs.head import read_head
from .._runs.schema import SchemaError, validate_node
from .._runs.store import resolve_state_path
from .._runs.stream import stream_nodes
from ..errors import StateError
from .show import Narrowing, say, session_lines, tree_line

# Lines printed before the output is flushed the first time: a terminal's screen.
_SCREEN: Final = 60


def streams(narrowing: Narrowing) -> bool:
    """Whether ``show`` can print this narrowing while it reads."""
    return not narrowing.failed and narrowing.node is None


class _Printer:
    """The node lines, bounded by the limit; counts what it could not print."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.chosen = 0

    def line(self, depth: int, record: dict[str, Any], hidden: int) -> None:
        self.chosen += 1
        if self.limit is not None and self.chosen > self.limit:
            return
        text = tree_line(depth + 1, record, session=False)
        say(f"{text}  [+{hidden:,} below]" if hidden else text)
        if self.chosen in (_SCREEN, self.limit):
            sys.stdout.flush()


def show_streamed(run: str, narrowing: Narrowing) -> int:
    """Print the call tree of a saved state while reading it; the exit status."""
    path = resolve_state_path(run)
    try:
        head = read_head(path)
    except StateError:  # a head past 16 MiB, a damaged file: the whole-tree path says it
        return -1
    if head is None:  # a version 1 state (no counts ahead of the nodes): read whole
        return -1
    session = head.session
    say(f"{tree_line(0, session, session=True)}  trace {session['trace_id']}")
    for line in session_lines(session):
        say(line)
    sys.stdout.flush()
    printer = _Printer(narrowing.limit)
    nodes, failed = _print_nodes(path, narrowing.depth, printer)
    if (nodes, failed) != (head.nodes, head.failed):
        raise StateError(
            f"{path} is not a valid railtracks state: its counts say {head.nodes} nodes"
            f" ({head.failed} failed), its call tree holds {nodes} ({failed} failed)"
        )
    if not printer.chosen and nodes and narrowing.depth == 0:
        say("  [nodes below: --depth 1 or more to print them]")
    limit = narrowing.limit
    if limit is not None and printer.chosen > limit:
        say(f"  ... {printer.chosen - limit:,} more nodes: --limit N or --all to print them")
    if head.answer is not None:
        say(f"answer: {short(json.dumps(head.answer, ensure_ascii=False), 200)}")
    return 0


def _print_nodes(path: Any, depth: int | None, printer: _Printer) -> tuple[int, int]:
    """Stream the nodes, printing those within ``depth``; ``(nodes, failed)`` read."""
    nodes = failed = 0
    level = 0
    held: list[Any] = []  # [record, nodes below] of the open node at the last level shown
    for item in stream_nodes(path):
        if item is None:
            level -= 1
            if held and level == depth - 1:  # type: ignore[operator]  # held only with a depth
                record, below = held.pop()
                printer.line(level, record, below)
            continue
        try:
            validate_node({**item, "children": []})
        except SchemaError as exc:
            raise StateError(
                f"{path} is not a valid railtracks state: node {nodes}: {exc}"
            ) from None
        nodes += 1
        failed += item["status"] != "completed"
        if depth is None or level < depth - 1:
            printer.line(level, item, 0)
        elif level == depth - 1:
            held.append([item, 0])
        elif held:
            held[-1][1] += 1
        level += 1
    return nodes, failed
