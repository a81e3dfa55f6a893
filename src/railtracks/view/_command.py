"""``railtracks view [RUN] [--port N] [--host H] [--no-browser] [--html FILE]`` (SPEC 7, 11).

RUN may be an OTLP file (``railtracks import``'s formats, SPEC 14): its traces
are imported into a temporary directory, shown, and removed when the view ends.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import threading
import webbrowser
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from .._config import CONFIG
from .._runs.recover import settle
from ..errors import StateError, StateNotFoundError
from ._otlp_file import import_file, is_state_file
from ._saved import StateUnreadable, read_run, resolve

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def visible(text: str) -> str:
    """``text`` with control characters shown as escapes: nothing printed drives the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def add_view_command(commands: Any) -> None:
    """Register ``view`` on the CLI's subparsers."""
    view = commands.add_parser("view", help="open the run viewer (and an OTLP/HTTP receiver)")
    view.add_argument(
        "run", metavar="RUN", nargs="?", help="open this run (name, state file or OTLP file)"
    )
    view.add_argument("--port", type=_port, default=0, help="port (default 0: any free port)")
    view.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    view.add_argument("--no-browser", action="store_true", help="do not open a browser")
    view.add_argument("--html", metavar="FILE", help="write RUN as one self-contained HTML file")
    view.set_defaults(handler=run_view)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value!r} (0-65535)")
    return port


def _state_file(run: str) -> Path:
    settle(CONFIG.state_dir())  # a run whose process died, as a crashed state (SPEC 13)
    path = resolve(run, CONFIG.state_dir())
    if path is None:
        raise StateNotFoundError(
            f"no saved state {visible(run)!r} (looked for that file and in {CONFIG.state_dir()}/)"
        )
    return path


def run_view(args: argparse.Namespace) -> int:
    """The command's handler: write an HTML file, or serve until interrupted."""
    if args.html is not None:
        return _write_html(args)
    directory = CONFIG.state_dir()
    fragment = ""
    with contextlib.ExitStack() as cleanup:
        if args.run is not None:
            path = _state_file(args.run)
            if not is_state_file(path):  # an OTLP file: its traces, imported for this view only
                path = _imported(path, cleanup)
            directory = path.parent
            fragment = f"#/run/saved/{quote(path.stem, safe='')}"
        return _serve(args, directory, fragment)


def _imported(path: Path, cleanup: contextlib.ExitStack) -> Path:
    """The first run of an OTLP file's traces, saved in a directory removed when the view ends."""
    directory = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="railtracks-view-")))
    saved, problems, _ = import_file(path, directory)
    if not saved:
        raise StateError(problems[0] if problems else f"{visible(str(path))}: no run in it")
    print(
        f"railtracks view: {len(saved)} run(s) from {visible(str(path))} (not saved)",
        file=sys.stderr,
    )
    return saved[0][1]


def _serve(args: argparse.Namespace, directory: Path, fragment: str) -> int:
    from ._server import ViewerServer  # noqa: PLC0415  # the server loads only when serving

    try:
        server = ViewerServer(args.host, args.port, directory)
    except OSError as exc:
        raise StateError(f"cannot listen on {visible(args.host)}:{args.port}: {exc}") from exc
    try:
        _announce(server.url, fragment, directory, args)
        # read the saved runs while the browser starts: the first page load finds them parsed
        threading.Thread(target=server.saved.summaries, name="rt-view-warm", daemon=True).start()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _announce(url: str, fragment: str, directory: Path, args: argparse.Namespace) -> None:
    print(f"railtracks view: {url}{fragment}")
    print(f"  saved runs from {visible(str(directory))}/")
    print(
        f"  live runs: OTEL_EXPORTER_OTLP_ENDPOINT={url.rstrip('/')} "
        "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
        flush=True,
    )
    if args.host not in _LOOPBACK:
        print(
            f"railtracks view: warning: listening on {visible(args.host)}: "
            "anyone who can reach this address can read your runs",
            file=sys.stderr,
        )
    if not args.no_browser:
        _open_browser(url + fragment)
    print("  press Ctrl-C to stop", flush=True)


def _open_browser(url: str) -> None:
    """Open ``url`` in a graphical browser; never a console one in this terminal."""
    graphical = (
        sys.platform in ("darwin", "win32")
        or bool(os.environ.get("BROWSER"))
        or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    )
    opened = False
    if graphical:
        try:
            opened = webbrowser.open(url)
        except Exception:  # a broken browser set-up: the printed URL is enough
            opened = False
    if not opened:
        print("railtracks view: no browser to open here; open the URL above", file=sys.stderr)


def _write_html(args: argparse.Namespace) -> int:
    if args.run is None:
        raise StateNotFoundError("--html needs a RUN: railtracks view RUN --html FILE")
    path = _state_file(args.run)
    with contextlib.ExitStack() as cleanup:
        if not is_state_file(path):
            path = _imported(path, cleanup)
        return _html_of(path, args)


def _html_of(path: Path, args: argparse.Namespace) -> int:
    from ._html import write_html  # noqa: PLC0415  # loads only when asked for

    try:
        run = read_run(path)
    except StateUnreadable as exc:
        raise StateError(f"{visible(str(path))} is not a readable railtracks state: {exc}") from exc
    destination = Path(args.html)
    try:
        size = write_html(run, destination)
    except OSError as exc:
        raise StateError(f"cannot write {visible(args.html)}: {exc.strerror}") from exc
    print(f"wrote {visible(str(destination))} ({size} bytes): run {visible(run.name)}")
    return 0
