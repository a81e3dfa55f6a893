"""The run journal (SPEC 13): a killed process leaves a crashed run every reader shows.

Every process here is real: a child runs a session and says, on stdout, once
its journal holds what it has done; the test kills it with SIGKILL right
then (it waits on that line, never on time) and reads what is left with the
CLI in subprocesses, ``rt.load_state``, the viewer's server and ``export``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

import railtracks as rt
from railtracks._runs.recover import journals_in, settle
from railtracks.testing._receiver import otlp_receiver_process
from railtracks.view._server import ViewerServer

from .conftest import PYTHON, RAILTRACKS, run

# The child: a session "doomed" whose node `hang` calls N leaves (mode: async,
# sync or gathered), waits until its journal holds them (polling the file: the
# journal thread writes it), says so, and hangs until killed.
CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    import railtracks as rt

    mode, n = sys.argv[1], int(sys.argv[2])
    rt.configure(export=False)

    @rt.function_node
    async def leaf(i: int) -> int:
        return i

    @rt.function_node
    def leaf_sync(i: int) -> int:
        return i

    @rt.function_node
    async def forever(i: int) -> int:
        await asyncio.sleep(3600)
        return i

    def wait_for_journal(session, wanted: dict[bytes, int]) -> None:
        while True:  # the journal thread writes every 100 ms: wait for what was done
            try:
                data = session.journal.path.read_bytes()
            except FileNotFoundError:
                data = b""
            if all(data.count(line) >= count for line, count in wanted.items()):
                return
            time.sleep(0.01)

    @rt.function_node
    async def hang(n: int) -> int:
        session = rt.current_session()
        wanted = {b'["s","leaf': n, b'["b","hang"': 1}
        if mode == "async":
            for i in range(n):
                await rt.call(leaf, i)
        elif mode == "sync":
            for i in range(n):
                await rt.call(leaf_sync, i)
        else:
            await asyncio.gather(*(rt.call(leaf, i) for i in range(n)))
            tasks = [asyncio.ensure_future(rt.call(forever, i)) for i in range(3)]
            wanted[b'["b","forever"'] = 3
        await asyncio.to_thread(wait_for_journal, session, wanted)
        print(f"ended {n}", flush=True)
        await asyncio.sleep(3600)
        return n

    async def main() -> None:
        async with rt.Session(name="doomed", logging_setting="NONE"):
            await rt.call(hang, n)

    asyncio.run(main())
    """
)


def _env(directory: Path) -> dict[str, str]:
    return {**os.environ, "RAILTRACKS_STATE_DIR": str(directory), "NO_COLOR": "1"}


def _start(script: str, directory: Path, *args: str) -> subprocess.Popen[str]:
    """``script`` in a process of its own, its standard streams piped."""
    return subprocess.Popen(
        [PYTHON, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(directory),
        cwd=directory,
    )


def _kill_after_progress(
    script: str, directory: Path, *args: str, expect: str = "ended"
) -> subprocess.CompletedProcess[str]:
    """Run ``script``, wait for its first line starting with ``expect``, then SIGKILL it."""
    with _start(script, directory, *args) as child:
        assert child.stdout is not None
        line = child.stdout.readline()
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=60)
    assert line.startswith(expect), (line, err)
    assert child.returncode == -signal.SIGKILL
    return subprocess.CompletedProcess(args, child.returncode, line + out, err)


def _cli(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([RAILTRACKS, *args], directory, env=_env(directory))


@pytest.fixture
def states(tmp_path: Path) -> Path:
    directory = tmp_path / "states"
    directory.mkdir()
    rt.configure(state_dir=directory)
    return directory


def _viewer_runs(directory: Path) -> list[dict[str, object]]:
    server = ViewerServer("127.0.0.1", 0, directory)
    server.start_in_thread()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("GET", "/api/runs")
        body = connection.getresponse().read()
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    listed = json.loads(body)
    return listed if isinstance(listed, list) else listed["runs"]


@pytest.mark.parametrize(("mode", "unfinished"), [("async", 1), ("sync", 1), ("gathered", 4)])
def test_a_killed_session_reads_as_crashed_everywhere(
    states: Path, mode: str, unfinished: int
) -> None:
    ended = 300
    _kill_after_progress(CHILD, states, mode, str(ended))
    assert len(journals_in(states)) == 1  # the killed process left its journal

    listed = _cli(states, "runs")  # a reader in another process settles it first
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("doomed"))
    assert row.split()[1:2] == ["crashed"]
    assert row.split()[-4:-2] == [str(ended + unfinished), str(unfinished)]  # NODES FAILED
    assert journals_in(states) == []  # turned into a state, no journal left behind
    assert stat.S_IMODE((states / "doomed.json").stat().st_mode) == 0o600

    state = rt.load_state("doomed")
    assert state["session"]["status"] == "crashed"
    assert state["session"]["end_time_unix_nano"] is None
    assert state["counts"] == {"nodes": ended + unfinished, "failed": unfinished}
    (top,) = state["nodes"]
    assert (top["name"], top["status"], top["end_time_unix_nano"]) == ("hang", "unfinished", None)
    leaves = [node for node in top["children"] if node["name"].startswith("leaf")]
    assert [node["output"] for node in leaves] == list(range(ended))
    assert all(node["status"] == "completed" for node in leaves)
    running = [node for node in top["children"] if node["name"] == "forever"]
    assert len(running) == unfinished - 1
    assert all(node["status"] == "unfinished" for node in running)

    shown = _cli(states, "show", "doomed", "--depth", "1")
    assert shown.returncode == 0, shown.stderr
    assert "session doomed  crashed" in shown.stdout
    assert "hang  unfinished" in shown.stdout

    (viewed,) = [r for r in _viewer_runs(states) if "doomed" in json.dumps(r)]
    assert "crashed" in json.dumps(viewed)

    with otlp_receiver_process(grpc=False) as receiver:
        exported = _cli(
            states, "export", "doomed", "--endpoint", receiver.http_endpoint,
            "--protocol", "http/protobuf",
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        assert receiver.wait_for(ended + unfinished + 1) == ended + unfinished + 1


def test_load_state_alone_finds_a_killed_run(states: Path) -> None:
    _kill_after_progress(CHILD, states, "async", "50")
    state = rt.load_state("doomed")  # no other reader came first
    assert state["session"]["status"] == "crashed"
    assert state["counts"] == {"nodes": 51, "failed": 1}


# A session that ends, then its state's assembly stops half-way (the writer
# thread blocked inside it) and the process is killed there.
ASSEMBLY_CHILD = textwrap.dedent(
    """
    import asyncio, sys, threading
    import railtracks as rt
    from railtracks._runs import assemble, save

    rt.configure(export=False)
    save.kept_all = lambda journal, spans: False  # assembled from the journal at any size
    walk = assemble.Assembly.nodes

    def stuck(self):
        for number, item in enumerate(walk(self)):
            yield item
            if number == 100:
                print("assembling", flush=True)
                threading.Event().wait()  # killed here, mid-assembly

    assemble.Assembly.nodes = stuck

    @rt.function_node
    async def leaf(i: int) -> int:
        return i

    async def main() -> None:
        async with rt.Session(name="halfway", logging_setting="NONE") as session:
            for i in range(2000):
                await rt.call(leaf, i)
            while not session.journal.path.exists():  # a session longer than one flush
                await asyncio.sleep(0.01)
        rt.flush()

    asyncio.run(main())
    """
)


def test_a_crash_during_assembly_keeps_the_whole_run(states: Path) -> None:
    _kill_after_progress(ASSEMBLY_CHILD, states, expect="assembling")
    assert not (states / "halfway.json").exists()
    assert len(journals_in(states)) == 1
    listed = _cli(states, "runs")
    assert "halfway" in listed.stdout, listed.stderr
    state = rt.load_state("halfway")
    # the session had ended: every node is there, with the session's own status
    assert state["session"]["status"] == "completed"
    assert state["counts"] == {"nodes": 2000, "failed": 0}
    assert state["answer"] == 1999
    assert journals_in(states) == []


# A session that writes, says so once its journal holds `n` nodes, waits for a
# line on stdin, and finishes.
LIVE_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import railtracks as rt

    rt.configure(export=False)

    @rt.function_node
    async def leaf(i: int) -> int:
        return i

    def written(session) -> int:
        path = session.journal.path
        return path.read_bytes().count(b'["s","leaf"') if path.exists() else 0

    async def main() -> None:
        async with rt.Session(name="live", logging_setting="NONE") as session:
            for i in range(1000):
                await rt.call(leaf, i)
            while written(session) < 1000:  # the journal thread writes every 100 ms
                await asyncio.sleep(0.01)
            print("written", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            for i in range(1000, 1500):
                await rt.call(leaf, i)
        rt.flush()
        print("done", flush=True)

    asyncio.run(main())
    """
)

# Another process writing to the same directory: its state writer settles the
# directory when it first writes there; it settles it again, and says what it found.
OTHER_WRITER = textwrap.dedent(
    """
    import asyncio
    import railtracks as rt
    from railtracks._config import CONFIG
    from railtracks._runs.recover import settle

    async def main() -> None:
        async with rt.Session(name="other", logging_setting="NONE") as session:
            while not session.journal.path.exists():
                await asyncio.sleep(0.01)
    asyncio.run(main())
    print(settle(CONFIG.state_dir()))
    """
)


def test_a_live_journal_is_never_taken_for_an_abandoned_one(states: Path) -> None:
    with _start(LIVE_CHILD, states) as writer:
        assert writer.stdout is not None
        assert writer.stdin is not None
        assert writer.stdout.readline() == "written\n"
        (journal,) = journals_in(states)
        # readers and other writers while it is written: in this process and in others
        assert settle(states) == (0, 0)
        listed = _cli(states, "runs")  # listed as running (SPEC 13: never as crashed)
        assert listed.returncode == 0, listed.stderr
        (row,) = listed.stdout.splitlines()[1:]
        name, status, started, *rest = row.split()
        assert (name, status, rest) == ("live", "running", ["-"] * 5)
        assert started.endswith("Z")  # its session span's start, read from the journal
        with pytest.raises(rt.errors.StateNotFoundError):
            rt.load_state("live")
        other = run([PYTHON, "-c", OTHER_WRITER], states, env=_env(states))
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "(0, 0)"
        assert journal.exists()
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "done\n"
        assert writer.wait(timeout=120) == 0
    state = rt.load_state("live")
    assert state["session"]["status"] == "completed"
    assert state["counts"] == {"nodes": 1500, "failed": 0}
    assert journals_in(states) == []


def _journal(directory: Path, name: str, lines: list[bytes]) -> Path:
    path = directory / f".{name}.0b7f3c1e-5a53-4b38-9d0e-1c2d3e4f5a6b.journal"
    path.write_bytes(b"".join(lines))
    return path


def test_crafted_journals_are_one_line_each_and_never_a_traceback(states: Path) -> None:
    _kill_after_progress(CHILD, states, "async", "20")
    (real,) = journals_in(states)
    lines = real.read_bytes().splitlines(keepends=True)
    header = lines[0]
    at = next(i for i, line in enumerate(lines) if line.startswith(b'["s","leaf",'))
    crafted = {
        "notjson": [header, b"{{{\n"],
        "noheader": [b'["s"]\n'],
        "badheader": [b'["railtracks-journal",1,{"session_id":"x","state":"../../etc.json"}]\n'],
        # another run's journal (one whose state or a newer run's exists is only removed)
        "badfield": [
            header.replace(b'"doomed.json"', b'"other.json"'),
            *lines[1:at],
            lines[at].replace(b'["s","leaf",', b'["s",7,'),
            *lines[at + 1 :],
        ],
        "noorigin": [header, *[line for line in lines[1:] if not line.startswith(b'["o"')]],
        "binary": [header, b"\xff\xfe\x00\n"],
        "deep": [header, b"[" * 100_000 + b"\n"],
    }
    for name, content in crafted.items():
        _journal(states, name, content)
    truncated = _journal(states, "truncated", [*lines[:-1], lines[-1][:-7]])
    (states / ".link.0b7f3c1e-5a53-4b38-9d0e-1c2d3e4f5a6c.journal").symlink_to(real)

    listed = _cli(states, "runs")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    assert len(listed.stderr.splitlines()) <= len(crafted) + 1, listed.stderr
    assert "doomed" in listed.stdout  # the real one and the truncated one: the same run
    assert not truncated.exists()
    assert not real.exists()
    assert settle(states) == (0, len(crafted) + 1)  # left alone, counted
    assert not (states.parent / "etc.json").exists()


def test_a_large_session_reads_its_spans_and_state_back_from_the_saved_file(
    states: Path,
) -> None:
    from railtracks._runs.journal import KEPT_RECORDS

    @rt.function_node
    async def leaf(i: int) -> int:
        return i

    async def main() -> rt.Session:
        async with rt.Session(name="many", logging_setting="NONE") as session:
            for i in range(KEPT_RECORDS + 50):
                await rt.call(leaf, i)
        return session

    session = asyncio.run(main())
    assert session.state is not None
    assert session.state["counts"] == {"nodes": KEPT_RECORDS + 50, "failed": 0}
    assert session.state == rt.load_state("many")
    spans = session.spans
    assert len(spans) == KEPT_RECORDS + 51
    nodes = [s for s in spans if "railtracks.node.name" in (s.attributes or {})]
    assert {s.attributes["railtracks.node.output"] for s in nodes} == {  # type: ignore[index]
        str(i) for i in range(KEPT_RECORDS + 50)
    }
    assert journals_in(states) == []


def test_the_state_assembled_from_the_journal_is_the_state_built_in_memory(
    states: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from railtracks._runs import save

    # the session keeps every span (session.state is built from them); the saved
    # state is assembled from the journal as if it had kept too many
    monkeypatch.setattr(save, "kept_all", lambda journal, spans: False)

    @rt.function_node
    async def leaf(i: int) -> int:
        if i % 5 == 4:
            raise ValueError(f"leaf {i}")
        return i

    @rt.function_node
    def sync_leaf(i: int) -> list[int]:
        return [i, i]

    @rt.function_node
    async def branch(n: int) -> int:
        calls = [rt.call(leaf, i) for i in range(n)]
        done = await asyncio.gather(*calls, return_exceptions=True)
        await rt.call(sync_leaf, n)
        return sum(x for x in done if isinstance(x, int))

    async def main() -> rt.Session:
        async with rt.Session(name="same", logging_setting="NONE", context={"k": 1}) as session:
            for n in range(8):
                await rt.call(branch, n)
            while session.journal is None or not session.journal.path.exists():  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # a session longer than one journal write
        return session

    session = asyncio.run(main())
    assembled = rt.load_state("same")  # from the journal file
    assert assembled["counts"]["nodes"] > 40
    assert assembled == session.state  # built from the spans the session kept


# The same workflow run again with resume=True, after the kill (SPEC 14 on SPEC 13).
RESUMER = textwrap.dedent(
    """
    import asyncio
    import railtracks as rt

    rt.configure(export=False)

    @rt.function_node
    async def leaf(i: int) -> int:
        print("ran", i, flush=True)
        return i

    @rt.function_node
    async def hang(n: int) -> int:
        for i in range(n):
            await rt.call(leaf, i)
        return n

    async def main() -> None:
        async with rt.Session(name="doomed", logging_setting="NONE", resume=True) as session:
            await rt.call(hang, 5)
        rt.flush()
        state = session.state
        print("replayed", state["session"].get("replayed"), state["session"]["status"])

    asyncio.run(main())
    """
)


def test_a_killed_run_is_resumed_without_redoing_its_finished_calls(tmp_path: Path) -> None:
    _kill_after_progress(CHILD, tmp_path, "async", "5")
    resumed = subprocess.run(
        [PYTHON, "-c", RESUMER],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    # the five leaves ended before the kill: replayed; `hang` was running: it runs again
    assert resumed.stdout.splitlines() == ["replayed 5 completed"], resumed.stdout
