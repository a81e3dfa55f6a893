"""A session's state is built and written off the event loop, by one writer thread (SPEC 6)."""

from __future__ import annotations

import asyncio
import os
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import railtracks as rt
from railtracks._runs import writer as writer_module
from railtracks._runs.store import TEMP_PREFIX

from .conftest import run_python

pytestmark = pytest.mark.usefixtures("quiet")


@rt.function_node
async def step(i: int) -> int:
    return i * 2


async def five_steps() -> int:
    return sum([await rt.call(step, i) for i in range(5)])


class Gate:
    """Replaces the writer's write: records its thread, and holds it until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, hold: bool) -> None:
        self.threads: list[threading.Thread] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        real: Callable[..., None] = writer_module.write_and_rename

        def gated(path: Path, data: Any, **options: Any) -> None:
            self.threads.append(threading.current_thread())
            self.entered.set()
            assert self.release.wait(60), "the test never released the write"
            real(path, data, **options)

        monkeypatch.setattr(writer_module, "write_and_rename", gated)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate(monkeypatch, hold=True)
    yield held
    held.release.set()
    assert rt.flush(30)


async def decorated() -> rt.Session:
    @rt.session(name="decorated")
    async def flow() -> int:
        return await five_steps()

    _, session = await flow()
    return session


async def async_with() -> rt.Session:
    async with rt.Session(name="async-with") as session:
        session.set_answer(await five_steps())
    return session


async def plain_with() -> rt.Session:
    with rt.Session(name="plain-with") as session:  # the seed's form, inside async code
        session.set_answer(await five_steps())
    return session


FORMS = [decorated, async_with, plain_with]


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.__name__)
def test_every_form_returns_before_its_state_is_written(
    form: Callable[[], Any], gate: Gate
) -> None:
    """The write is held: the session still returns, and the loop keeps turning meanwhile."""
    ticks = 0

    async def main() -> rt.Session:
        nonlocal ticks
        session: rt.Session = await form()
        # the write has not happened (it is held), yet the session has returned
        assert session.state_path is not None
        assert not session.state_path.exists()
        assert session.state is not None  # the in-memory state is there at once
        for _ in range(50):  # the loop is free: a ticker runs while the write is pending
            await asyncio.sleep(0)
            ticks += 1
        assert gate.entered.wait(30)
        gate.release.set()
        assert await rt.flush_async(30)
        return session

    session = asyncio.run(main())
    assert ticks == 50
    assert gate.threads, "the state was never written"
    assert all(thread is not threading.main_thread() for thread in gate.threads)
    assert rt.load_state(session.state_path) == session.state


def test_one_writer_thread_for_every_session(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch, hold=False)
    threads_before = threading.active_count()

    async def main() -> list[rt.Session]:
        @rt.session
        async def flow() -> int:
            return await five_steps()

        results = await asyncio.gather(*(flow() for _ in range(40)))
        return [session for _, session in results]

    sessions = asyncio.run(main())
    assert rt.flush(30)
    assert len(gate.threads) == 40
    assert len({id(thread) for thread in gate.threads}) == 1
    assert gate.threads[0].name == "railtracks-state-writer"
    assert threading.active_count() <= threads_before + 1
    for session in sessions:
        assert rt.load_state(session.identifier) == session.state


def test_flush_returns_only_when_the_state_is_complete(gate: Gate) -> None:
    async def flow() -> rt.Session:
        async with rt.Session(name="flushed") as session:
            await five_steps()
        return session

    session = asyncio.run(flow())
    path = session.state_path
    assert path is not None
    assert gate.entered.wait(30)
    seen: dict[str, bool] = {}

    def flush_then_look() -> None:
        seen["flushed"] = rt.flush(30)
        seen["complete"] = path.is_file()

    flusher = threading.Thread(target=flush_then_look)
    flusher.start()
    flusher.join(0.5)
    assert flusher.is_alive(), f"flush returned while the write was held: {seen}"
    gate.release.set()
    flusher.join(30)
    assert seen == {"flushed": True, "complete": True}
    assert rt.load_state(path) == session.state


def test_flush_async_waits_without_blocking_the_loop(gate: Gate) -> None:
    async def main() -> tuple[rt.Session, bool, int]:
        async with rt.Session(name="flushed-async") as session:
            await five_steps()
        flushing = asyncio.ensure_future(rt.flush_async(30))
        ticks = 0
        while not gate.entered.is_set() or ticks < 20:  # the loop turns while flush waits
            await asyncio.sleep(0.001)
            ticks += 1
        assert not flushing.done()
        gate.release.set()
        return session, await flushing, ticks

    session, flushed, ticks = asyncio.run(main())
    assert flushed
    assert ticks >= 20
    assert session.state_path is not None
    assert session.state_path.is_file()


def test_load_state_waits_for_the_pending_write(gate: Gate) -> None:
    async def flow() -> rt.Session:
        async with rt.Session(name="read-at-once") as session:
            await five_steps()
        return session

    session = asyncio.run(flow())
    loaded: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: loaded.update(state=rt.load_state("read-at-once")))
    reader.start()
    reader.join(0.5)
    assert reader.is_alive(), "load_state read before the write was done"
    gate.release.set()
    reader.join(30)
    assert loaded["state"] == session.state


def test_load_state_right_after_the_session() -> None:
    @rt.session(name="at-once")
    async def flow() -> int:
        return await five_steps()

    for _ in range(5):
        _, session = asyncio.run(flow())
        assert rt.load_state("at-once") == session.state


def test_a_save_never_lists_the_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stale temporaries are looked for once per directory per process, not per save."""
    listed: list[str] = []
    real = os.scandir

    def counting(path: Any = ".") -> Any:
        listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    rt.configure(state_dir="many")

    @rt.session
    async def flow() -> int:
        return await five_steps()

    for _ in range(30):
        asyncio.run(flow())
    assert rt.flush(30)
    directory = os.path.abspath("many")
    assert listed.count(directory) == 1, listed
    assert len(list(Path("many").glob("*.json"))) == 30


def test_a_stale_temporary_is_cleaned_by_the_first_write(tmp_path: Path) -> None:
    directory = tmp_path / "states"
    directory.mkdir()
    stale = directory / f"{TEMP_PREFIX}crashed.tmp"
    stale.write_bytes(b"half a state")
    old = stale.stat().st_mtime - 60
    os.utime(stale, (old, old))
    rt.configure(state_dir=directory)

    @rt.session(name="cleaner")
    async def flow() -> int:
        return await five_steps()

    asyncio.run(flow())
    assert rt.flush(30)
    assert not stale.exists()
    assert (directory / "cleaner.json").is_file()


def test_a_write_that_fails_later_is_logged_and_clears_state_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def disk_full(path: Path, data: Any, **options: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_module, "write_and_rename", disk_full)

    @rt.session(name="full", logging_setting="QUIET")
    async def flow() -> str:
        return "result"

    result, session = asyncio.run(flow())
    assert result == "result"
    assert rt.flush(30)
    assert session.state_path is None
    assert "could not save state to .railtracks/full.json" in capsys.readouterr().err
    assert not list(Path(".railtracks").glob(f"{TEMP_PREFIX}*"))


AT_EXIT = textwrap.dedent(
    """
    import asyncio
    import railtracks as rt

    @rt.function_node
    async def leaf(i: int) -> int:
        return i

    @rt.session(name="at-exit", logging_setting="NONE")
    async def flow(n: int) -> int:
        for i in range(n):
            await rt.call(leaf, i)
        return n

    @rt.session(logging_setting="NONE")
    async def small() -> int:
        return await rt.call(leaf, 1)

    async def main() -> None:
        await flow(5000)
        await asyncio.gather(*(small() for _ in range(20)))

    asyncio.run(main())
    # no flush: the interpreter's exit completes the states
    """
)


def test_states_are_complete_at_interpreter_exit(tmp_path: Path) -> None:
    done = run_python(AT_EXIT, tmp_path)
    assert done.returncode == 0, done.stderr
    directory = tmp_path / ".railtracks"
    assert not list(directory.glob(f"{TEMP_PREFIX}*"))
    states = sorted(directory.glob("*.json"))
    assert len(states) == 21
    big = rt.load_state(directory / "at-exit.json")
    assert big["session"]["status"] == "completed"
    assert len(big["nodes"]) == 5000
    for path in states:
        assert rt.load_state(path)["session"]["status"] == "completed"
