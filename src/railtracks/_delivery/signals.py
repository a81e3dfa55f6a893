"""SIGTERM ends a running session like Ctrl-C (SPEC 5).

What railtracks installs, and when: at the first session started in the main
thread, if (and only if) SIGTERM still has its default disposition (the
process would die on the spot, losing the session's state and spans),
railtracks sets one SIGTERM handler for the rest of the process. It does what
Ctrl-C does: it calls the current SIGINT handler (under ``asyncio.run`` that
cancels the main task, so nodes and sessions end ``cancelled``, states are
written, and ``asyncio.run`` raises ``KeyboardInterrupt``), or raises
``KeyboardInterrupt`` when SIGINT has no Python handler. The exit that follows
exports for at most the stall time (1.5 s) and spools the rest to the outbox.

An application's own handler is never replaced: if SIGTERM is handled (or
ignored) when the first session starts, railtracks installs nothing; a handler
the application installs later replaces railtracks' (and may chain to it: it
is what ``signal.getsignal(SIGTERM)`` returns). Nothing is installed outside
the main thread (Python allows signal handlers only there). A forked child
starts with the default disposition again, until its own first session.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_state = {"checked": False, "terminating": False}


def install() -> None:
    """Install the SIGTERM handler if SIGTERM is unhandled (first call in the main thread)."""
    if _state["checked"] or threading.current_thread() is not threading.main_thread():
        return
    _state["checked"] = True
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, on_sigterm)
    except (ValueError, OSError):  # an embedded interpreter without signals: nothing to do
        return


def installed() -> bool:
    return signal.getsignal(signal.SIGTERM) is on_sigterm


def terminating() -> bool:
    """Whether a SIGTERM is being handled (exit then exports for the stall time only)."""
    return _state["terminating"]


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """railtracks' SIGTERM handler: whatever Ctrl-C would do now."""
    _state["terminating"] = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def after_fork_in_child() -> None:
    """A forked child handles its own SIGTERM afresh.

    The handler goes back to the default in the child (a ``multiprocessing``
    worker's ``terminate()`` stops it as before), and the child's own first
    session installs it again.
    """
    _state["terminating"] = False
    if installed():
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except (ValueError, OSError):  # not the main thread: leave it as inherited
            return
        _state["checked"] = False
