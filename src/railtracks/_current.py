"""What runs here: the current session, its identifier, and ``rt.broadcast``."""

from __future__ import annotations

import inspect
from typing import Any

from opentelemetry import trace

from . import _attributes as attr
from . import _limits, _log, _spans
from ._session import _CURRENT, Session
from .errors import ContextError


def current_session() -> Session | None:
    """The session running in this context, or None."""
    current = _CURRENT.get()
    return current if current is not None and not current._ended else None


def session_id() -> str | None:
    """The identifier of the session running in this context, or None."""
    current = current_session()
    return current.identifier if current is not None else None


def require_session(caller: str) -> Session:
    current = _CURRENT.get()
    if current is None or current._ended:
        raise ContextError(
            f"{caller} was called outside a session: run it inside a function decorated "
            "with @rt.session, a `with rt.Session(...)` block, or a node called with rt.call"
        )
    return current


async def broadcast(message: Any) -> None:
    """Send ``message`` to the session's ``broadcast_callback`` and record it as a span event.

    The callback may be sync or async. A callback that raises is logged and
    recorded on the span; the run goes on (broadcasts are a side channel).
    """
    current = require_session("rt.broadcast()")
    span = trace.get_current_span()
    if span.is_recording():  # encode() redacts by key at any depth and scrubs every string
        _limits.add_bounded_event(
            span, attr.EVENT_BROADCAST, {attr.BROADCAST_MESSAGE: current._encoder.encode(message)}
        )
    callback = current.options.broadcast_callback
    if callback is None:
        return
    try:
        result = callback(message)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        description = current._encoder.truncate(_spans.describe(exc))
        _log.emit("ERROR", "Session", f"broadcast_callback failed: {description}")
