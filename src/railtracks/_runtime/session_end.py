"""What runs when a session ends: the end hooks (the saved state), in a thread when large.

``rt.on_session_end`` registers a hook; ``run_hooks`` runs them all, each
guarded (saving or reporting never changes a run's outcome); ``in_thread``
awaits a job run in a thread of its own, so building and writing the state of
a large session leaves the event loop (other sessions, servers) its turns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
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


async def in_thread(job: Callable[[], None]) -> None:
    """Run ``job`` in a thread (with this context) and wait for it without blocking the loop.

    Cancelled meanwhile, it still waits for the job: a session's state is
    complete when its ``async with`` is left, however it is left.
    """
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(_settle, done, job), daemon=True).start()
    try:
        await asyncio.wrap_future(done)
    except asyncio.CancelledError:
        done.result()
        raise


def _settle(done: concurrent.futures.Future[None], job: Callable[[], None]) -> None:
    try:
        job()
    except BaseException as exc:  # handed to the awaiting task, never lost in the thread
        done.set_exception(exc)
    else:
        done.set_result(None)
