"""One small workflow, run in its own process in several modes, for the diff tests (SPEC 14).

Modes: ``same``; ``fail`` (the second ``fetch`` raises, with markup and an escape
in its message); ``output`` (every ``fetch`` returns another size and a title
holding markup); ``args`` (``plan`` and one ``fetch`` get other arguments);
``added`` (``plan`` makes one more call).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .conftest import PYTHON, run

WORKFLOW = """
import asyncio, sys
import railtracks as rt

MODE = sys.argv[1]

@rt.function_node
async def fetch(url: str) -> dict:
    if MODE in ("fail", "both") and url == "u2":
        raise ValueError("boom \\x1b[2J <img src=x onerror=alert(1)>")
    changed = MODE in ("output", "both")
    title = "<script>alert(2)</script>" if changed else "plain"
    return {"url": url, "size": len(url) + (1 if changed else 0), "title": title}

@rt.function_node
async def extra() -> int:
    return 1

@rt.function_node
async def plan(urls: list) -> int:
    found = 0
    for url in urls:
        try:
            found += (await rt.call(fetch, url))["size"]
        except ValueError:
            pass
    if MODE == "added":
        await rt.call(extra)
    return 0

@rt.session(name=sys.argv[2], logging_setting="NONE")
async def main():
    urls = ["u1", "u2", "u3"] if MODE != "args" else ["u1", "changed", "u3"]
    return await rt.call(plan, urls)

asyncio.run(main())
"""


def record_run(cwd: Path, mode: str, name: str, env: Mapping[str, str] | None = None) -> None:
    """Run the workflow in ``mode`` as a session named ``name``; its state is saved."""
    script = cwd / "diff_workflow.py"
    script.write_text(WORKFLOW)
    done = run([PYTHON, str(script), mode, name], cwd, env)
    assert done.returncode == 0, done.stderr
