"""Edge cases found in review: methods, callable objects, hostile values, detached tasks."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import io
import time
import weakref
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks._recording.encoding import ValueEncoder
from railtracks.errors import GlobalTimeOutError
from railtracks.testing import SpanCapture

pytestmark = pytest.mark.usefixtures("quiet")


class Agent:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @rt.function_node
    async def act(self, task: str) -> str:
        return f"{self.prefix}:{task}"

    @rt.function_node(name="agent.plan")
    def plan(self, steps: int) -> list[int]:
        return list(range(steps))


def test_decorated_methods_bind_their_instance(rt_spans: SpanCapture) -> None:
    agent = Agent("a1")

    @rt.session(name="methods")
    async def flow() -> tuple[str, list[int]]:
        return await rt.call(agent.act, "search"), await rt.call(agent.plan, steps=2)

    result, session = asyncio.run(flow())
    assert result == ("a1:search", [0, 1])
    assert asyncio.run(agent.act("direct")) == "a1:direct"
    assert rt_spans.tree(session, attributes=[attr.NODE_INPUT]) == "\n".join(
        [
            "session methods",
            '  act {railtracks.node.input=\'{"task":"search"}\'}',
            "  agent.plan {railtracks.node.input='{\"steps\":2}'}",
        ]
    )


def test_callable_objects_and_their_attributes(rt_spans: SpanCapture) -> None:
    class AsyncTool:
        async def __call__(self, x: int) -> int:
            await asyncio.sleep(0)
            return x + 1

    def tagged(x: int) -> int:
        return x * 10

    tagged.name = "tagged"  # type: ignore[attr-defined]  # a function carrying its own attributes
    tagged.func = None  # type: ignore[attr-defined]

    named = rt.function_node(name="explicit")(tagged)

    @rt.session(name="callables")
    async def flow() -> list[int]:
        return [await rt.call(AsyncTool(), 1), await rt.call(named, 2)]

    result, session = asyncio.run(flow())
    assert result == [2, 20]
    assert rt_spans.tree(session) == "session callables\n  AsyncTool\n  explicit"


def test_plain_callables_are_not_kept_alive_or_confused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Query:
        text: str
        api_key: str = dataclasses.field(compare=False)

        def __call__(self) -> str:
            return f"{self.text} with {self.api_key}"

    class Handler:
        async def run(self) -> int:
            return 1

    @rt.session(save_state=False)
    async def flow() -> list[Any]:
        first = await rt.call(Query("q", "KEY-A"))
        second = await rt.call(Query("q", "KEY-B"))
        handler = Handler()
        alive = weakref.ref(handler)
        await rt.call(handler.run)
        del handler
        gc.collect()
        return [first, second, alive() is None]

    (first, second, collected), _ = asyncio.run(flow())
    assert (first, second) == ("q with KEY-A", "q with KEY-B")
    assert collected, "railtracks kept a reference to a plain callable"


def test_detached_node_tasks_end_with_their_session(rt_spans: SpanCapture) -> None:
    finished: list[str] = []

    @rt.function_node
    async def slow() -> None:
        await asyncio.sleep(60)  # never ends by itself: the session's end cancels it
        finished.append("slow")

    @rt.session(name="detached")
    async def flow() -> str:
        asyncio.create_task(rt.call(slow))  # noqa: RUF006  # left running on purpose
        await asyncio.sleep(0.01)
        return "done"

    async def main() -> rt.Session:
        _, session = await flow()
        await asyncio.sleep(0.05)  # the cancelled task gets to run its handlers
        return session

    session = asyncio.run(main())
    assert finished == []
    state = session.state
    assert state is not None
    assert [(n["name"], n["status"]) for n in state["nodes"]] == [("slow", "cancelled")]
    assert rt_spans.tree(session) == "session detached\n  slow [cancelled]"


def test_end_on_error_and_timeout_leave_no_pending_cancellation() -> None:
    @rt.function_node
    async def fails() -> None:
        raise ValueError("boom")

    @rt.session(end_on_error=True, timeout=0.05, save_state=False)
    async def flow() -> None:
        try:
            await rt.call(fails)
        except ValueError:
            time.sleep(0.1)  # noqa: ASYNC251  # blocks the loop past the timeout, on purpose
            await asyncio.sleep(0.2)

    async def main() -> int:
        with pytest.raises(ValueError, match="boom"):
            await flow()
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0.01)  # a leaked cancellation would land here
        return task.cancelling()

    assert asyncio.run(main()) == 0


def test_a_deadline_found_by_a_nested_call_marks_the_parent_timed_out(
    rt_spans: SpanCapture,
) -> None:
    @rt.function_node
    async def child() -> None:
        return None

    @rt.function_node
    async def parent() -> None:
        time.sleep(0.1)  # noqa: ASYNC251  # blocks the loop so the timer cannot fire, on purpose
        await rt.call(child)

    @rt.session(name="late", timeout=0.05)
    async def flow() -> None:
        await rt.call(parent)

    with pytest.raises(GlobalTimeOutError):
        asyncio.run(flow())
    (span,) = rt_spans.named("parent")
    assert (span.attributes or {})[attr.STATUS] == "timeout"
    assert (span.attributes or {})[attr.ERROR_TYPE] == "timeout"


def test_hostile_keys_messages_and_numbers_never_break_a_run(rt_spans: SpanCapture) -> None:
    class BadStr:
        def __str__(self) -> str:
            raise RuntimeError("str exploded")

        def __repr__(self) -> str:
            return "BadStr()"

    class BadError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no message")

    def callback(message: Any) -> None:
        raise BadError()

    @rt.function_node
    async def huge_error() -> None:
        raise ValueError("x" * 100_000)

    @rt.session(name="hostile", context={BadStr(): 1}, broadcast_callback=callback)  # type: ignore[dict-item]  # a hostile key on purpose
    async def flow() -> int:
        rt.context.put(BadStr(), 2)  # type: ignore[arg-type]  # a hostile key on purpose
        await rt.broadcast("hi")
        with contextlib.suppress(ValueError):
            await rt.call(huge_error)
        return 2**64 + 1

    result, session = asyncio.run(flow())
    assert (result, session.status) == (2**64 + 1, "completed")
    (root,) = rt_spans.named("session hostile")
    assert (root.attributes or {})["railtracks.context.BadStr()"] == 1
    (failed,) = rt_spans.named("huge_error")
    assert len(failed.status.description or "") <= 4096
    (event,) = [e for e in failed.events if e.name == "exception"]
    for value in (event.attributes or {}).values():
        assert len(str(value)) <= 4096
    assert (root.attributes or {})[attr.SESSION_ANSWER] == str(2**64 + 1)


def test_out_of_range_ints_become_strings() -> None:
    values = ValueEncoder()
    assert values.encode(2**63 - 1) == 2**63 - 1
    assert values.encode(2**63) == str(2**63)
    assert values.encode(-(2**63) - 1) == str(-(2**63) - 1)
    assert values.encode([1, 2**70]) == f"[1,{2**70}]"


def test_the_overwrite_warning_is_not_an_event_on_the_host_span() -> None:
    host = TracerProvider().get_tracer("host")

    @rt.session(name="dup", logging_setting="NONE")
    async def flow() -> None:
        return None

    async def request() -> Any:
        with host.start_as_current_span("GET /") as span:
            await flow()
            await flow()
            return span

    span = asyncio.run(request())
    assert [e.name for e in span.events] == []


def test_console_asks_isatty_once_per_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR")

    class CountingTerminal(io.StringIO):
        asked = 0

        def isatty(self) -> bool:
            CountingTerminal.asked += 1
            return True

    rt.configure(console_stream=CountingTerminal())

    @rt.session(name="lines", logging_setting="REGULAR", save_state=False)
    async def flow() -> None:
        for i in range(10):
            await rt.call(lambda i=i: i)

    asyncio.run(flow())
    assert CountingTerminal.asked == 1
