"""RAILTRACKS_STATE_MAX_RUNS and configure(state_max_runs=N) keep the newest N runs (SPEC 6)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import railtracks as rt
from railtracks.errors import ConfigurationError

from .conftest import run_python

pytestmark = pytest.mark.usefixtures("quiet")


@rt.function_node
async def step() -> int:
    return 1


def run_named(name: str) -> rt.Session:
    @rt.session(name=name)
    async def flow() -> int:
        return await rt.call(step)

    _, session = asyncio.run(flow())
    return session


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` older (without following a symlink)."""
    stamp = path.lstat().st_mtime - seconds
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def test_the_newest_runs_are_kept_and_nothing_else_is_touched(tmp_path: Path) -> None:
    directory = tmp_path / "states"
    rt.configure(state_dir=directory, state_max_runs=3)
    run_named("old")
    assert rt.flush(30)
    age(directory / "old.json", 3600)
    # an older state somewhere else, linked in: neither the link nor its target may go
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(directory / "old.json", elsewhere / "target.json")
    (directory / "linked.json").symlink_to(elsewhere / "target.json")
    age(directory / "linked.json", 7200)
    # files that are not railtracks states, older than everything
    (directory / "notes.json").write_text('{"mine": true}')
    (directory / "data.txt").write_text("mine")
    (directory / "empty.json").write_bytes(b"")
    (directory / "sub.json").mkdir()
    for name in ("notes.json", "data.txt", "empty.json", "sub.json"):
        age(directory / name, 7200)

    for index in range(5):
        run_named(f"run{index}")
    assert rt.flush(30)

    left = sorted(p.name for p in directory.iterdir())
    assert left == sorted(
        [
            "run2.json",
            "run3.json",
            "run4.json",
            "linked.json",
            "notes.json",
            "data.txt",
            "empty.json",
            "sub.json",
        ]
    )
    assert (directory / "linked.json").is_symlink()
    assert rt.load_state(elsewhere / "target.json")["session"]["name"] == "old"
    assert (directory / "notes.json").read_text() == '{"mine": true}'


def test_a_run_written_again_becomes_the_newest(tmp_path: Path) -> None:
    rt.configure(state_dir=tmp_path, state_max_runs=2)
    for name in ("a", "b", "a", "c"):
        run_named(name)
    assert rt.flush(30)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["a.json", "c.json"]


def test_without_a_limit_every_run_is_kept(tmp_path: Path) -> None:
    rt.configure(state_dir=tmp_path)
    for index in range(6):
        run_named(f"run{index}")
    assert rt.flush(30)
    assert len(list(tmp_path.glob("*.json"))) == 6


def test_the_directory_is_scanned_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(4):  # runs from before this process
        (tmp_path / f"earlier{index}.json").write_text('{"schema_version": 2}')
        age(tmp_path / f"earlier{index}.json", 3600 - index)
    listed: list[str] = []
    real = os.scandir

    def counting(path: Any = ".") -> Any:
        listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    rt.configure(state_dir=tmp_path, state_max_runs=3)
    for index in range(10):
        run_named(f"run{index}")
    assert rt.flush(30)
    # once for stale temporaries, once to index the runs: never per save
    assert listed.count(str(tmp_path)) == 2, listed
    kept = sorted(p.name for p in tmp_path.glob("*.json"))
    assert kept == ["run7.json", "run8.json", "run9.json"]


def test_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILTRACKS_STATE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("RAILTRACKS_STATE_MAX_RUNS", " 2 ")
    for index in range(4):
        run_named(f"run{index}")
    assert rt.flush(30)
    assert sorted(p.name for p in (tmp_path / "env").glob("*.json")) == ["run2.json", "run3.json"]


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "3 runs", "\u0661"])
def test_a_bad_environment_value_is_one_clear_error(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAILTRACKS_STATE_MAX_RUNS", value)
    with pytest.raises(ConfigurationError, match="RAILTRACKS_STATE_MAX_RUNS: expected a positive"):
        rt.Session()


def test_a_bad_environment_value_in_a_program(tmp_path: Path) -> None:
    script = (
        "import asyncio, railtracks as rt\n"
        "@rt.session\n"
        "async def flow():\n"
        "    return 1\n"
        "asyncio.run(flow())\n"
    )
    done = run_python(script, tmp_path, env={"RAILTRACKS_STATE_MAX_RUNS": "zero"})
    assert done.returncode == 1
    assert "ConfigurationError: RAILTRACKS_STATE_MAX_RUNS: expected a positive" in done.stderr
    assert not (tmp_path / ".railtracks").exists()


def test_a_blank_environment_value_keeps_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILTRACKS_STATE_MAX_RUNS", "  ")
    rt.Session()


@pytest.mark.parametrize("value", [0, -3, True, 1.5, "3"])
def test_a_bad_configure_value_is_a_configuration_error(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"configure\(state_max_runs=...\)"):
        rt.configure(state_max_runs=value)


def test_configure_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAILTRACKS_STATE_MAX_RUNS", "1")
    rt.configure(state_dir=tmp_path, state_max_runs=2)
    for index in range(3):
        run_named(f"run{index}")
    assert rt.flush(30)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["run1.json", "run2.json"]
