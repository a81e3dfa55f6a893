"""``railtracks import FILE [--name N]``: OTLP trace data from elsewhere as saved runs (SPEC 14).

One run per trace, saved in the state directory under the name of the
trace's root span (made a valid name), or ``--name`` (``N``, ``N-2``... when
the file holds several traces). An import never overwrites a saved run: a
name already taken gets ``-2``, ``-3``... The file is untrusted input: anything
wrong with it is one line and exit status 2 (``view._otlp_file``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any, Final

from .._config import CONFIG
from .._logs.terminal import inert
from .._reuse.imported import check_name
from ..errors import StateError
from ..view._otlp_file import import_file

EXIT_PARTIAL: Final = 1


def add_parser(commands: Any) -> None:
    """Register ``import`` on the CLI's subparsers."""
    parser = commands.add_parser("import", help="save the traces of an OTLP file as runs")
    parser.add_argument("file", metavar="FILE", help="OTLP/JSON or OTLP/protobuf")
    parser.add_argument("--name", help="the run's name (default: the trace's root span name)")
    parser.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace) -> int:
    """The command's handler: 0 when every trace was saved, 1 when some were not."""
    name = None
    if args.name is not None:
        try:
            name = check_name(args.name)
        except ValueError as exc:
            raise StateError(str(exc)) from None
    saved, problems, rejected = import_file(Path(args.file), CONFIG.state_dir(), name)
    if not saved:  # nothing came of the file: as any bad file, one line and exit status 2
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StateError(f"{args.file}: {problems[0]}{more}")
    for trace, path in saved:
        counts = trace.head["counts"]
        left = trace.spans - counts["nodes"] - 1
        note = f"; {left} left out (duplicate ids or a parent cycle)" if left > 0 else ""
        print(inert(f"imported trace {trace.trace_id} as {path.stem}: {trace.spans} spans{note}"))
        print(inert(f"  saved to {path}"))
    if rejected:
        print(inert(f"railtracks: {rejected} spans without valid ids skipped"), file=sys.stderr)
    for problem in problems:
        with contextlib.suppress(OSError):
            print(inert(f"railtracks: error: {problem}"), file=sys.stderr)
    return EXIT_PARTIAL if problems else 0
