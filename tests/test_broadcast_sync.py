"""``rt.broadcast`` from sync nodes and without ``await`` (SPEC 2)."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks.testing import SpanCapture

pytestmark = pytest.mark.usefixtures("quiet")


def test_sync_nodes_broadcast_to_sync_and_async_callbacks(rt_spans: SpanCapture) -> None:
    received: list[tuple[str, Any]] = []

    def sync_callback(message: Any) -> None:
        received.append(("sync", message))

    async def async_callback(message: Any) -> None:
        await asyncio.sleep(0)
        received.append(("async", message))

    @rt.function_node
    def step(n: int) -> int:
        rt.broadcast({"from": "sync node", "n": n})  # a plain call in a worker thread
        return n

    for callback in (sync_callback, async_callback):

        @rt.session(broadcast_callback=callback)
        async def flow() -> int:
            return await rt.call(step, 1) + await rt.call(step, 2)

        result, _ = asyncio.run(flow())
        assert result == 3
    assert received == [
        ("sync", {"from": "sync node", "n": 1}),
        ("sync", {"from": "sync node", "n": 2}),
        ("async", {"from": "sync node", "n": 1}),
        ("async", {"from": "sync node", "n": 2}),
    ]
    events = [
        event
        for span in rt_spans.named("step")
        for event in span.events
        if event.name == attr.EVENT_BROADCAST
    ]
    assert len(events) == 4


def test_broadcast_without_await_delivers_in_order_and_never_warns() -> None:
    received: list[str] = []

    async def slow(message: str) -> None:
        await asyncio.sleep(0.01)
        received.append(message)

    @rt.session(broadcast_callback=slow)
    async def flow() -> None:
        rt.broadcast("first")  # not awaited: still delivered
        await rt.broadcast("second")
        await asyncio.sleep(0.05)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would fail here
        asyncio.run(flow())
    assert received == ["first", "second"]


def test_a_failing_async_callback_from_a_sync_node_is_logged_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def broken(message: str) -> None:
        raise ConnectionError("ui gone")

    @rt.function_node
    def step() -> str:
        rt.broadcast("x")
        return "ok"

    @rt.session(broadcast_callback=broken, logging_setting="QUIET", save_state=False)
    async def flow() -> str:
        return await rt.call(step)

    assert asyncio.run(flow())[0] == "ok"
    assert capsys.readouterr().err.count("broadcast_callback failed: ConnectionError") == 1
