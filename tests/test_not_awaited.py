"""``rt.call(...)`` never awaited: one warning naming the node when the session ends."""

from __future__ import annotations

import asyncio
import io
import warnings

import pytest

import railtracks as rt


@rt.function_node
async def forgotten(x: int) -> int:
    return x


@rt.function_node
async def used() -> int:
    return 1


@rt.function_node
async def careless() -> int:
    rt.call(forgotten, 2)  # never awaited, inside a node
    return await rt.call(used)


def _console() -> io.StringIO:
    stream = io.StringIO()
    rt.configure(console_stream=stream)
    return stream


def test_a_call_never_awaited_warns_once_naming_the_node_at_the_session_end() -> None:
    stream = _console()

    @rt.session(name="forgetful", logging_setting="QUIET")
    async def flow() -> int:
        rt.call(forgotten, 1)  # never awaited
        answer = await rt.call(careless)
        assert "never awaited" not in stream.getvalue(), "said once, at the end"
        return answer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, session = asyncio.run(flow())
    assert result == 1
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    lines = [line for line in stream.getvalue().splitlines() if "never awaited" in line]
    assert lines == [
        "RT.Session : WARNING - session 'forgetful': rt.call(forgotten) x2 never awaited, so the "
        "node never ran and is not in the session: write `await rt.call(...)` "
        "(or pass it to asyncio.gather / create_task)"
    ]
    assert session.state is not None
    assert [n["name"] for n in session.state["nodes"]] == ["careless"]


def test_only_the_session_that_dropped_a_call_warns() -> None:
    stream = _console()

    @rt.session(logging_setting="QUIET")
    async def flow(drop: bool) -> int:
        if drop:
            rt.call(forgotten, 1)  # never awaited
        return await rt.call(used) + (await asyncio.gather(rt.call(used)))[0]

    async def concurrently() -> list[tuple[int, rt.Session]]:
        return await asyncio.gather(flow(True), flow(False), flow(True))

    runs = asyncio.run(concurrently())
    assert [result for result, _ in runs] == [2, 2, 2]
    lines = [line for line in stream.getvalue().splitlines() if "never awaited" in line]
    assert sorted(lines) == sorted(
        f"RT.Session : WARNING - session {session.identifier}: rt.call(forgotten) never "
        "awaited, so the node never ran and is not in the session: write `await rt.call(...)` "
        "(or pass it to asyncio.gather / create_task)"
        for _, session in (runs[0], runs[2])
    )


def test_outside_a_session_python_warns_as_usual() -> None:
    stream = _console()
    with pytest.warns(RuntimeWarning, match="coroutine 'call' was never awaited"):
        rt.call(forgotten, 1)
    assert stream.getvalue() == ""
