"""SIGTERM or SIGINT, once or twice, while a large state is written (SPEC 5, SPEC 6).

The program has finished (its session returned, the interpreter is exiting)
and the state writer is writing a 50,000-node state when the signal comes: the
state is still written whole, no temporary file is left, nothing is printed,
and the process exits with the program's own status. (A signal that comes
while the program's own code still runs is the program's Ctrl-C, as ever.)
Each signal is sent when the program says how far the write has got (a line
per chunk written), never after a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import railtracks as rt
from railtracks._runs.store import TEMP_PREFIX

NODES = 50_000

PROGRAM = textwrap.dedent(
    """
    import asyncio, sys, time
    import railtracks as rt
    from railtracks._runs import store, writer

    real_write = store._write_all
    written = [0]
    SLOW = {slow}

    def announced(fd, data):
        written[0] += 1
        print(f"chunk {{written[0]}}", flush=True)
        if SLOW:
            time.sleep(SLOW)  # a slow disk
        real_write(fd, data)

    store._write_all = announced
    real_hurry = writer.WRITER._hurry_on_signals

    def hurry():  # the program is over: its exit is now completing the state
        real_hurry()
        print("draining", flush=True)

    writer.WRITER._hurry_on_signals = hurry
    writer.EXIT_GRACE_SECONDS = {grace}

    @rt.function_node
    async def leaf(i: int) -> int:
        if i == {announce_at}:
            print("running", flush=True)
        if i % 500 == 0:
            await asyncio.sleep(0)  # the loop's turn: a signal's cancellation comes in here
        return i

    @rt.session(name="big", logging_setting="NONE")
    async def flow(n: int) -> int:
        for i in range(n):
            await rt.call(leaf, i)
        return n

    try:
        asyncio.run(flow({nodes}))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print("returned", flush=True)
    """
)


def run_and_signal(
    cwd: Path,
    signum: int,
    *,
    first_at: str,
    times: int,
    grace: float = 8.0,
    slow: float = 0.0,
    announce_at: int = -1,
) -> tuple[int, str, list[str]]:
    """Run the program; send ``signum`` at the line ``first_at`` (then at the next chunk)."""
    script = PROGRAM.format(slow=slow, grace=grace, announce_at=announce_at, nodes=NODES)
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    sent = 0
    chunks = 0
    for raw in process.stdout:
        line = raw.strip()
        lines.append(line)
        if line.startswith("chunk"):
            chunks = int(line.split()[1])
        # the first signal at ``first_at``, the next one at the next chunk written
        due = _first_due(first_at, line, lines, chunks) if sent == 0 else line.startswith("chunk")
        if due and sent < times:
            process.send_signal(signum)
            sent += 1
    _, stderr = process.communicate(timeout=60)
    assert sent == times, f"the write ended before the signals could be sent: {lines[-5:]}"
    return process.returncode, stderr, lines


def _first_due(first_at: str, line: str, lines: list[str], chunks: int) -> bool:
    if first_at == "running":
        return line == "running"
    if "draining" not in lines:  # the program is still running its own code
        return False
    if first_at == "draining":
        return True
    return chunks >= int(first_at.split()[1])


def assert_clean_exit(cwd: Path, returncode: int, stderr: str, status: str) -> None:
    directory = cwd / ".railtracks"
    assert "Traceback" not in stderr, stderr
    assert stderr.strip() == "", stderr
    assert not list(directory.glob(f"{TEMP_PREFIX}*")), "a temporary file was left"
    state = rt.load_state(directory / "big.json")
    assert state["session"]["status"] == status
    if status == "completed":
        assert returncode == 0
        assert len(state["nodes"]) == NODES
        assert state["answer"] == NODES


SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")]


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("first_at", ["draining", "chunk 1", "chunk 12"])
def test_a_signal_while_the_state_is_written(
    tmp_path: Path, signum: int, times: int, first_at: str
) -> None:
    returncode, stderr, lines = run_and_signal(tmp_path, signum, first_at=first_at, times=times)
    assert "returned" in lines
    assert_clean_exit(tmp_path, returncode, stderr, "completed")


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_while_the_session_runs_saves_it_cancelled(tmp_path: Path, signum: int) -> None:
    returncode, stderr, lines = run_and_signal(
        tmp_path, signum, first_at="running", times=1, announce_at=1000
    )
    assert "interrupted" in lines
    assert returncode == 130
    assert_clean_exit(tmp_path, returncode, stderr, "cancelled")


def test_a_write_past_the_grace_is_abandoned_without_a_trace(tmp_path: Path) -> None:
    """A disk too slow to finish in the grace: the write is given up, its temporary removed."""
    returncode, stderr, _ = run_and_signal(
        tmp_path, signal.SIGTERM, first_at="chunk 2", times=1, grace=0.0, slow=0.2
    )
    directory = tmp_path / ".railtracks"
    assert "Traceback" not in stderr, stderr
    assert returncode == 0
    assert not list(directory.glob(f"{TEMP_PREFIX}*")), "a temporary file was left"
    assert not (directory / "big.json").exists()
