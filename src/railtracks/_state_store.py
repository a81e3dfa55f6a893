"""Writing and reading saved states: atomic, named, and never in the way of a run."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _log
from ._config import CONFIG
from ._state import SCHEMA_VERSION
from .errors import StateError, StateNotFoundError

if TYPE_CHECKING:
    from ._session import Session


def state_path(name: str | None, identifier: str, state_dir: Path | None = None) -> Path:
    """``{state_dir}/{name}.json``, or ``{identifier}.json`` for an unnamed session."""
    return (state_dir or CONFIG.state_dir()) / f"{name or identifier}.json"


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it over ``path``.

    Readers see the old file or the new one, never a torn one; concurrent
    writers of one name each rename a complete file, and the last one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def save_session_state(session: Session) -> None:
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
        document = session.state
        assert document is not None  # the session has ended
        if path.exists():
            _log.emit("WARNING", "Session", f"File {path} already exists, overwriting...", **log)
        write_atomically(path, document)
    except Exception as exc:  # disk full, read-only directory, ...: the run's outcome stands
        _log.emit("ERROR", "Session", f"could not save state to {path}: {exc}", **log)
        return
    session._state_path = path
    _log.emit("DEBUG", "Session", f"state saved to {path}", **log)


def resolve_state_path(path_or_name: str | os.PathLike[str]) -> Path:
    """A saved state's file: an existing path, else a name in the state directory."""
    candidate = Path(path_or_name)
    if candidate.is_file():
        return candidate
    text = os.fspath(path_or_name)
    if "/" not in text and "\\" not in text:
        named = CONFIG.state_dir() / (text if text.endswith(".json") else f"{text}.json")
        if named.is_file():
            return named
    raise StateNotFoundError(
        f"no saved state {text!r} (looked for that file and in {CONFIG.state_dir()}/)"
    )


def load_state(path_or_name: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a saved state: a file path, or a session name (or identifier) in the state directory.

    Returns the same tree as ``session.state``. Raises ``rt.errors.StateNotFoundError``
    when there is no such state and ``rt.errors.StateError`` when the file is not one.
    """
    path = resolve_state_path(path_or_name)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"{path} is not a readable railtracks state: {exc}") from exc
    if not isinstance(document, dict) or "schema_version" not in document:
        raise StateError(f"{path} is not a railtracks state (no schema_version)")
    if document["schema_version"] != SCHEMA_VERSION:
        raise StateError(
            f"{path} has schema_version {document['schema_version']!r}; "
            f"this railtracks reads version {SCHEMA_VERSION}"
        )
    return document
