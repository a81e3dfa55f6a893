"""Abandoned run journals turned into saved states, status ``crashed`` (SPEC 13).

A journal whose writer died (SIGKILL, the OOM killer, a power loss) is left in
the state directory. ``settle`` finds the directory's journals and, for each
one no live process holds (its ``flock`` can be taken: the writer holds it for
as long as its session runs, in this container or another sharing the
directory), assembles the state from it (``_runs.assemble``), writes it
atomically and durably, and removes the journal. A journal whose state was
already written (its process died between the rename and the removal) is only
removed. Nothing is decided from a pid.

The state writer settles each directory it first writes to (the journals its
one scan of the directory found) in a thread of its own; readers
(``rt.load_state``, ``railtracks runs``, ``show``, ``view``, ``export``) settle
the directory they read before reading it, so a killed run is shown at once.
A journal that is not one railtracks wrote, or one that cannot be read, is
left alone and named in one warning line.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path
from typing import Final, NamedTuple

from .._gc import gc_paused
from .._logs import log as _log
from .._logs.terminal import inert
from ..errors import StateError
from .assemble import Assembly
from .head import read_head
from .journal_lines import Decoder
from .pending import PENDING, absolute
from .store import JOURNAL_SUFFIX, encode_state_chunks, fsync_directory, write_and_rename

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: journals are not recovered
    fcntl = None  # type: ignore[assignment]

_NO_FOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_NON_BLOCKING: Final = getattr(os, "O_NONBLOCK", 0)
_LOCK = threading.Lock()  # one settling at a time in a process
_LIVE_READ: Final = 1 << 16


def journals_in(directory: Path) -> list[Path]:
    """The run journals in ``directory`` (by name; nothing is read)."""
    try:
        names = [entry.name for entry in os.scandir(directory)]
    except OSError:
        return []
    return [directory / n for n in names if n.startswith(".") and n.endswith(JOURNAL_SUFFIX)]


def settle(directory: Path, journals: list[Path] | None = None) -> tuple[int, int]:
    """Turn the abandoned journals of ``directory`` into states: ``(recovered, left)``.

    ``left`` counts the journals that could not be read or written (each named
    in one warning line); live journals count in neither. ``journals``: those
    already found in it (by the state writer's one scan), else it is listed.
    """
    journals = journals_in(directory) if journals is None else journals
    if not journals or fcntl is None:
        return 0, 0
    recovered = left = 0
    with _LOCK:
        for path in journals:
            try:
                recovered += _settle_one(path)
            except (StateError, OSError) as exc:
                left += 1
                why = inert(str(exc))  # names from the directory: never obeyed by a terminal
                _log.emit("WARNING", "Session", f"run journal left as it is: {why}", on_span=False)
    if recovered:
        fsync_directory(directory)
    return recovered, left


def settle_in_background(directory: Path, journals: list[Path]) -> None:
    """``settle`` of ``journals`` in a thread of its own (never on an event loop), counted."""

    def run() -> None:
        with contextlib.suppress(Exception):  # housekeeping never stops a run
            recovered, left = settle(directory, journals)
            if recovered or left:
                _log.emit(
                    "INFO",
                    "Session",
                    f"run journals in {directory}: {recovered} turned into crashed states,"
                    f" {left} left unreadable",
                    on_span=False,
                )

    threading.Thread(target=run, name="railtracks-journal-settle", daemon=True).start()


def _settle_one(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | _NO_FOLLOW | _NON_BLOCKING)
    except FileNotFoundError:
        return 0  # settled by another process meanwhile
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError(f"{path} is not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # a live process writes it
        try:
            if os.stat(path, follow_symlinks=False).st_ino != os.fstat(fd).st_ino:
                return 0  # removed (and maybe replaced) once settled by another process
        except FileNotFoundError:
            return 0
        return _assemble_abandoned(fd, path)
    finally:
        os.close(fd)


class LiveRun(NamedTuple):
    """A run whose journal a live process holds: its session is still running."""

    name: str  # the session's name, or its state file's stem
    identifier: str
    started: int | None  # unix nanoseconds, when its session span is in the journal's start


def live_runs(directory: Path) -> list[LiveRun]:
    """The runs of ``directory`` whose journal a live process holds (its lock), never waited on.

    Only the journal's header and its first ``_LIVE_READ`` bytes are read (the
    session span's start is written in the journal's first write); a journal
    that is not one railtracks wrote is left out.
    """
    if fcntl is None:
        return []
    runs: list[LiveRun] = []
    for path in journals_in(directory):
        with contextlib.suppress(OSError, StateError):
            run = _live_run(path)
            if run is not None:
                runs.append(run)
    return runs


def _live_run(path: Path) -> LiveRun | None:
    fd = os.open(path, os.O_RDONLY | _NO_FOLLOW | _NON_BLOCKING)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass  # held: a live process writes it
        else:
            return None  # abandoned (settled by readers), or being removed
        data = os.pread(fd, _LIVE_READ, 0)
    finally:
        os.close(fd)
    decoder = Decoder(path)
    started = None
    for number, raw in enumerate(data.split(b"\n")[:-1], 1):  # complete lines only
        line = decoder.scan(raw, number)
        if line is not None and line.session:
            started = line.start
            break
    header = decoder.header
    if header is None:
        return None
    name = header.get("name") or Path(header["state"]).stem
    return LiveRun(name, header["session_id"], started)


def _assemble_abandoned(fd: int, path: Path) -> int:
    with gc_paused():
        assembly = Assembly(fd, path)
        header = assembly.header
        assert header is not None  # Assembly read it or raised
        target = absolute(path.parent / header["state"])
        session = assembly.head["session"] or {}
        started = session.get("start_time_unix_nano") or 0
        if PENDING.has(target) or _superseded(target, header["session_id"], started):
            os.unlink(path)
            return 0
        write_and_rename(target, encode_state_chunks(assembly.head, assembly.nodes()))
    os.unlink(path)
    return 1


def _superseded(target: Path, identifier: str, started: int) -> bool:
    """Whether ``target`` is that session's state (written before the journal went) or newer.

    A run of the same name that started later replaced the crashed one's
    state, as it would have had the crashed run ended: it is kept.
    """
    try:
        head = read_head(target)
    except (StateError, OSError):
        return False
    session = head.session if head is not None else None
    if session is None:
        return False
    theirs = session.get("start_time_unix_nano")
    return session.get("identifier") == identifier or (type(theirs) is int and theirs >= started)
