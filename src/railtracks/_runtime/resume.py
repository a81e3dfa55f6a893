"""Which recorded run a session replays: ``resume=`` or an active ``rt.testing.replay`` (SPEC 14).

``resume=True`` reads the last saved run of the session's name, ``resume="name"``
or a path that run. No such run: the session runs normally (an explicit name
or path that is missing says so in one warning). A run that cannot be read
(not a valid state: untrusted input) is one warning, and the session runs
normally: resuming never changes whether the user's code runs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .._logs import log as _log
from .._logs.terminal import inert
from .._runs.store import load_state
from ..errors import StateError, StateNotFoundError
from .replay import RecordedRun, Replayer

if TYPE_CHECKING:
    from .session import Session

# rt.testing.replay's runs, innermost last: every session started meanwhile replays it
TEST_REPLAYS: list[RecordedRun] = []


def open_replay(session: Session) -> Replayer | None:
    """The replayer for a session that is starting, or None (most sessions: no cost)."""
    if TEST_REPLAYS:
        return TEST_REPLAYS[-1].replayer(implicit=session.implicit)
    resume = session.options.resume
    if resume is False or resume is None:
        return None
    target = session.name if resume is True else os.fspath(resume)
    if target is None:  # validated at construction; an unnamed session has no earlier run
        return None
    try:
        state = load_state(target)
    except StateNotFoundError:
        if resume is not True:
            _warn(f"resume: no saved run {inert(target)!r}: the session runs in full")
        return None
    except StateError as exc:
        _warn(
            f"resume: the earlier run cannot be read, the session runs in full: {inert(str(exc))}"
        )
        return None
    return Replayer(RecordedRun(state, source=f"run {target!r}"))


def report(replayer: Replayer) -> None:
    """One warning naming how many recorded calls ran live, and why, when any did."""
    if not replayer.live:
        return
    total = sum(replayer.live.values())
    reasons = "; ".join(f"{count}: {reason}" for reason, count in replayer.live.most_common(3))
    more = len(replayer.live) - 3
    replayer.live.clear()  # a replayer shared by implicit sessions reports each call once
    _warn(
        f"resume from {inert(replayer.run.source)}: {total} recorded call(s) ran live"
        f" instead ({inert(reasons)}{f'; and {more} other reasons' if more > 0 else ''})",
    )


def _warn(message: str) -> None:
    _log.emit("WARNING", "Resume", message)
