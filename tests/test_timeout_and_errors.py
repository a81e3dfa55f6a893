"""Timeouts bound the whole session; end_on_error ends it on the first node failure."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

import railtracks as rt
from railtracks.errors import GlobalTimeOutError, RailtracksError
from railtracks.testing import SpanCapture

pytestmark = pytest.mark.usefixtures("quiet")


def test_timeout_expiring_during_a_later_call(rt_spans: SpanCapture) -> None:
    finished: list[str] = []

    @rt.function_node
    async def step(name: str, seconds: float) -> str:
        await asyncio.sleep(seconds)
        finished.append(name)
        return name

    @rt.session(name="slow", timeout=1.0)
    async def flow() -> list[str]:
        # each call alone is under the timeout; together they are not. The timeout
        # falls half a second after the second call ends and 0.4 s before the third
        # would: wide margins, whatever the machine's load
        durations = [0.25, 0.25, 0.9, 0.9, 0.9]
        return [await rt.call(step, f"s{i}", seconds) for i, seconds in enumerate(durations)]

    started = time.monotonic()
    with pytest.raises(GlobalTimeOutError) as caught:
        asyncio.run(flow())
    elapsed = time.monotonic() - started
    # never before the timeout, and not after every call (3.2 s): the third was cut short
    assert 0.95 < elapsed < 3.0, elapsed
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, RailtracksError)
    assert finished == ["s0", "s1"], "the cancelled third call never finished its work"
    time.sleep(0.3)
    assert finished == ["s0", "s1"]
    assert rt_spans.tree() == "\n".join(
        ["session slow [timeout]", "  step", "  step", "  step [timeout]"]
    )
    (root,) = rt_spans.named("session slow")
    assert (root.attributes or {})["error.type"] == "timeout"


def test_timeout_cancels_every_running_node_including_detached_tasks(
    rt_spans: SpanCapture,
) -> None:
    finished: list[int] = []

    @rt.function_node
    async def sleeper(i: int) -> None:
        await asyncio.sleep(5)
        finished.append(i)

    @rt.session(name="fan", timeout=0.2)
    async def flow() -> None:
        detached = asyncio.create_task(rt.call(sleeper, 99))
        await asyncio.gather(*(rt.call(sleeper, i) for i in range(4)))
        await detached

    with pytest.raises(GlobalTimeOutError):
        asyncio.run(flow())
    assert finished == []
    spans = rt_spans.named("sleeper")
    assert len(spans) == 5
    assert {(s.attributes or {})["railtracks.status"] for s in spans} == {"timeout"}


def test_timeout_session_state_is_saved_with_status_timeout() -> None:
    @rt.function_node
    async def quick() -> int:
        return 1

    @rt.function_node
    async def hang() -> None:
        await asyncio.sleep(10)

    async def flow() -> None:
        with rt.Session(name="timed", timeout=0.1) as session:
            await rt.call(quick)
            await rt.call(hang)
        raise AssertionError(f"unreachable {session}")

    with pytest.raises(GlobalTimeOutError):
        asyncio.run(flow())
    state = rt.load_state("timed")
    assert state["session"]["status"] == "timeout"
    assert [(n["name"], n["status"]) for n in state["nodes"]] == [
        ("quick", "completed"),
        ("hang", "timeout"),
    ]


def test_a_session_cancelled_from_outside_is_cancelled_not_timed_out() -> None:
    holder: dict[str, rt.Session] = {}
    hanging = asyncio.Event()

    @rt.function_node
    async def hang() -> None:
        hanging.set()
        await asyncio.sleep(10)

    async def flow() -> None:
        with rt.Session(name="stopped", timeout=30) as session:
            holder["s"] = session
            await rt.call(hang)

    async def main() -> None:
        task = asyncio.create_task(flow())
        await hanging.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert holder["s"].status == "cancelled"
    assert rt.load_state("stopped")["session"]["status"] == "cancelled"


def test_end_on_error_ends_the_session_even_when_a_parent_caught_it(
    rt_spans: SpanCapture,
) -> None:
    boom = RuntimeError("payment gateway down")
    after: list[str] = []

    @rt.function_node
    async def charge() -> None:
        raise boom

    @rt.function_node
    async def careful() -> str:
        try:
            await rt.call(charge)
        except RuntimeError:
            await asyncio.sleep(30)  # the session ends here, not 30 s later
            after.append("kept going")
        return "handled"

    @rt.session(name="strict", end_on_error=True)
    async def flow() -> str:
        return await rt.call(careful)

    started = time.monotonic()
    with pytest.raises(RuntimeError) as caught:
        asyncio.run(flow())
    assert caught.value is boom
    assert time.monotonic() - started < 10  # far below the 30 s it would take otherwise
    assert after == []
    assert rt_spans.tree() == "session strict [failed]\n  careful [cancelled]\n    charge [failed]"


def test_end_on_error_without_an_await_after_the_catch() -> None:
    boom = ValueError("bad row")

    @rt.function_node
    async def parse() -> None:
        raise boom

    @rt.session(end_on_error=True)
    async def flow() -> str:
        with contextlib.suppress(ValueError):
            await rt.call(parse)
        return "swallowed"

    with pytest.raises(ValueError, match="bad row") as caught:
        asyncio.run(flow())
    assert caught.value is boom

    async def nothing_pending_after() -> None:
        # the session's cancellation does not leak past its end
        with pytest.raises(ValueError, match="bad row"):
            await flow()
        await asyncio.sleep(0.01)

    asyncio.run(nothing_pending_after())


def test_without_end_on_error_a_caught_failure_does_not_end_the_session() -> None:
    @rt.function_node
    async def parse() -> None:
        raise ValueError("bad row")

    @rt.session
    async def flow() -> str:
        try:
            await rt.call(parse)
        except ValueError:
            await asyncio.sleep(0.01)
        return "fine"

    result, session = asyncio.run(flow())
    assert (result, session.status) == ("fine", "completed")
