"""The ``railtracks`` command line (SPEC 7).

    railtracks demo                      run a small workflow in a session
    railtracks runs                      table of saved states
    railtracks show RUN [--depth N] [--failed] [--node X] [--limit N | --all]
                                         the call tree of one saved state
    railtracks export RUN [--endpoint]   re-send a saved state as OTLP spans
    railtracks outbox [send]             spans waiting for a collector; deliver them
    railtracks diff RUN_A RUN_B [--json] what changed between two saved runs
    railtracks import FILE [--name N]    the traces of an OTLP file as saved runs

Bad arguments and bad files print one line and exit with status 2, never a
traceback. Every line printed is made inert first (``_logs.terminal``): nothing
from a run or a file drives the terminal. A closed pipe (``| head``) ends
the command quietly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from opentelemetry.sdk.trace.export import SpanExportResult

from .._config import CONFIG, scrub_text
from .._delivery.console import format_duration
from .._delivery.export import ExportSettings, export_settings, span_exporter
from .._logs.terminal import inert
from .._recording.scrub import redact_url
from .._runs.head import document_counts, read_head
from .._runs.pending import READER_WAIT_SECONDS, wait_for_all
from .._runs.recover import LiveRun, live_runs, settle
from .._runs.respan import spans_from_state
from .._runs.state import iso_time
from .._runs.store import load_state, resolve_state_path
from .._version import __version__
from ..errors import RailtracksError
from .diff import add_parser as add_diff_parser
from .imports import add_parser as add_import_parser
from .outbox import add_parser as add_outbox_parser
from .show import add_arguments as add_show_arguments
from .show import narrowing_of, show
from .usage_text import usage_cells

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left


class UsageError(Exception):
    """A bad argument: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        line = f"railtracks: error: {message} (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, inert(line) + "\n")


def _say(text: str, *, stream: TextIO | None = None) -> None:
    """Print one line of untrusted text: control characters shown, never obeyed (SPEC 7)."""
    print(inert(text), file=stream or sys.stdout)


def _demo(_: argparse.Namespace) -> int:
    from .demo import run_demo  # noqa: PLC0415  # the demo's nodes load only when asked for

    result, session = run_demo()
    for line in json.dumps(result, indent=2, ensure_ascii=False).splitlines():
        _say(line)
    _say(f"session {session.name} {session.status}: trace {session.trace_id}")
    if session.state_path is not None:
        _say(f"state saved to {session.state_path}")
    return 0


def _summary(path: Path) -> list[str]:
    """One row of ``runs``: from the head alone (version 2), else the whole file (version 1)."""
    try:
        head = read_head(path)
        if head is None:
            state = load_state(path)
            session, counts = state["session"], document_counts(state["nodes"])
        else:
            session, counts = head.session, {"nodes": head.nodes, "failed": head.failed}
        duration = session.get("duration_seconds")
        return [
            session.get("name") or session.get("identifier") or path.stem,
            str(session.get("status", "-")),
            str(session.get("started_at") or "-"),
            format_duration(duration) if isinstance(duration, int | float) else "-",
            str(counts["nodes"]),
            str(counts["failed"]),
            *usage_cells(session),
        ]
    except Exception:  # one bad file is listed as such; the others are still shown
        return [path.stem, "unreadable", "-", "-", "-", "-", "-", "-"]


def _running(run: LiveRun) -> list[str]:
    started = "-" if run.started is None else iso_time(run.started) or "-"
    return [run.name, "running", started, "-", "-", "-", "-", "-"]


def _runs(_: argparse.Namespace) -> int:
    directory = CONFIG.state_dir()
    settle(directory)  # a run whose process died is listed as crashed (SPEC 13)
    try:
        files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    except OSError as exc:
        raise UsageError(f"cannot list {directory}: {exc.strerror or exc}") from None
    live = live_runs(directory)  # running in a process alive now: no state file yet
    if not files and not live:
        _say(f"no saved runs in {directory}/")
        return 0
    rows = [[inert(cell) for cell in _summary(path)] for path in files]
    rows += [[inert(cell) for cell in _running(run)] for run in live]
    rows.sort(key=lambda row: row[2], reverse=True)
    header = ["NAME", "STATUS", "STARTED", "DURATION", "NODES", "FAILED", "TOKENS", "COST"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        _say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _show(args: argparse.Namespace) -> int:
    return show(args.run, narrowing_of(args))


def _export_settings(endpoint: str | None, protocol: str | None) -> ExportSettings:
    if endpoint is not None or protocol is not None:
        # the flags win over the environment for this one command
        current = CONFIG.telemetry
        CONFIG.set_telemetry(
            dataclasses.replace(
                current,
                endpoint=endpoint if endpoint is not None else current.endpoint,
                protocol=protocol if protocol is not None else current.protocol,
                export=True,
            )
        )
    settings = export_settings()
    if settings is None or settings.traces_endpoint is None:
        raise UsageError("no endpoint: pass --endpoint URL or set OTEL_EXPORTER_OTLP_ENDPOINT")
    return settings


def _export(args: argparse.Namespace) -> int:
    path = resolve_state_path(args.run)
    state = load_state(path)
    settings = _export_settings(args.endpoint, args.protocol)
    spans = list(spans_from_state(state))
    exporter = span_exporter(settings)
    try:
        batch = settings.max_export_batch_size
        for start in range(0, len(spans), batch):
            if exporter.export(spans[start : start + batch]) is not SpanExportResult.SUCCESS:
                endpoint = redact_url(str(settings.traces_endpoint))
                _say(f"railtracks: error: export to {endpoint} failed", stream=sys.stderr)
                return EXIT_FAILED
    finally:
        exporter.shutdown()
    trace_id = state["session"]["trace_id"]
    endpoint = redact_url(str(settings.traces_endpoint))
    _say(f"exported {len(spans)} spans of trace {trace_id} to {endpoint}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="railtracks", description="railtracks: every session a trace.")
    parser.add_argument("--version", action="version", version=f"railtracks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    demo = commands.add_parser("demo", help="run a small multi-node workflow in a session")
    demo.set_defaults(handler=_demo)
    runs = commands.add_parser(
        "runs",
        help="list saved states (name, status, start, duration, nodes, failed nodes, tokens, cost)",
    )
    runs.set_defaults(handler=_runs)
    show = commands.add_parser("show", help="print the call tree of one saved state")
    show.add_argument("run", metavar="RUN", help="a session name, identifier or state file")
    add_show_arguments(show)
    show.set_defaults(handler=_show)
    export = commands.add_parser("export", help="re-send a saved state as OTLP spans")
    export.add_argument("run", metavar="RUN", help="a session name, identifier or state file")
    export.add_argument("--endpoint", help="OTLP endpoint (default: OTEL_EXPORTER_OTLP_ENDPOINT)")
    export.add_argument("--protocol", choices=["grpc", "http/protobuf"], help="default: grpc")
    export.set_defaults(handler=_export)
    add_outbox_parser(commands)
    add_diff_parser(commands)
    add_import_parser(commands)
    from ..view._command import add_view_command  # noqa: PLC0415  # the viewer's command lives in its package

    add_view_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``railtracks`` console script and ``python -m railtracks``."""
    try:
        args = build_parser().parse_args(argv)
        wait_for_all(READER_WAIT_SECONDS)  # states this process is still writing: complete first
        code: int = args.handler(args)
        sys.stdout.flush()
    except (UsageError, RailtracksError) as exc:
        # a missing or unreadable state, a bad endpoint: all about what was asked for
        _error(str(exc))
        return EXIT_USAGE
    except RecursionError:  # a file nested deeper than any check foresaw
        _error("the saved state is nested too deeply to read")
        return EXIT_USAGE
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print("railtracks: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback (SPEC 7): one line, and a failure status
        _error(f"unexpected {type(exc).__name__}: {exc}")
        return EXIT_FAILED
    return code


def _error(message: str) -> None:
    try:
        _say(f"railtracks: error: {scrub_text(message)}", stream=sys.stderr)
    except (BrokenPipeError, OSError):  # stderr gone too: the exit status says it
        return


def _closed_pipe() -> int:
    """``railtracks runs | head``: the reader left; end quietly, as ``head``'s writers do.

    stdout is pointed at /dev/null so the interpreter's final flush of what is
    still buffered cannot raise again at exit (the Python documentation's recipe).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_CLOSED_PIPE


if __name__ == "__main__":  # pragma: no cover - exercised as `python -m railtracks`
    sys.exit(main())
