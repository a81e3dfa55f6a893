"""What railtracks' own tests and benchmarks share about ports, processes, waits and the browser.

Private: not part of ``railtracks.testing``'s public API. Standard library only.

* ``free_port()``: a loopback port nothing listens on right now (to listen on,
  or to point an exporter at as a closed port).
* ``stop_process(process)``: SIGTERM, then SIGKILL if it lingers.
* ``wait_for_progress(read, target)``: wait on a backend by what it has done,
  never by a guess of its speed: keep waiting while the count grows, give up
  only after a long stall without progress or a generous overall bound.
* ``CHROMIUM_ARGS`` / ``chromium_path()`` / ``launch_chromium(playwright)``:
  Debian's chromium as the viewer's tests and benchmark drive it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "CHROMIUM_ARGS",
    "STALL_S",
    "TOTAL_S",
    "chromium_path",
    "free_port",
    "launch_chromium",
    "stop_process",
    "wait_for_progress",
]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now (the OS's pick).

    Someone else may take it before the caller binds it: a caller that listens
    on it retries with another on "address in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """Stop ``process`` (SIGTERM, then SIGKILL after ``timeout`` seconds) and reap it."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


# Defaults of wait_for_progress: a backend that stores 60 spans/s on a loaded
# two-core machine still makes progress every second; two minutes without any
# means it stopped. The overall bound only stops a wait that would never end.
STALL_S = 120.0
TOTAL_S = 1800.0
_POLL_FIRST_S = 0.05
_POLL_GROWTH = 1.5
_POLL_MAX_S = 2.0


def wait_for_progress(
    read: Callable[[], int],
    target: int,
    *,
    stall: float = STALL_S,
    total: float = TOTAL_S,
    poll_max: float = _POLL_MAX_S,
    activity: Callable[[], object] | None = None,
) -> int:
    """Poll ``read()`` until it reaches ``target``; return the last value read.

    The wait goes on as long as the value keeps growing (or, when given,
    ``activity()`` keeps changing: a backend busy with other work first); it
    ends early (below ``target``) only when neither moved for ``stall``
    seconds, or after ``total`` seconds in all. ``stall=0`` reads once. Polls
    start fast and back off to ``poll_max`` seconds (a busy backend is not
    hammered).
    """
    started = last_change = time.monotonic()
    best = value = read()
    seen = activity() if activity is not None else None
    interval = _POLL_FIRST_S
    while value < target:
        now = time.monotonic()
        if now - last_change >= stall or now - started >= total:
            break
        time.sleep(min(interval, max(0.0, last_change + stall - now)))
        interval = min(interval * _POLL_GROWTH, poll_max)
        value = read()
        if value > best:
            best, last_change = value, time.monotonic()
        elif activity is not None and (now_seen := activity()) != seen:
            seen, last_change = now_seen, time.monotonic()
    return value


CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """Debian's chromium; ``RAILTRACKS_TEST_CHROMIUM`` overrides it (the tests of the
    missing-browser rule point it at nothing)."""
    return os.environ.get("RAILTRACKS_TEST_CHROMIUM") or "/usr/bin/chromium"


def launch_chromium(playwright: Any) -> Any:
    """A headless chromium launched through Playwright's driver: never a downloaded browser."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
