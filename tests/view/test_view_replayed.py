"""Replayed calls in the viewer (SPEC 14), in a real headless chromium.

A run saved, then run again with ``resume=True`` after its first call's
arguments stayed the same and the second's changed: the first node's details
carry a "replayed" badge, the second's (run live) do not.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from ..conftest import run
from .conftest import Page, Viewer

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import railtracks as rt

    @rt.function_node
    async def fetch(url: str) -> str:
        return "page of " + url

    @rt.function_node
    async def rank(n: int) -> int:
        return n * 2

    @rt.session(name="again", resume=sys.argv[1] == "resume")
    async def flow(n: int) -> int:
        await rt.call(fetch, "a")
        return await rt.call(rank, n)

    asyncio.run(flow(int(sys.argv[2])))
    """
)


def test_a_replayed_call_has_a_badge_and_a_live_one_has_none(
    page: Page, viewer: Viewer, state_dir: Path, tmp_path: Path
) -> None:
    env = {"RAILTRACKS_STATE_DIR": str(state_dir), "RAILTRACKS_LOGGING_SETTING": "NONE"}
    for args in (["first", "1"], ["resume", "2"]):
        done = run([sys.executable, "-c", SCRIPT, *args], tmp_path, env)
        assert done.returncode == 0, done.stderr
    p = page.page
    p.goto(f"{viewer.url}#/run/saved/again")
    p.wait_for_selector(".row .name")
    badges = {}
    for name in ("fetch", "rank"):
        p.locator(".row", has_text=name).click()
        p.wait_for_selector(f".details h2:text('{name}')")
        badges[name] = p.locator(".details .tags .badge.replayed").count()
    assert badges == {"fetch": 1, "rank": 0}
    assert page.dialogs == []
