"""Nodes and rt.call (SPEC 1): async and sync nodes, binding, plain callables, implicit sessions."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks.testing import SpanCapture

pytestmark = pytest.mark.usefixtures("quiet")


@rt.function_node
async def add(a: int, b: int = 10, *, scale: int = 1) -> int:
    return (a + b) * scale


@rt.function_node(name="renamed")
def multiply(a: int, b: int) -> int:
    return a * b


def test_decorated_nodes_stay_plain_functions_when_called_directly() -> None:
    assert multiply(3, 4) == 12
    assert asyncio.run(add(1)) == 11
    assert multiply.name == "renamed"
    assert multiply.__name__ == "multiply"
    assert add.__doc__ is None or isinstance(add.__doc__, str)


def test_arguments_are_bound_and_recorded_as_passed(rt_spans: SpanCapture) -> None:
    @rt.session(name="bind")
    async def flow() -> list[int]:
        return [
            await rt.call(add, 1),
            await rt.call(add, 1, 2),
            await rt.call(add, a=1, b=2, scale=3),
            await rt.call(multiply, 6, b=7),
        ]

    result, session = asyncio.run(flow())
    assert result == [11, 3, 9, 42]
    inputs = [
        json.loads(str((s.attributes or {})[attr.NODE_INPUT]))
        for s in sorted(rt_spans.spans(session), key=lambda s: s.start_time or 0)
        if s.name != "session bind"
    ]
    assert inputs == [{"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2, "scale": 3}, {"a": 6, "b": 7}]
    assert rt_spans.tree(session) == "session bind\n  add\n  add\n  add\n  renamed"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing a required argument: 'a'"),
        ((1, 2, 3), {}, "too many positional arguments"),
        ((1,), {"c": 2}, "unexpected keyword argument 'c'"),
        ((1,), {"a": 2}, "multiple values for argument 'a'"),
        ((1, 2, 3), {"scale": 1}, "too many positional arguments"),
    ],
)
def test_bad_calls_raise_type_error_naming_the_node_before_running(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str, rt_spans: SpanCapture
) -> None:
    @rt.session(name="bad-call")
    async def flow() -> None:
        await rt.call(add, *args, **kwargs)

    with pytest.raises(TypeError, match="bad arguments for node 'add'") as caught:
        asyncio.run(flow())
    assert message in str(caught.value)
    assert rt_spans.named("add") == [], "nothing ran"


def test_plain_callables_are_undecorated_nodes(rt_spans: SpanCapture) -> None:
    async def fetch(url: str) -> str:
        return f"<html from {url}>"

    def parse(html: str) -> int:
        return len(html)

    @rt.session(name="plain")
    async def flow() -> tuple[str, int, int]:
        html = await rt.call(fetch, "https://example.test")
        return html, await rt.call(parse, html), await rt.call(functools.partial(parse, "abc"))

    result, session = asyncio.run(flow())
    assert result == ("<html from https://example.test>", 32, 3)
    assert rt_spans.tree(session) == "session plain\n  fetch\n  parse\n  partial"


def test_call_outside_a_session_runs_in_an_implicit_one(rt_spans: SpanCapture) -> None:
    result = asyncio.run(rt.call(add, 2, 3))
    assert result == 5
    assert rt_spans.tree(attributes=[attr.SESSION_NAME]) == "\n".join(
        [
            "session add {railtracks.session.name='add'}",
            "  add {railtracks.session.name='add'}",
        ]
    )
    state = rt.load_state("add")
    assert state["answer"] == 5
    assert state["session"]["status"] == "completed"


def test_implicit_session_is_unnamed_when_the_node_name_is_no_file_name(
    rt_spans: SpanCapture,
) -> None:
    path_like = rt.function_node(name="tools/search")(lambda: 7)
    assert asyncio.run(rt.call(path_like)) == 7
    assert rt_spans.tree() == "session\n  tools/search"


def test_node_exceptions_propagate_unchanged_through_nesting() -> None:
    class DomainError(Exception):
        pass

    original = DomainError("declined")

    @rt.function_node
    def sync_fail() -> None:
        raise original

    @rt.function_node
    async def outer() -> None:
        await rt.call(sync_fail)

    @rt.session
    async def flow() -> None:
        await rt.call(outer)

    with pytest.raises(DomainError) as caught:
        asyncio.run(flow())
    assert caught.value is original


def test_function_node_rejects_a_bad_name() -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        rt.function_node(name="")(lambda: None)


def test_broadcast_calls_sync_and_async_callbacks_and_records_events(
    rt_spans: SpanCapture,
) -> None:
    received: list[Any] = []

    async def async_callback(message: Any) -> None:
        await asyncio.sleep(0)
        received.append(("async", message))

    @rt.function_node
    async def progress(step: int) -> None:
        await rt.broadcast({"step": step})

    async def flow(callback: Any) -> None:
        with rt.Session(name="bc", broadcast_callback=callback):
            await rt.call(progress, 1)
            await rt.broadcast("done")

    asyncio.run(flow(lambda m: received.append(("sync", m))))
    asyncio.run(flow(async_callback))
    assert received == [
        ("sync", {"step": 1}),
        ("sync", "done"),
        ("async", {"step": 1}),
        ("async", "done"),
    ]
    events = [
        (s.name, dict(e.attributes or {}))
        for s in rt_spans.spans()
        for e in s.events
        if e.name == attr.EVENT_BROADCAST
    ]
    assert ("progress", {attr.BROADCAST_MESSAGE: '{"step":1}'}) in events
    assert ("session bc", {attr.BROADCAST_MESSAGE: "done"}) in events


def test_a_failing_broadcast_callback_does_not_break_the_run() -> None:
    def broken(message: Any) -> None:
        raise ConnectionError("ui gone")

    @rt.session(broadcast_callback=broken)
    async def flow() -> str:
        await rt.broadcast("hello")
        return "still here"

    result, session = asyncio.run(flow())
    assert (result, session.status) == ("still here", "completed")


def test_broadcast_outside_a_session_is_a_context_error() -> None:
    with pytest.raises(rt.errors.ContextError):
        asyncio.run(rt.broadcast("x"))


def test_session_id_and_current_session() -> None:
    assert rt.session_id() is None
    assert rt.current_session() is None

    @rt.session
    async def flow() -> tuple[str | None, rt.Session | None]:
        return rt.session_id(), rt.current_session()

    (sid, current), session = asyncio.run(flow())
    assert sid == session.identifier
    assert current is session
