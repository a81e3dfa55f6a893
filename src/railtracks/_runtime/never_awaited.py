"""``rt.call(...)`` never awaited in a session: one warning naming the node when the session ends.

Such a call runs nothing: its node is missing from the session, which would
otherwise end as completed with no sign of it. ``rt.call`` itself does no
bookkeeping for this (it costs nothing per call): CPython reports a coroutine
dropped before it ran to ``warnings._warn_unawaited_coroutine``, in the
thread and context that dropped it. railtracks wraps that function: a dropped
``rt.call`` coroutine of a running session is noted on the session (instead of
Python's generic ``coroutine 'call' was never awaited``), and the session
warns once at its end, naming each node. Every other coroutine, and an
``rt.call`` dropped outside a running session, gets Python's own warning.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from collections.abc import Callable
from types import CodeType
from typing import TYPE_CHECKING, Any

from .._logs import log as _log
from .session import _CURRENT
from .session_end import on_session_end

if TYPE_CHECKING:
    from .session import Session

_HOOK_NAME = "_warn_unawaited_coroutine"
# session identifier -> node names of its calls never awaited
_DROPPED: dict[str, list[str]] = {}
_lock = threading.Lock()


def _node_name(node: Any) -> str:
    name = getattr(node, "name", None)  # a railtracks Node
    if isinstance(name, str):
        return name
    name = getattr(node, "__name__", None)
    return name if isinstance(name, str) else type(node).__name__


def _noted(coroutine: Any, call_code: CodeType) -> bool:
    """Note a dropped ``rt.call`` coroutine on its running session; False if it is not one."""
    if getattr(coroutine, "cr_code", None) is not call_code:
        return False
    session = _CURRENT.get()
    if session is None or session.ended:
        return False
    frame = coroutine.cr_frame  # a coroutine that never ran still holds its arguments
    name = _node_name(frame.f_locals.get("node")) if frame is not None else "?"
    with _lock:
        _DROPPED.setdefault(session.identifier, []).append(name)
    return True


def watch(call: Callable[..., Any]) -> None:
    """Report ``call``'s coroutines that are never awaited (see the module); idempotent."""
    original = getattr(warnings, _HOOK_NAME, None)
    if original is None or getattr(original, "__railtracks__", False):
        return  # a Python without the hook: its own warning stands
    call_code = call.__code__

    def warn_unawaited(coroutine: Any) -> None:
        try:
            if _noted(coroutine, call_code):
                return
        except Exception:  # runs while a coroutine is finalized: never raises there
            pass
        original(coroutine)

    warn_unawaited.__railtracks__ = True  # type: ignore[attr-defined]
    setattr(warnings, _HOOK_NAME, warn_unawaited)


def _report(session: Session) -> None:
    if not _DROPPED:
        return
    with _lock:
        names = _DROPPED.pop(session.identifier, None)
    if not names:
        return
    counts = Counter(names)
    calls = ", ".join(
        f"rt.call({name})" + (f" x{count}" if count > 1 else "") for name, count in counts.items()
    )
    label = f"session {session.name!r}" if session.name else f"session {session.identifier}"
    _log.emit(
        "WARNING",
        "Session",
        f"{label}: {calls} never awaited, so the node never ran and is not in the session: "
        "write `await rt.call(...)` (or pass it to asyncio.gather / create_task)",
        setting=session.logging_setting,
        session_id=session.identifier,
    )


on_session_end(_report)
