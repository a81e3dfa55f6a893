"""What runs when a session ends: the end hooks (the saved state).

``rt.on_session_end`` registers a hook; ``run_hooks`` runs them all, each
guarded (saving or reporting never changes a run's outcome). Hooks run on the
session's own thread (its event loop): they must be quick. Saving only hands
the state to the state writer's thread (``_runs.writer``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .._logs import log as _log

if TYPE_CHECKING:
    from .session import Session

# Hooks run when a session ends, after its spans are collected (the saved state).
SessionEndHook = Callable[["Session"], None]
_END_HOOKS: list[SessionEndHook] = []


def on_session_end(hook: SessionEndHook) -> None:
    """Register ``hook(session)`` to run when any session ends; it must not raise."""
    _END_HOOKS.append(hook)


def run_hooks(session: Session, label: str) -> None:
    """Every hook for ``session``; one that raises is logged, never raised."""
    for hook in _END_HOOKS:
        try:
            hook(session)
        except Exception as hook_error:  # saving or reporting never changes the outcome
            _log.emit(
                "ERROR", "Session", f"{label}: {hook_error!r}", setting=session.logging_setting
            )
