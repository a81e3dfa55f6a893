"""Nodes the Ray tests run on workers (importable there through PYTHONPATH)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from opentelemetry import trace

import railtracks as rt


class InventoryError(ValueError):
    """A user's own exception type: it must reach the driver as itself."""


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


@rt.function_node
def where() -> dict[str, Any]:
    return {"pid": os.getpid(), "node": _node_id()}


@rt.function_node
async def leaf(n: int) -> dict[str, Any]:
    rt.context.put(f"leaf_{n}", os.getpid())
    return {"n": n, "pid": os.getpid(), "session": rt.session_id()}


@rt.function_node
async def fan(n: int) -> list[dict[str, Any]]:
    """Nested calls on the worker, concurrent ones included, and a foreign span."""
    with trace.get_tracer("tests.foreign").start_as_current_span("foreign work") as span:
        span.set_attribute("work.items", n)
    return list(await asyncio.gather(*(rt.call(leaf, i) for i in range(n))))


@rt.function_node
def sync_outer(n: int) -> dict[str, Any]:
    """A sync node whose nested call runs in its own event loop, on the worker."""
    inner = asyncio.run(rt.call(leaf, n))
    return {"pid": os.getpid(), "inner": inner}


@rt.function_node
async def context_worker() -> dict[str, Any]:
    seen = rt.context.as_dict()
    rt.context.put("from_worker", {"pid": os.getpid()})
    rt.context.update({"a": 2, "b": 3})
    rt.context.delete("gone")
    return seen


@rt.function_node
async def fails(item: str) -> None:
    raise InventoryError(f"no {item} left")


@rt.function_node
def slow_write(path: str, seconds: float) -> str:
    time.sleep(seconds)
    Path(path).write_text("written", encoding="utf-8")
    return path


@rt.function_node
def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@rt.function_node
def session_view() -> dict[str, Any]:
    session = rt.current_session()
    assert session is not None
    left = session._deadline - time.monotonic() if session._deadline is not None else None
    return {"left": left, "setting": session.logging_setting.name, "name": session.name}


@rt.function_node
def returns_lock() -> Any:
    import threading

    return threading.Lock()


@rt.function_node(executor="local")
def local_pid() -> int:
    return os.getpid()


@rt.function_node
async def model_worker() -> int:
    """One recorded and one instrumented model call, on the worker (SPEC 15)."""
    from opentelemetry import trace

    rt.record_usage(model="worker-model", input_tokens=300, output_tokens=30)
    with trace.get_tracer("tests.worker_llm").start_as_current_span("chat worker-model") as span:
        span.set_attributes(
            {
                "gen_ai.request.model": "worker-model",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 3,
            }
        )
    return os.getpid()
