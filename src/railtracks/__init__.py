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

from . import context, errors, testing
from ._config import configure
from ._current import broadcast, current_session, session_id
from ._decorator import session
from ._node import call, function_node
from ._options import set_config
from ._propagation import merge_segment, session_carrier, session_segment
from ._session import Session, on_session_end
from ._state_store import load_state, save_session_state
from ._telemetry import TELEMETRY
from ._version import __version__

on_session_end(save_session_state)


def flush(timeout: float = 30.0) -> bool:
    """Hand every finished span to the exporters and wait for them, at most ``timeout`` seconds.

    Returns False when an exporter did not finish in time (nothing is raised).
    """
    return TELEMETRY.flush(timeout)


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
    "function_node",
    "load_state",
    "merge_segment",
    "session",
    "session_carrier",
    "session_id",
    "session_segment",
    "set_config",
    "testing",
]
