"""rt.testing as a user meets it: the pytest plugin's fixture in their own test suite."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .conftest import PYTHON, run

USER_TEST = textwrap.dedent(
    '''
    import asyncio
    import railtracks as rt

    @rt.function_node
    async def lookup(sku: str) -> int:
        return len(sku)

    @rt.function_node
    async def checkout(skus: list[str]) -> int:
        counts = await asyncio.gather(*(rt.call(lookup, s) for s in skus))
        if not all(counts):
            raise ValueError("empty sku")
        return sum(counts)

    @rt.session(name="checkout", logging_setting="NONE", save_state=False)
    async def flow(skus):
        return await rt.call(checkout, skus)

    def test_tree(rt_spans):
        result, session = asyncio.run(flow(["ab", "c"]))
        assert result == 3
        assert rt_spans.tree(session) == """
    session checkout
      checkout
        lookup
        lookup
    """.strip()

    def test_failure_shows_in_tree(rt_spans):
        try:
            asyncio.run(flow([""]))
        except ValueError:
            pass
        assert rt_spans.tree() == "session checkout [failed]\\n  checkout [failed]\\n    lookup"

    def test_tree_that_is_wrong(rt_spans):
        asyncio.run(flow(["x"]))
        assert rt_spans.tree() == "session checkout"
    '''
)


def test_the_rt_spans_fixture_is_available_to_user_suites(tmp_path: Path) -> None:
    (tmp_path / "test_user_flow.py").write_text(USER_TEST)
    done = run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_flow.py"], tmp_path
    )
    # the third test is wrong on purpose: the fixture really compares trees
    assert "1 failed, 2 passed" in done.stdout, done.stdout + done.stderr
    assert "test_tree_that_is_wrong" in done.stdout


ISOLATION_TEST = textwrap.dedent(
    """
    import asyncio
    import railtracks as rt

    @rt.session(name="isolated", logging_setting="REGULAR")
    async def flow():
        return await rt.call(lambda: 7)

    def test_isolated(rt_spans):
        for _ in range(2):
            assert asyncio.run(flow())[0] == 7
        assert rt.flush(30)  # the state file is complete once flush returns
        assert (rt_spans.state_dir / "isolated.json").is_file()
        console = rt_spans.console_output()
        assert "session isolated started" in console
        assert "already exists, overwriting..." in console
    """
)


def test_rt_spans_leaves_the_users_state_directory_and_terminal_alone(tmp_path: Path) -> None:
    (tmp_path / "test_isolation.py").write_text(ISOLATION_TEST)
    # -s: no output capture, so anything printed would reach the real stderr
    done = run(
        [PYTHON, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_isolation.py"],
        tmp_path,
    )
    assert "1 passed" in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / ".railtracks").exists(), "the user's states are untouched"
    assert "session isolated" not in done.stdout + done.stderr
    assert "RT.Session" not in done.stdout + done.stderr
