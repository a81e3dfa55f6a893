"""railtracks: an observability-first async runtime; every session is an OpenTelemetry trace.

import asyncio
import railtracks as rt

@rt.function_node
async def greet(name: str) -> str:
    return f"Hello, {name}!"

@rt.session(name="hello")
async def flow():
    return await rt.call(greet, "Alice")

result, session = asyncio.run(flow())
"""

import asyncio
import contextlib
import threading
import time

from . import (
    _env_guard,  # noqa: F401  # first: imports the SDK safe from a bad OTEL_* value
    context,
    errors,
    testing,
)
from ._config import configure
from ._delivery.telemetry import TELEMETRY
from ._remote.merge import run_remote as _run_remote
from ._remote.propagation import merge_segment, session_carrier, session_segment
from ._runs.pending import wait_for_all as _wait_for_states
from ._runs.save import save_session_state
from ._runs.store import load_state
from ._runtime.current import broadcast, current_session, session_id
from ._runtime.decorator import session
from ._runtime.node import call, function_node
from ._runtime.node import set_remote_runner as _set_remote_runner
from ._runtime.options import set_config
from ._runtime.session import Session
from ._runtime.session_end import on_session_end
from ._runtime.usage_record import record_usage
from ._version import __version__

# The layers below never import the ones above: these wire them together.
on_session_end(save_session_state)
_set_remote_runner(_run_remote)


def flush(timeout: float = 30.0) -> bool:
    """Complete every saved state and export every finished span, at most ``timeout`` seconds.

    The states handed to the state writer are complete (renamed into place,
    durable) first; then the spans go to the exporters, and those the
    collector does not take are written to the outbox (and count as handled).
    Never raises; returns False when something was still pending at the
    deadline. Blocks the calling thread: in async code use ``flush_async``.
    """
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        seconds = 0.0
    seconds = min(seconds, threading.TIMEOUT_MAX) if seconds > 0 else 0.0  # NaN: 0
    deadline = time.monotonic() + seconds
    states_written = _wait_for_states(seconds)
    exported = TELEMETRY.flush(max(deadline - time.monotonic(), 0.0))
    return states_written and exported


async def flush_async(timeout: float = 30.0) -> bool:  # noqa: ASYNC109  # mirrors flush()
    """``flush`` for async code: waits in a worker thread, never blocking the event loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def work() -> None:
        result = flush(timeout)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(_settle, future, result)

    threading.Thread(target=work, name="railtracks-flush", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[bool], result: bool) -> None:
    if not future.done():
        future.set_result(result)


__all__ = [
    "Session",
    "__version__",
    "broadcast",
    "call",
    "configure",
    "context",
    "current_session",
    "errors",
    "flush",
    "flush_async",
    "function_node",
    "load_state",
    "merge_segment",
    "record_usage",
    "session",
    "session_carrier",
    "session_id",
    "session_segment",
    "set_config",
    "testing",
]
