"""Saving a session's state when it ends (SPEC 6): the session-end hook, which hands it over.

``railtracks/__init__`` registers ``save_session_state`` with
``rt.on_session_end``. It reads the session through ``EndedSession``, the
little of ``rt.Session`` it needs, so this layer never imports the runtime.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, Protocol

from .._config import CONFIG
from .._files import DIR_MODE
from .._logs import log as _log
from .._recording.compact import Record
from .._settings import LoggingSetting
from .journal import Journal, assembled_chunks, kept_all
from .pending import PENDING, absolute
from .state import state_parts
from .store import document_chunks, encode_state_chunks, state_path
from .writer import WRITER, WriteJob


class SavedOptions(Protocol):
    """The options saving reads."""

    @property
    def save_state(self) -> bool: ...

    @property
    def log_file(self) -> Path | None: ...


class EndedSession(Protocol):
    """What saving needs of a session that has ended; ``rt.Session`` is one."""

    @property
    def identifier(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    @property
    def logging_setting(self) -> LoggingSetting: ...

    @property
    def options(self) -> SavedOptions: ...

    @property
    def state(self) -> dict[str, Any] | None: ...

    def finished_spans(self) -> list[Record] | None:
        """The spans to stream the state from, or None to write ``state`` whole."""
        ...

    def record_state_path(self, path: Path | None) -> None:
        """The state goes to ``path`` (None: its write failed)."""
        ...


# Above this many spans the cyclic collector is paused while the state is built.
_LARGE_STATE_SPANS: Final = 1000
# Directories known to exist (made once per process; the writer makes one again if removed).
_READY: set[Path] = set()


def save_session_state(session: EndedSession) -> None:
    """Session-end hook: hand the state to the state writer when ``save_state`` is on.

    Returns at once with ``session.state_path`` set; the file is complete by
    ``rt.flush()``, at exit, and before any railtracks reader reads it
    (``_runs.writer``). A state that cannot be saved is logged, never raised.
    """
    if not session.options.save_state:
        return
    path = state_path(session.name, session.identifier)
    log = {
        "setting": session.logging_setting,
        "session_id": session.identifier,
        "has_file": session.options.log_file is not None,
        # the session's span has ended: the current span is whatever encloses it
        "on_span": False,
    }
    try:
        target = absolute(path)
        if target.parent not in _READY:  # an unwritable place fails here, at once
            target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            _READY.add(target.parent)
        if PENDING.has(target) or path.exists():
            _log.emit("WARNING", "Session", f"File {path} already exists, overwriting...", **log)
        spans = session.finished_spans()
        journal: Journal | None = getattr(session, "journal", None)
        chunks: Callable[[], Iterable[bytes]]
        if spans is None:  # no span to stream from (a host sampler dropped the session)
            if journal is not None:
                journal.finish()
                journal.remove()
                journal = None
            document = session.state
            assert document is not None  # the session has ended
            chunks = functools.partial(document_chunks, document)
        elif journal is not None and not kept_all(journal, spans):
            # a large session: assembled from its journal by streaming (SPEC 13)
            chunks = functools.partial(assembled_chunks, journal)
        else:  # streamed node by node: the tree is never held whole
            if journal is not None:  # it kept every span: the journal only guards a crash
                journal.stop()
            chunks = functools.partial(_streamed, spans)
        keep = CONFIG.state_max_runs()
    except Exception as exc:  # an unwritable directory, ...: the run's outcome stands
        _log.emit("ERROR", "Session", f"could not save state to {path}: {exc}", **log)
        return
    session.record_state_path(path)

    def written(instead: WriteJob | None) -> None:
        if journal is not None:
            journal.remove()
        if instead is None:
            _log.emit("DEBUG", "Session", f"state saved to {path}", **log)
        else:  # a later session's state of the same path was handed over at once
            message = f"state not saved to {path}: superseded by a later session's state"
            _log.emit("DEBUG", "Session", message, **log)

    def failed(exc: BaseException) -> None:
        if journal is not None:
            journal.release()  # left for the next process to turn into a state
        session.record_state_path(None)
        _log.emit("ERROR", "Session", f"could not save state to {path}: {exc}", **log)

    WRITER.submit(
        WriteJob(
            path=target,
            chunks=chunks,
            keep=keep,
            large=spans is not None and len(spans) >= _LARGE_STATE_SPANS,
            written=written,
            failed=failed,
        )
    )


def _streamed(spans: list[Record]) -> Iterator[bytes]:
    return encode_state_chunks(*state_parts(spans))
