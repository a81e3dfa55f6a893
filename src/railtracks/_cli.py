"""The ``railtracks`` command line (SPEC 7)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import _log
from ._version import __version__
from .errors import RailtracksError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _demo(_: argparse.Namespace) -> int:
    from ._demo import run_demo  # noqa: PLC0415  # the demo's nodes load only when asked for

    result, session = run_demo()
    print(json.dumps(result, indent=2))
    print(f"session {session.name} {session.status}: trace {session.trace_id}")
    if session.state_path is not None:
        print(f"state saved to {session.state_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="railtracks",
        description="railtracks: every session an OpenTelemetry trace.",
    )
    parser.add_argument("--version", action="version", version=f"railtracks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    demo = commands.add_parser("demo", help="run a small multi-node workflow in a session")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``railtracks`` console script and ``python -m railtracks``."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except RailtracksError as exc:
        print(f"railtracks: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _log.emit("WARNING", "CLI", "interrupted")
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover - exercised as `python -m railtracks`
    sys.exit(main())
