"""Saving a session's state when it ends (SPEC 6): the session-end hook.

``railtracks/__init__`` registers ``save_session_state`` with
``rt.on_session_end``. It reads the session through ``EndedSession``, the
little of ``rt.Session`` it needs, so this layer never imports the runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from .._logs import log as _log
from .._recording.compact import Record
from .._settings import LoggingSetting
from .state import gc_paused, state_parts
from .store import encode_state_chunks, state_path, write_atomically, write_bytes_atomically


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

    def record_state_path(self, path: Path) -> None:
        """The state was written to ``path``."""
        ...


def save_session_state(session: EndedSession) -> None:
    """Session-end hook: write the state when ``save_state`` is on; log, never raise."""
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
        spans = session.finished_spans()
        if path.exists():
            _log.emit("WARNING", "Session", f"File {path} already exists, overwriting...", **log)
        if spans is None:  # no span to stream from (a host sampler dropped the session)
            document = session.state
            assert document is not None  # the session has ended
            write_atomically(path, document)
        else:  # streamed node by node: the tree is never held whole
            with gc_paused():
                write_bytes_atomically(path, encode_state_chunks(*state_parts(spans)))
    except Exception as exc:  # disk full, read-only directory, ...: the run's outcome stands
        _log.emit("ERROR", "Session", f"could not save state to {path}: {exc}", **log)
        return
    session.record_state_path(path)
    _log.emit("DEBUG", "Session", f"state saved to {path}", **log)
