"""What runs here: the current session, its identifier, and ``rt.broadcast``."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Generator
from typing import Any

from opentelemetry import trace

from .._logs import log as _log
from .._recording import attributes as attr
from .._recording import limits as _limits
from .._recording import spans as _spans
from ..errors import ContextError
from .session import _CURRENT, Session


def current_session() -> Session | None:
    """The session running in this context, or None."""
    current = _CURRENT.get()
    return current if current is not None and not current.ended else None


def session_id() -> str | None:
    """The identifier of the session running in this context, or None."""
    current = current_session()
    return current.identifier if current is not None else None


def require_session(caller: str) -> Session:
    current = _CURRENT.get()
    if current is None or current.ended:
        raise ContextError(
            f"{caller} was called outside a session: run it inside a function decorated "
            "with @rt.session, a `with rt.Session(...)` block, or a node called with rt.call"
        )
    return current


class Broadcast:
    """What ``rt.broadcast`` returns: the message is already on its way.

    A sync callback has run by the time ``rt.broadcast`` returns; an async one
    has been scheduled (or, from a sync node's worker thread, has run on the
    session's event loop). Awaiting the object waits for an async callback to
    finish; not awaiting it is fine and never warns.
    """

    __slots__ = ("_pending",)

    def __init__(self, pending: asyncio.Future[None] | None) -> None:
        self._pending = pending

    def __await__(self) -> Generator[Any, None, None]:
        if self._pending is not None:
            yield from self._pending.__await__()


def broadcast(message: Any) -> Broadcast:
    """Send ``message`` to the session's ``broadcast_callback`` and record it as a span event.

    Works from async code (``await rt.broadcast(msg)``, or without ``await``)
    and from sync nodes (``rt.broadcast(msg)``). The callback may be sync or
    async. A callback that raises is logged and recorded on the span; the run
    goes on (broadcasts are a side channel).
    """
    current = require_session("rt.broadcast()")
    span = trace.get_current_span()
    if span.is_recording():  # encode() redacts by key at any depth and scrubs every string
        _limits.add_bounded_event(
            span, attr.EVENT_BROADCAST, {attr.BROADCAST_MESSAGE: current.encoder.encode(message)}
        )
    callback = current.options.broadcast_callback
    if callback is None:
        return Broadcast(None)
    try:
        result = callback(message)
    except Exception as exc:
        _report(current, exc)
        return Broadcast(None)
    if not inspect.isawaitable(result):
        return Broadcast(None)
    delivery = _deliver(current, result)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a worker thread (sync node) or no event loop at all
        loop = None
    if loop is not None:
        return Broadcast(loop.create_task(delivery))
    home = current.loop
    if home is not None and home.is_running():
        # a sync node: run it on the session's loop (free while it awaits this node)
        asyncio.run_coroutine_threadsafe(delivery, home).result()
    else:
        asyncio.run(delivery)
    return Broadcast(None)


async def _deliver(session: Session, awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:
        _report(session, exc)


def _report(session: Session, exc: Exception) -> None:
    description = session.encoder.truncate(_spans.describe(exc))
    _log.emit("ERROR", "Session", f"broadcast_callback failed: {description}")
