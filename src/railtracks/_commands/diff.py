"""``railtracks diff RUN_A RUN_B [--json]``: what changed between two saved runs (SPEC 14).

Exit status 0 when the runs match (same calls, statuses, outputs and answer;
timing is reported, never counted), 1 when they differ, 2 when a run cannot be
read (one line, from the command line's error handling). Every line is made
inert first: names, values and errors come from the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any, Final

from .._delivery.console import format_duration
from .._logs.terminal import inert
from .._reuse.rundiff import KINDS, diff_states
from .._runs.store import load_state

EXIT_SAME: Final = 0
EXIT_DIFFERENT: Final = 1
_MARKS: Final = {
    "added": "+",
    "removed": "-",
    "arguments": "~",
    "status": "!",
    "error": "!",
    "output": "~",
}


def add_parser(commands: Any) -> None:
    """Register ``diff`` on the CLI's subparsers."""
    diff = commands.add_parser("diff", help="compare two saved runs call by call")
    diff.add_argument("run_a", metavar="RUN_A", help="a session name, identifier or state file")
    diff.add_argument("run_b", metavar="RUN_B", help="the run to compare it with")
    diff.add_argument("--json", action="store_true", help="print the difference as JSON")
    diff.set_defaults(handler=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    """The command's handler: 0 same, 1 different (bad input raises, for exit status 2)."""
    states = [load_state(run) for run in (args.run_a, args.run_b)]
    result = diff_states(states[0], states[1], (args.run_a, args.run_b))
    if args.json:
        # ASCII-escaped JSON: nothing from a run reaches the terminal as a control character
        sys.stdout.write(json.dumps(result, ensure_ascii=True, indent=2) + "\n")
    else:
        for line in report_lines(result):
            print(inert(line))
    return EXIT_SAME if result["same"] else EXIT_DIFFERENT


def _run_line(label: str, run: dict[str, Any]) -> str:
    duration = run["duration_seconds"]
    took = format_duration(duration) if isinstance(duration, int | float) else "-"
    return (
        f"{label}  {run['name']}  {run['status']}  {took}  {run['calls']} calls"
        f"  trace {run['trace_id']}"
    )


def report_lines(result: dict[str, Any]) -> Iterator[str]:
    """The difference as text lines (not yet made inert)."""
    yield _run_line("A", result["a"])
    yield _run_line("B", result["b"])
    for change in result["session"]:
        yield f"! session {change['kind']}: {change['detail']}"
        yield from (f"    {line}" for line in change.get("lines", ()))
    for change in result["changes"]:
        kind = change["kind"]
        yield f"{_MARKS[kind]} {kind:<9}  {change['where']}  {change['detail']}"
        yield from (f"    {line}" for line in change.get("lines", ()))
    for timing in result["timing"]:
        before, after = timing["before_seconds"], timing["after_seconds"]
        factor = after / before if before else float("inf")
        yield (
            f"  timing     {timing['where']}  {format_duration(before)} -> "
            f"{format_duration(after)} (x{factor:.1f})"
        )
    yield _summary(result)


def _summary(result: dict[str, Any]) -> str:
    counts = result["counts"]
    found = ", ".join(f"{counts[kind]} {kind}" for kind in KINDS if counts[kind])
    timing = result["timing_changes"]
    notes = f"; {timing} notable timing change{'s' if timing != 1 else ''}" if timing else ""
    if result["same"]:
        return f"same: {result['aligned']} calls aligned, no difference{notes}"
    session = f"{len(result['session'])} in the session" if result["session"] else ""
    parts = ", ".join(part for part in (found, session) if part)
    return f"different: {result['aligned']} calls aligned; {parts}{notes}"
