"""The run journal (SPEC 13): each saved session's spans appended to disk as they end.

A session that saves its state opens a ``Journal``: a queue the span
collector appends each finished span's compact record to on the hot path, a
dict of its railtracks spans still running (span id -> span: a span that
ended is never held, so it is freed at once), and a file beside the state,
``.{state name}.{session id}.journal``, mode 0600. One thread per process,
``railtracks-journal``, empties every open journal's queue every
``FLUSH_SECONDS`` (100 ms) into its file with one ``write``: what a killed
process had written is in the operating system's hands, so it survives
SIGKILL and the OOM killer. ``fdatasync`` runs at most every ``SYNC_SECONDS``
(1 s) per journal (and the state assembled from it is synced before the
journal goes), so a power loss costs at most the last second or so.

The file is created by the journal thread, never on the event loop, and held
under an exclusive ``flock`` for as long as its session runs: a lock held by a
live process (in this container or another sharing the directory) is what
tells a live journal from an abandoned one (``_runs.recover``), never a pid.

Lines are JSON arrays (``_runs.journal_lines``). The state is assembled from
the file when the session ends (``_runs.assemble``), then the journal removed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from .._files import DIR_MODE, FILE_MODE
from .._logs import log as _log
from .._recording.compact import JOURNAL_TEXT_LENGTH, Record, record
from ..errors import StateError
from .journal_write import LineEncoder, header_line
from .pending import absolute
from .state import state_parts
from .store import JOURNAL_SUFFIX, encode_state_chunks, load_state, state_path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no journal locks
    fcntl = None  # type: ignore[assignment]

FLUSH_SECONDS: Final = 0.1
SYNC_SECONDS: Final = 1.0
# Records a journaled session also keeps in memory (``Session.spans`` of small sessions).
KEPT_RECORDS: Final = 10_000
_NO_FOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)


def journal_path(state: Path, identifier: str) -> Path:
    """The journal of the session ``identifier`` whose state goes to ``state``."""
    return state.with_name(f".{state.stem}.{identifier}{JOURNAL_SUFFIX}")


class Journal:
    """One session's journal: its queue (filled by the collector) and its file."""

    def __init__(self, state: Path, identifier: str, name: str | None) -> None:
        self.state = state  # absolute
        self.path = journal_path(state, identifier)
        self.identifier = identifier
        self.name = name
        self.queue: deque[Any] = deque()
        self.running: dict[int, Any] = {}  # filled and emptied by the span collector
        self._began: set[int] = set()  # running spans whose "b" line is written
        self._lock = threading.Lock()  # one drain at a time (journal thread, assembly)
        self._fd: int | None = None
        self._encoder = LineEncoder()
        self._synced_at = 0.0
        self._dirty = False
        self.failed: str | None = None  # why the journal could not be written, if it could not
        self.closed = False

    def drain(self, *, sync: bool = False) -> None:
        """Write what the queue holds to the file (created on first use); never raises."""
        with self._lock:
            if self.failed is not None:
                self.queue.clear()
                return
            try:
                self._drain(sync)
            except Exception as exc:  # disk full, directory removed: the run goes on
                self.failed = str(exc)
                self.queue.clear()
                _log.emit("WARNING", "Session", f"run journal {self.path}: {exc}", on_span=False)

    def _drain(self, sync: bool) -> None:
        fd = self._fd
        if fd is None:
            fd = self._fd = self._create()
            JOURNALS.holding(self)
        queue, encoder = self.queue, self._encoder
        lines: list[bytes] = []
        if self.running or self._began:
            # before the records (the session's own span first in the file, where
            # `railtracks runs` reads a live run's start): a span in this copy has
            # not had its record queued yet (it leaves ``running`` first), so its
            # "s" line comes after this "b" line, in this write or a later one
            running = self.running.copy()
            began = self._began
            began.intersection_update(running)
            for span_id, span in running.items():
                if span_id not in began and getattr(span, "end_time", None) is None:
                    began.add(span_id)
                    lines.append(encoder.line(record(span), "b"))
        popleft = queue.popleft
        lines.append(encoder.lines([popleft() for _ in range(len(queue))]))
        data = b"".join(lines)
        if data:
            _write_all(fd, data)
            self._dirty = True
        now = time.monotonic()
        if self._dirty and (sync or now - self._synced_at >= SYNC_SECONDS):
            os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)
            self._synced_at, self._dirty = now, False

    def _create(self) -> int:
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | _NO_FOLLOW
        fd = os.open(self.path, flags, FILE_MODE)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours: created just now
            _write_all(fd, header_line(self.identifier, self.name, self.state.name, os.getpid()))
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise
        return fd

    def finish(self) -> int | list[Record] | None:
        """The last drain: the file descriptor to assemble from (None: the journal failed).

        A session that ended before its journal's file was made (within
        ``FLUSH_SECONDS``) never has one: its records are handed back instead.
        """
        self.closed = True
        JOURNALS.forget(self)
        with self._lock:
            queue = self.queue
            if (
                self._fd is None
                and self.failed is None
                and all(len(item) != JOURNAL_TEXT_LENGTH for item in queue)  # records only
            ):
                self.failed = "finished in memory"  # later drains write nothing
                return [queue.popleft() for _ in range(len(queue))]
        self.drain()
        return None if self.failed is not None else self._fd

    def forked(self) -> None:
        """In a forked child: close this process's copy of the file; write nothing more."""
        self._lock = threading.Lock()  # the parent's journal thread may have held it
        self.failed = "the process forked: the journal is its parent's"
        self.closed = True
        self.queue.clear()
        self.running.clear()
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # the child's copy only: the parent's lock stays

    def stop(self) -> None:
        """No more writes (its state is built from memory); the file stays until ``remove``."""
        JOURNALS.forget(self)

    def remove(self) -> None:
        """The state is saved: remove the journal, then let its lock go."""
        JOURNALS.forget(self)
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
            self._close("removed")

    def release(self) -> None:
        """Close the file (its lock goes with it), leaving it on disk for the next process."""
        JOURNALS.forget(self)
        with self._lock:
            self._close("released")

    def _close(self, why: str) -> None:
        JOURNALS.let_go(self)
        self.closed = True
        self.failed = self.failed or why  # later drains write nothing
        self.queue.clear()
        self.running.clear()
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class JournalThread:
    """The one thread that empties every open journal into its file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, Journal] = {}
        self._thread: threading.Thread | None = None
        self._holding: dict[int, Journal] = {}  # journals that may have a file open

    def holding(self, journal: Journal) -> None:
        with self._lock:
            self._holding[id(journal)] = journal

    def let_go(self, journal: Journal) -> None:
        with self._lock:
            self._holding.pop(id(journal), None)

    def open(self, state: Path, identifier: str, name: str | None) -> Journal:
        """A new journal for a session; the file is made by the thread."""
        journal = Journal(state, identifier, name)
        with self._lock:
            self._open[id(journal)] = journal
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="railtracks-journal", daemon=True
                )
                self._thread.start()
        return journal

    def forget(self, journal: Journal) -> None:
        with self._lock:
            self._open.pop(id(journal), None)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            with self._lock:
                journals = list(self._open.values())
            for journal in journals:
                journal.drain()

    def after_fork_in_child(self) -> None:
        """The child writes none of its parent's journals and holds none of their locks.

        A forked child has a copy of every descriptor: its copy of a journal's
        would keep the ``flock`` after the parent let go (a crashed parent's
        run would look live while the child runs). The child closes its copies
        (the parent's lock stays) and its journals write nothing more.
        """
        self._lock = threading.Lock()
        self._open = {}
        self._thread = None
        holding, self._holding = self._holding, {}
        for journal in holding.values():
            journal.forked()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


JOURNALS = JournalThread()
os.register_at_fork(after_in_child=JOURNALS.after_fork_in_child)


def open_journal(identifier: str, name: str | None) -> Journal | None:
    """The journal of a session that saves its state (None where journals cannot be locked)."""
    if fcntl is None:
        return None
    return JOURNALS.open(absolute(state_path(name, identifier)), identifier, name)


def read_back(path: Path | None) -> dict[str, Any] | None:
    """A journaled session's state, read back from its file once written (None: not saved)."""
    if path is None:
        return None
    try:
        return load_state(path)
    except StateError:
        return None


def assembled_chunks(journal: Journal) -> Iterator[bytes]:
    """The session's state, assembled from its journal (in the state writer's thread)."""
    from .assemble import Assembly  # noqa: PLC0415  # assemble reads state, which is heavier

    fd = journal.finish()
    if fd is None:
        raise OSError(f"the run journal could not be written ({journal.failed})")
    if type(fd) is list:
        return encode_state_chunks(*state_parts(fd))
    assert type(fd) is int
    assembly = Assembly(fd, journal.path)
    return encode_state_chunks(assembly.head, assembly.nodes())


def journal_queue(
    journal: Journal | None,
) -> tuple[()] | tuple[deque[Any], int, dict[int, Any]]:
    """What the span collector opens a session with: the journal's queue, the records kept
    and its running spans."""
    return () if journal is None else (journal.queue, KEPT_RECORDS, journal.running)


def kept_all(journal: Journal | None, spans: list[Any]) -> bool:
    """Whether a session kept every record in memory (always, without a journal)."""
    return journal is None or len(spans) < KEPT_RECORDS
