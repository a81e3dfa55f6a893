"""The running session's context: ``rt.context.get/put/update/delete/keys/items/as_dict``.

Every node of a session, concurrent ones and sync nodes in worker threads
included, sees the same mapping; sessions never see each other's. Each
session starts from a copy of the mapping it was given. Outside a session
these functions raise ``rt.errors.ContextError``.

Changes are recorded on the current span as ``railtracks.context.change``
events (keys always; values only with ``logging_setting="VERBOSE"``, and
sensitive keys always redacted). In a run that can be used again (it saves
its state, or is ``VERBOSE``) each also carries its values in full as
``railtracks.context.recorded`` so a resumed run can apply it again (a
change holding a secret is not recorded: the node that made it runs live).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

from ._logs import log as _log
from ._runtime.current import require_session
from ._runtime.recording import record_change
from ._runtime.session import Session
from ._settings import LoggingSetting

__all__ = ["as_dict", "delete", "get", "items", "keys", "put", "update"]


def _record(session: Session, operation: str, changes: Mapping[str, Any]) -> None:
    record_change(trace.get_current_span(), operation, changes, session)
    has_file = session.options.log_file is not None
    if has_file or session.logging_setting is LoggingSetting.VERBOSE:
        keys = ", ".join(str(key) for key in changes)
        _log.emit("DEBUG", "Context", f"{operation}: {keys}", has_file=has_file)


def get(key: str, default: Any = None) -> Any:
    """The value of ``key``, or ``default`` when it is not set."""
    return require_session("rt.context.get()").context_store.get(key, default)


def put(key: str, value: Any) -> None:
    """Set ``key`` to ``value`` for the rest of the session."""
    session = require_session("rt.context.put()")
    session.context_store.put(key, value)
    _record(session, "put", {key: value})


def update(values: Mapping[str, Any]) -> None:
    """Set several keys at once."""
    session = require_session("rt.context.update()")
    if not isinstance(values, Mapping):
        raise TypeError(f"rt.context.update() takes a mapping, got {type(values).__name__}")
    changes = dict(values)
    session.context_store.update(changes)
    _record(session, "update", changes)


def delete(key: str) -> None:
    """Remove ``key``; ``KeyError`` when it is not set."""
    session = require_session("rt.context.delete()")
    session.context_store.delete(key)
    _record(session, "delete", {key: None})


def keys() -> list[str]:
    """The keys currently set."""
    return require_session("rt.context.keys()").context_store.keys()


def items() -> list[tuple[str, Any]]:
    """``(key, value)`` pairs currently set."""
    return require_session("rt.context.items()").context_store.items()


def as_dict() -> dict[str, Any]:
    """A copy of the whole context."""
    return require_session("rt.context.as_dict()").context_store.snapshot()
