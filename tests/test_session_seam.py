"""A segment is a session through its hooks: same lifecycle, same clock, same outcome (SPEC 12)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any

import pytest

import railtracks as rt
from railtracks import errors
from railtracks._remote import carrier as _carrier
from railtracks._remote.segment import Segment
from railtracks._runtime.session import Session


@rt.function_node
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@rt.function_node
async def note(tag: str) -> str:
    rt.context.put("tag", tag)
    return tag


def _carrier_with(seconds_left: float | None) -> _carrier.SessionCarrier:
    """A carrier of a real session, with ``seconds_left`` before its deadline."""

    async def capture() -> _carrier.SessionCarrier:
        async with rt.Session(name="caller", timeout=60, context={"k": "v"}) as session:
            carrier = _carrier.capture(session)
        deadline = None if seconds_left is None else time.time() + seconds_left
        return dataclasses.replace(carrier, deadline=deadline)

    return asyncio.run(capture())


def test_segment_changes_only_the_sessions_hooks() -> None:
    own = set(vars(Segment))
    assert own.isdisjoint({"_start", "_finish", "__enter__", "__exit__", "__aexit__"})
    assert own.isdisjoint({"_arm_deadline", "_disarm", "_interrupt", "_outcome"})
    assert {"_open_root_span", "_close_root_span", "_time_allowed", "_started"} <= own


def test_segment_times_out_on_the_carriers_deadline(quiet: None) -> None:
    carrier = _carrier_with(0.3)

    async def run(segment: Segment) -> None:
        async with segment:
            left = segment.time_left()
            assert left is not None
            assert 0 < left <= 0.3
            await rt.call(slow, 30)

    async def far_side() -> Segment:
        segment = Segment(carrier)
        with pytest.raises(errors.GlobalTimeOutError):
            await run(segment)
        return segment

    started = time.monotonic()
    segment = asyncio.run(far_side())
    assert time.monotonic() - started < 5  # the timer fired: the node never slept 30 s
    assert segment.status == "timeout"
    assert segment.ended
    assert isinstance(segment.error, errors.GlobalTimeOutError)
    (span,) = segment.reply()["spans"]  # the node, ended as interrupted by the timeout
    assert span["name"] == "slow"
    assert span["attributes"]["railtracks.status"] == "timeout"


def test_segment_passes_its_deadline_on(quiet: None) -> None:
    carrier = _carrier_with(30)

    async def far_side() -> _carrier.SessionCarrier:
        async with Segment(carrier) as segment:
            return _carrier.capture(segment)  # a call shipped further from the segment

    onward = asyncio.run(far_side())
    assert carrier.deadline is not None
    assert onward.deadline is not None
    assert abs(onward.deadline - carrier.deadline) < 0.5
    assert onward.session_id == carrier.session_id


def test_segment_without_a_deadline_has_no_timer(quiet: None) -> None:
    carrier = _carrier_with(None)

    async def far_side() -> Segment:
        async with Segment(carrier) as segment:
            assert segment.time_left() is None
            assert await rt.call(note, "x") == "x"
        return segment

    segment = asyncio.run(far_side())
    assert segment.status == "completed"


def test_segment_ends_like_a_session(quiet: None) -> None:
    carrier = _carrier_with(30)
    outside: list[Any] = []

    async def far_side() -> Segment:
        async with Segment(carrier) as segment:
            assert rt.current_session() is segment
            await rt.call(note, "seen")
        outside.append(rt.current_session())
        return segment

    segment = asyncio.run(far_side())
    assert outside == [None]  # the segment's context is restored on exit
    assert segment.status == "completed"
    assert segment.started_at is not None
    assert segment.ended_at is not None
    assert segment.ended_at >= segment.started_at
    assert segment.duration is not None
    assert dict(segment.context) == {"k": "v", "tag": "seen"}  # frozen at the end
    with pytest.raises(TypeError):
        segment.context["tag"] = "later"  # type: ignore[index]
    reply = segment.reply()
    assert [span["name"] for span in reply["spans"]] == ["note"]
    assert reply["context_changes"] == [["put", "tag", "seen"]]
    with pytest.raises(RuntimeError, match="entered only once"):
        segment.__enter__()


def test_session_end_on_error_stops_its_timer(quiet: None) -> None:
    @rt.function_node
    async def boom() -> None:
        raise KeyError("x")

    async def run(session: Session) -> None:
        async with session:
            with contextlib.suppress(KeyError):
                await rt.call(boom)
            await asyncio.sleep(30)  # cancelled by end_on_error, not by the timeout

    async def flow() -> Session:
        # the timeout is far beyond the failing call (immediate), whatever the load
        session = rt.Session(timeout=10, end_on_error=True)
        with pytest.raises(KeyError):
            await run(session)
        return session

    session = asyncio.run(flow())
    assert session.status == "failed"
    assert session.time_left() is not None
