"""``rt.testing.replay`` and the ``rt_replay`` fixture: a recorded run as a test fixture."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks.errors import ReplayMismatchError
from railtracks.testing import SpanCapture

from .conftest import PYTHON, run

CALLS: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    CALLS.clear()


@rt.function_node
async def ask_llm(question: str, temperature: float = 0.0) -> str:
    CALLS.append(f"ask {question}")
    return f"answer to {question}"


@rt.function_node
async def tidy(text: str) -> str:
    CALLS.append("tidy")
    return text.upper()


async def agent(questions: list[str], temperature: float = 0.0) -> list[str]:
    answers = []
    for question in questions:
        answers.append(await rt.call(tidy, await rt.call(ask_llm, question, temperature)))
    return answers


def record(questions: list[str]) -> rt.Session:
    async def main() -> rt.Session:
        async with rt.Session(name="golden") as session:
            await agent(questions)
        return session

    return asyncio.run(main())


def test_replay_answers_every_call_from_the_run(rt_spans: SpanCapture) -> None:
    golden = record(["a", "b"])
    CALLS.clear()
    with rt.testing.replay("golden"):
        assert asyncio.run(agent(["a", "b"])) == ["ANSWER TO A", "ANSWER TO B"]
    assert CALLS == []
    with rt.testing.replay(golden):  # an ended session works as well as its name
        asyncio.run(agent(["a"]))
    assert CALLS == []
    asyncio.run(agent(["a"]))  # outside the block: live again
    assert CALLS == ["ask a", "tidy"]


def test_nodes_keeps_the_rest_live(rt_spans: SpanCapture) -> None:
    record(["a"])
    CALLS.clear()
    with rt.testing.replay("golden", nodes=[ask_llm]):
        assert asyncio.run(agent(["a"])) == ["ANSWER TO A"]
    assert CALLS == ["tidy"]
    CALLS.clear()
    with rt.testing.replay("golden", nodes=["tidy"]):
        asyncio.run(agent(["a"]))
    assert CALLS == ["ask a"]


def test_strict_mismatch_names_the_place_the_nearest_call_and_the_difference(
    rt_spans: SpanCapture,
) -> None:
    record(["a", "b"])
    with (
        rt.testing.replay("golden", nodes=[ask_llm]),
        pytest.raises(ReplayMismatchError) as caught,
    ):
        asyncio.run(agent(["a", "c"]))
    message = str(caught.value)
    assert caught.value.place == "ask_llm[1]"
    assert "ask_llm[1]" in message
    assert "recorded at the same place" in message
    assert 'question: recorded "b", now "c"' in message
    assert isinstance(caught.value, rt.errors.RailtracksError)

    with (
        rt.testing.replay("golden", nodes=[ask_llm]),
        pytest.raises(ReplayMismatchError) as caught,
    ):
        asyncio.run(agent(["a", "b", "d"]))
    assert "ask_llm[2]" in str(caught.value)
    assert "nearest: ask_llm[1]" in str(caught.value)

    with (
        rt.testing.replay("golden", nodes=[ask_llm]),
        pytest.raises(ReplayMismatchError, match=r"temperature: recorded 0\.0, now 0\.5"),
    ):
        asyncio.run(agent(["a"], temperature=0.5))


def test_a_session_that_saves_no_state_records_no_digest_and_replays_by_its_inputs(
    rt_spans: SpanCapture,
) -> None:
    async def main(**options: Any) -> rt.Session:
        async with rt.Session(name="unsaved", logging_setting="NONE", **options) as session:
            await agent(["a", "b"])
        return session

    unsaved = asyncio.run(main(save_state=False))
    saved = asyncio.run(main())
    digests = {
        name: [(s.attributes or {}).get(attr.NODE_ARGS_DIGEST) for s in rt_spans.spans(session)
               if s.name == "ask_llm"]
        for name, session in (("unsaved", unsaved), ("saved", saved))
    }  # fmt: skip
    assert digests["unsaved"] == [None, None]  # not on the hot path of a run nobody reuses
    assert all(isinstance(d, str) and len(d) == 64 for d in digests["saved"])
    assert unsaved.state is not None
    assert all("args_digest" not in node for node in unsaved.state["nodes"])
    CALLS.clear()
    with rt.testing.replay(unsaved):  # matched by the recorded inputs instead
        assert asyncio.run(agent(["a", "b"])) == ["ANSWER TO A", "ANSWER TO B"]
    assert CALLS == []
    with rt.testing.replay(unsaved), pytest.raises(ReplayMismatchError, match="ask_llm"):
        asyncio.run(agent(["a", "c"]))
    with rt.testing.replay(unsaved), pytest.raises(ReplayMismatchError, match="temperature"):
        asyncio.run(agent(["a"], temperature=0.5))


def test_non_strict_runs_a_call_without_a_match_live(rt_spans: SpanCapture) -> None:
    record(["a"])
    CALLS.clear()
    with rt.testing.replay("golden", strict=False):
        assert asyncio.run(agent(["a", "z"])) == ["ANSWER TO A", "ANSWER TO Z"]
    assert CALLS == ["ask z", "tidy"]


def test_a_missing_run_is_a_state_error(rt_spans: SpanCapture) -> None:
    with pytest.raises(rt.errors.StateNotFoundError), rt.testing.replay("never-recorded"):
        pass


def test_hostile_names_in_a_mismatch_message_are_inert(rt_spans: SpanCapture) -> None:
    @rt.function_node(name="evil\x1b]0;pwned\x07")
    async def evil(value: str) -> str:
        return value

    async def main(value: str) -> Any:
        async with rt.Session(name="evil"):
            return await rt.call(evil, value)

    asyncio.run(main("\x1b[2J"))
    with rt.testing.replay("evil"), pytest.raises(ReplayMismatchError) as caught:
        asyncio.run(main("other"))
    assert "\x1b" not in str(caught.value)
    assert "\x07" not in str(caught.value)


USER_SUITE = textwrap.dedent(
    """
    import asyncio
    import pytest
    import railtracks as rt

    SPENT = []

    @rt.function_node
    async def ask_llm(question: str) -> str:
        SPENT.append(question)
        return "42" if question == "meaning" else "?"

    async def agent(question):
        async with rt.Session(name="agent"):
            return await rt.call(ask_llm, question)

    def test_replays_without_calling_the_model(rt_replay):
        rt_replay("golden.json")
        assert asyncio.run(agent("meaning")) == "42"
        assert SPENT == []

    def test_a_changed_question_is_a_mismatch(rt_replay):
        rt_replay("golden.json", nodes=[ask_llm])
        with pytest.raises(rt.errors.ReplayMismatchError, match="ask_llm"):
            asyncio.run(agent("life"))

    def test_replay_ends_with_the_test():
        assert asyncio.run(agent("meaning")) == "42"
        assert SPENT == ["meaning"]
    """
)

RECORD = textwrap.dedent(
    """
    import asyncio, shutil
    import railtracks as rt

    @rt.function_node
    async def ask_llm(question: str) -> str:
        return "42"

    async def main():
        async with rt.Session(name="agent", logging_setting="NONE") as session:
            await rt.call(ask_llm, "meaning")
        return session

    session = asyncio.run(main())
    assert rt.flush(30)
    shutil.copy(session.state_path, "golden.json")
    """
)


def test_the_rt_replay_fixture_in_a_users_own_pytest_run(tmp_path: Path) -> None:
    recorded = run([PYTHON, "-c", RECORD], tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    (tmp_path / "test_agent.py").write_text(USER_SUITE)
    done = run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_agent.py"], tmp_path)
    assert "3 passed" in done.stdout, done.stdout + done.stderr
