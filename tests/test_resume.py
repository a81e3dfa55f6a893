"""``resume=``: an earlier run's completed calls answer the same calls again (SPEC 14)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks.errors import ConfigurationError
from railtracks.testing import SpanCapture

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    RAN.clear()


@rt.function_node
async def fetch(item: int) -> dict[str, int]:
    RAN.append(f"fetch {item}")
    rt.context.put(f"seen_{item}", item * 10)
    return {"item": item, "price": item * 3}


@rt.function_node
def total(prices: list[int]) -> int:  # a sync node, run in a worker thread
    RAN.append("total")
    return sum(prices)


@rt.function_node
async def gather_all(items: list[int]) -> list[dict[str, int]]:
    RAN.append("gather_all")
    return list(await asyncio.gather(*(rt.call(fetch, i) for i in items)))


@rt.function_node
async def charge(amount: int, fail: bool) -> str:
    RAN.append("charge")
    if fail:
        raise RuntimeError("card declined")
    return f"charged {amount}"


async def checkout(items: list[int], fail: bool) -> str:
    fetched = await rt.call(gather_all, items)
    amount = await rt.call(total, [f["price"] for f in fetched])
    return await rt.call(charge, amount, fail)


def run_checkout(items: list[int], *, fail: bool, **options: Any) -> rt.Session:
    async def main() -> rt.Session:
        session = rt.Session(name="checkout", **options)
        try:
            async with session:
                await checkout(items, fail)
        except RuntimeError:
            pass
        return session

    return asyncio.run(main())


def test_resume_after_a_failure_runs_only_what_did_not_complete(rt_spans: SpanCapture) -> None:
    first = run_checkout([1, 2], fail=True)
    assert first.status == "failed"
    assert sorted(RAN) == ["charge", "fetch 1", "fetch 2", "gather_all", "total"]
    RAN.clear()

    second = run_checkout([1, 2], fail=False, resume=True)

    assert second.status == "completed"
    assert RAN == ["charge"]  # nested, gathered and sync calls were answered from the run
    # context changes of the replayed calls (made under gather_all) are applied again
    assert dict(second.context) == {"seen_1": 10, "seen_2": 20}
    state = second.state
    assert state is not None
    assert state["session"]["replayed"] == 2  # gather_all (its fetches never start) and total
    (gathered, summed, charged) = state["nodes"]
    assert [n.get("replayed") for n in (gathered, summed, charged)] == [True, True, None]
    assert gathered["output"] == [{"item": 1, "price": 3}, {"item": 2, "price": 6}]
    assert gathered["children"] == []  # a replayed call does not run its children
    assert charged["output"] == "charged 9"


def test_replayed_spans_link_to_the_original_and_the_console_marks_them(
    rt_spans: SpanCapture,
) -> None:
    first = run_checkout([4], fail=True, logging_setting="REGULAR")
    rt_spans.console.seek(0)
    rt_spans.console.truncate()
    second = run_checkout([4], fail=False, resume=True, logging_setting="REGULAR")

    (original,) = [s for s in rt_spans.spans(first) if s.name == "total"]
    (replayed,) = [s for s in rt_spans.spans(second) if s.name == "total"]
    assert replayed.attributes is not None
    assert replayed.attributes[attr.NODE_REPLAYED] is True
    assert replayed.attributes[attr.NODE_OUTPUT] == "12"
    (link,) = replayed.links
    assert link.context.span_id == original.context.span_id
    assert link.context.trace_id == original.context.trace_id
    assert replayed.context.trace_id != original.context.trace_id
    console = rt_spans.console_output()
    assert "total completed" in console
    assert next(line for line in console.splitlines() if "total" in line).count("replayed") == 1
    assert next(line for line in console.splitlines() if "charge" in line).count("replayed") == 0


def test_changed_arguments_run_live(rt_spans: SpanCapture) -> None:
    run_checkout([1, 2], fail=True)
    RAN.clear()
    second = run_checkout([1, 3], fail=False, resume=True)
    # gather_all's arguments changed: it runs, and so its children: fetch(1) keeps its
    # place and arguments (replayed), fetch(3) at fetch(2)'s place does not
    assert sorted(RAN) == ["charge", "fetch 3", "gather_all", "total"]
    assert second.state is not None
    assert second.state["session"]["replayed"] == 1


def test_resume_after_a_timeout(rt_spans: SpanCapture) -> None:
    @rt.function_node
    async def slow(step: int) -> int:
        RAN.append(f"slow {step}")
        if step == 2:
            await asyncio.sleep(60)  # the session's timeout ends it here
        return step

    async def flow(session: rt.Session) -> list[int]:
        async with session:
            return [await rt.call(slow, s) for s in range(3)]

    with pytest.raises(rt.errors.GlobalTimeOutError):
        asyncio.run(flow(rt.Session(name="steps", timeout=0.5)))
    assert RAN == ["slow 0", "slow 1", "slow 2"]
    RAN.clear()

    @rt.function_node(name="slow")
    async def quick(step: int) -> int:
        RAN.append(f"quick {step}")
        return step

    async def again() -> list[int]:
        async with rt.Session(name="steps", resume=True):
            return [await rt.call(quick, s) for s in range(3)]

    assert asyncio.run(again()) == [0, 1, 2]
    assert RAN == ["quick 2"]


def test_no_earlier_run_runs_normally_and_a_named_one_is_used(rt_spans: SpanCapture) -> None:
    session = run_checkout([5], fail=False, resume=True)
    assert session.status == "completed"
    assert sorted(RAN) == ["charge", "fetch 5", "gather_all", "total"]
    RAN.clear()

    async def other() -> None:
        async with rt.Session(name="other", resume="checkout"):
            await checkout([5], False)

    asyncio.run(other())
    assert RAN == []  # every call answered from the run named "checkout"


def test_resume_from_a_state_file_path(rt_spans: SpanCapture) -> None:
    first = run_checkout([6], fail=True)
    assert rt.flush(30)
    assert first.state_path is not None
    saved = first.state_path.with_name("kept.json")
    saved.write_bytes(first.state_path.read_bytes())
    RAN.clear()
    run_checkout([6], fail=False, resume=saved)
    assert RAN == ["charge"]


def test_an_unreadable_earlier_run_is_one_warning_and_the_session_runs(
    rt_spans: SpanCapture, tmp_path: Any
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"schema_version": 2, "nodes": [\x1b[2J')
    rt.set_config(logging_setting="REGULAR")
    session = run_checkout([7], fail=False, resume=bad)
    assert session.status == "completed"
    assert len(RAN) == 4
    warnings = [line for line in rt_spans.console_output().splitlines() if "resume" in line]
    assert len(warnings) == 1, warnings
    assert "\x1b" not in warnings[0]


def test_resume_true_needs_a_name_and_bad_values_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="give it a name"):
        rt.Session(resume=True)
    with pytest.raises(ConfigurationError, match="resume"):
        rt.Session(name="x", resume=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="resume"):
        rt.session(name="x", resume="")


def test_an_output_holding_a_secret_is_not_recorded_and_runs_live(rt_spans: SpanCapture) -> None:
    @rt.function_node
    async def login(user: str) -> dict[str, str]:
        RAN.append("login")
        return {"user": user, "token": "abc"}  # "token" is a sensitive key

    async def flow(**options: Any) -> dict[str, str]:
        async with rt.Session(name="login", **options):
            return await rt.call(login, "ada")

    asyncio.run(flow())
    assert rt.flush(30)
    recorded = json.loads((rt_spans.state_dir / "login.json").read_text())["nodes"][0]
    assert recorded["attributes"][attr.NODE_UNREPLAYABLE] == "redacted"
    assert recorded["output"] == {"user": "ada", "token": "[REDACTED]"}
    RAN.clear()
    rt.set_config(logging_setting="REGULAR")
    assert asyncio.run(flow(resume=True)) == {"user": "ada", "token": "abc"}
    assert RAN == ["login"]
    assert "1 recorded call(s) ran live" in rt_spans.console_output()


def test_a_context_change_holding_a_secret_makes_its_call_run_live(rt_spans: SpanCapture) -> None:
    @rt.function_node
    async def connect() -> int:
        RAN.append("connect")
        rt.context.put("api_key", "sk-live-1")
        return 1

    async def flow(**options: Any) -> Any:
        async with rt.Session(name="connect", **options) as session:
            await rt.call(connect)
        return session

    asyncio.run(flow())
    RAN.clear()
    session = asyncio.run(flow(resume=True))
    assert RAN == ["connect"]
    assert session.context["api_key"] == "sk-live-1"


def test_a_failure_inside_replay_runs_the_call_live_with_one_warning(
    rt_spans: SpanCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_checkout([8], fail=True)
    RAN.clear()

    def broken(recorded: Any, attributes: Any) -> None:
        raise KeyError("railtracks' own bug")

    monkeypatch.setattr("railtracks._runtime.replay._same_arguments", broken)
    rt.set_config(logging_setting="REGULAR")
    session = run_checkout([8], fail=False, resume=True)
    assert session.status == "completed"
    assert sorted(RAN) == ["charge", "fetch 8", "gather_all", "total"]
    warnings = [ln for ln in rt_spans.console_output().splitlines() if "ran live" in ln]
    assert len(warnings) == 1
    assert "4 recorded call(s) ran live" in warnings[0]  # the failed charge too
    assert "KeyError" in warnings[0]


def test_a_resumed_run_can_itself_be_resumed(rt_spans: SpanCapture) -> None:
    run_checkout([1, 2], fail=True)
    run_checkout([1, 2], fail=True, resume=True)  # replays all but charge, fails again
    RAN.clear()
    third = run_checkout([1, 2], fail=False, resume=True)
    assert RAN == ["charge"]  # the replayed calls recorded their outputs again
    assert dict(third.context) == {"seen_1": 10, "seen_2": 20}
