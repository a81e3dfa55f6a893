"""The user's page (shared/seed/session-management.txt): every example, verbatim, as a script.

The page shows the examples without imports or indentation; ``tests/seed``
holds each one re-indented, and a test checks that every line of those files
is a line of the page, so the code run here is the code the user reads.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, run_python

SEED_PAGE = REPO.parent / "shared" / "seed" / "session-management.txt"
EXAMPLES = REPO / "tests" / "seed"
PREAMBLE = "import asyncio\n\nimport railtracks as rt\n\n"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
GREET = (EXAMPLES / "example_1_decorator.py").read_text().split("@rt.session")[0]
OVERWRITE = (
    "RT.Session : WARNING - File .railtracks/my-unique-run.json already exists, overwriting..."
)


PAGE_ORDER = (
    "example_1_decorator.py",
    "example_2_configured.py",
    "example_3_multiple.py",
    "example_4_context_manager.py",
)
SEED_PAGE_SCRIPT = "".join((EXAMPLES / name).read_text() + "\n" for name in PAGE_ORDER)
"""The whole page as one script, examples in page order (imports not included)."""


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_python(PREAMBLE + script, cwd)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_example_files_are_the_page_verbatim() -> None:
    if not SEED_PAGE.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{SEED_PAGE} is missing: CI lays shared/ beside the repository")
        pytest.skip("shared/seed is beside the repository in CI")
    page = {line.strip() for line in SEED_PAGE.read_text().splitlines()}
    for example in sorted(EXAMPLES.glob("example_*.py")):
        for line in example.read_text().splitlines():
            assert not line.strip() or line.strip() in page, f"{example.name}: {line!r}"


def test_decorator_example(tmp_path: Path) -> None:
    done = _run((EXAMPLES / "example_1_decorator.py").read_text(), tmp_path)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stdout)
    assert lines[0] == "Hello, Alice!"
    assert re.fullmatch(f"Session ID: {UUID}", lines[1])
    assert len(lines) == 2


def test_configured_example(tmp_path: Path) -> None:
    done = _run(GREET + (EXAMPLES / "example_2_configured.py").read_text(), tmp_path)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stdout)
    assert lines[0] == "['Hello, Bob!', 'Hello, Charlie!']"
    assert re.fullmatch(f"Session ID: {UUID}", lines[1])
    assert (tmp_path / ".railtracks" / "my-unique-run.json").is_file()
    assert done.stderr == "", "QUIET prints nothing on a first, successful run"


def test_multiple_workflows_example(tmp_path: Path) -> None:
    done = _run(GREET + (EXAMPLES / "example_3_multiple.py").read_text(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert _lines(done.stdout) == ["Hello, Diana!", "Bye, Robert!"]


def test_context_manager_example(tmp_path: Path) -> None:
    done = _run(GREET + (EXAMPLES / "example_4_context_manager.py").read_text(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert _lines(done.stdout) == ["['Hello, Bob!', 'Hello, Charlie!']"]


def test_whole_page_in_one_script_warns_on_overwrite(tmp_path: Path) -> None:
    done = _run(SEED_PAGE_SCRIPT, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stdout)
    assert lines[0] == "Hello, Alice!"
    assert lines[2] == "['Hello, Bob!', 'Hello, Charlie!']"
    assert lines[4:] == ["Hello, Diana!", "Bye, Robert!", "['Hello, Bob!', 'Hello, Charlie!']"]
    ids = [line.removeprefix("Session ID: ") for line in (lines[1], lines[3])]
    assert ids[0] != ids[1]
    # Two sessions named "my-unique-run": the second one's save warns, exactly once.
    assert done.stderr.count(OVERWRITE) == 1
    assert OVERWRITE in done.stderr.splitlines()
