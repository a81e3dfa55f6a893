"""The state writer: one thread builds and writes every session's saved state (SPEC 6).

A session hands its state over when it ends and returns at once; its
``state_path`` is known then. The writer thread takes whatever has been handed
over as one batch and, for each state: removes the directory's stale
temporary files (the first time this process writes there), builds the state
from the session's spans and streams it into a temporary file, syncs the file's
data (``fdatasync``) and renames it into place; then it fsyncs each directory
of the batch once, so the renames (and retention's deletions) survive a crash.
Two states of one path in a batch: only the last is written (it would overwrite
the other anyway); the earlier one's callback says it was superseded. No event
loop ever pays for building, writing or syncing.

A state is complete (renamed, its directory fsync'ed) by the time
``rt.flush()`` returns, before any railtracks reader in the process reads it
(``_runs.pending``), and at interpreter exit: ``drain_at_exit`` waits for every
pending write. A SIGINT or SIGTERM that arrives then does not interrupt it (no
traceback): it hurries the exit, the writes given ``EXIT_GRACE_SECONDS`` more,
after which one still running is abandoned and its temporary file removed.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Final

from .._gc import gc_paused
from .pending import PENDING
from .recover import settle_in_background
from .retention import RunIndex
from .store import clean_stale_temporaries, fsync_directory, write_and_rename

# After a signal at exit, the writes in progress get this long before they are abandoned.
EXIT_GRACE_SECONDS: Final = 8.0
# An abandoned write stops at its next chunk; the exit waits this long for that.
_ABANDON_SECONDS: Final = 2.0
_EXIT_POLL_SECONDS: Final = 0.05
# Woken by a first state, the writer lets more gather this long: one wake-up (and one
# directory fsync) per batch rather than per session, fewer turns taken from the loop.
_BATCH_WINDOW_SECONDS: Final = 0.005


@dataclasses.dataclass(slots=True)
class WriteJob:
    """One state to write: where, its bytes (made in the writer thread), and what follows."""

    path: Path  # absolute: the working directory may change before the write
    chunks: Callable[[], Iterable[bytes]]
    keep: int | None  # retention: the newest runs kept in the directory, None for all
    large: bool  # pause the cyclic collector while building it (many containers)
    # called with None once written, or with the later job of the same path that was
    # written in its place (the same batch: this one's file would only be overwritten)
    written: Callable[[WriteJob | None], None]
    failed: Callable[[BaseException], None]


class StateWriter:
    """The one writer thread of the process and its queue."""

    def __init__(self) -> None:
        self._work = threading.Condition(threading.Lock())
        self._queue: deque[WriteJob] = deque()
        self._thread: threading.Thread | None = None
        self._cleaned: set[Path] = set()  # directories whose stale temporaries are gone
        self._indexes: dict[Path, RunIndex] = {}
        self._exit_registered = False
        self._abandon = False
        self._interrupted_at: float | None = None

    def submit(self, job: WriteJob) -> None:
        """Queue ``job`` for the writer thread; returns at once."""
        PENDING.add(job.path)
        with self._work:
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="railtracks-state-writer", daemon=True
                )
                self._thread.start()
                if not self._exit_registered:
                    # registered after telemetry's exit handler: runs before it
                    atexit.register(self.drain_at_exit)
                    self._exit_registered = True
            self._work.notify()

    def _run(self) -> None:
        while True:
            with self._work:
                while not self._queue:
                    self._work.wait()
            time.sleep(_BATCH_WINDOW_SECONDS)
            with self._work:
                batch = list(self._queue)
                self._queue.clear()
            try:
                self._write_batch(batch)
            except Exception:  # a bug here must not stop every later save
                pass
            finally:
                PENDING.done([job.path for job in batch])

    def _write_batch(self, batch: list[WriteJob]) -> None:
        latest = {job.path: job for job in batch}
        directories: set[Path] = set()
        written: list[WriteJob] = []
        for job in [job for job in batch if latest[job.path] is job]:  # in the order handed over
            directory = job.path.parent
            if directory not in self._cleaned:
                self._cleaned.add(directory)
                journals: list[Path] = []
                clean_stale_temporaries(directory, journals)
                if journals:  # abandoned run journals become crashed states (SPEC 13)
                    settle_in_background(directory, journals)
            try:
                with gc_paused() if job.large else contextlib.nullcontext():
                    write_and_rename(job.path, job.chunks(), abandon=self._abandoning)
            except Exception as exc:  # disk full, read-only, abandoned: logged by the job
                _call(job.failed, exc)
                continue
            directories.add(directory)
            written.append(job)
            if job.keep is not None:
                self._retain(directory, job.path.name, job.keep)
        for directory in directories:
            fsync_directory(directory)
        for job in written:
            _call(job.written, None)
        for job in batch:  # superseded in this batch by a later state of the same path
            last = latest[job.path]
            if last is job:
                continue
            if last in written:
                _call(job.written, last)
            else:
                _call(job.failed, OSError("superseded by a later state, whose write failed"))

    def _retain(self, directory: Path, name: str, keep: int) -> None:
        index = self._indexes.get(directory)
        if index is None:  # the one scan of this directory in this process
            index = self._indexes[directory] = RunIndex(directory)
        index.written(name, keep)

    def _abandoning(self) -> bool:
        return self._abandon

    def drain_at_exit(self) -> None:
        """At interpreter exit: wait for every pending write; a signal meanwhile hurries it."""
        if not PENDING.count:
            return
        self._hurry_on_signals()
        deadline: float | None = None
        while PENDING.count:
            try:
                if self._interrupted_at is not None:
                    if deadline is None:
                        deadline = self._interrupted_at + EXIT_GRACE_SECONDS
                    if time.monotonic() > deadline:
                        if self._abandon:
                            return  # a write stuck in the kernel: exit all the same
                        self._abandon = True
                        deadline += _ABANDON_SECONDS
                PENDING.wait(timeout=_EXIT_POLL_SECONDS)
            except KeyboardInterrupt:  # an application's own SIGINT handler raised it
                self._note_interrupt(signal.SIGINT, None)

    def _hurry_on_signals(self) -> None:
        """While exiting, Ctrl-C (and SIGTERM, which railtracks turns into it) only hurries.

        Installed for the rest of the exit when SIGINT has Python's default
        handler; an application's own handler is left in place.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        with contextlib.suppress(ValueError, OSError, TypeError):
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signal.signal(signal.SIGINT, self._note_interrupt)

    def _note_interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self._interrupted_at is None:
            self._interrupted_at = time.monotonic()

    def after_fork_in_child(self) -> None:
        """The writer thread did not survive the fork; the parent writes what was queued."""
        self._work = threading.Condition(threading.Lock())
        self._queue = deque()
        self._thread = None
        self._abandon = False
        self._interrupted_at = None


def _call(callback: Callable[..., None], *args: object) -> None:
    with contextlib.suppress(Exception):  # reporting a write never stops the writer
        callback(*args)


WRITER = StateWriter()
os.register_at_fork(after_in_child=WRITER.after_fork_in_child)
