"""SPEC 6 and 7: saved states are untrusted input, and what railtracks writes is strict.

A crafted-files matrix across ``show``, ``runs``, ``export`` (the CLI as a
subprocess) and ``rt.load_state``: every damaged-but-plausible file is one
line and exit 2 (``runs`` lists it as unreadable and goes on), never a
traceback. The package's own validator is checked against ``jsonschema``.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import railtracks as rt
from railtracks._runs.schema import published_schema
from railtracks._runs.store import TEMP_PREFIX, clean_stale_temporaries, write_bytes_atomically

from .conftest import PYTHON, RAILTRACKS, run


def _good_state(tmp_path: Path) -> dict[str, Any]:
    rt.configure(console_stream=io.StringIO())

    @rt.function_node
    async def child(x: int) -> int:
        return x + 1

    @rt.function_node
    async def parent() -> int:
        return await rt.call(child, 1)

    @rt.session(name="good", context={"k": 1})
    async def flow() -> int:
        return await rt.call(parent)

    _, session = asyncio.run(flow())
    assert session.state_path is not None
    assert rt.flush()  # the file is complete once flush returns
    document: dict[str, Any] = json.loads(session.state_path.read_text())
    return document


def _deep_tree(state: dict[str, Any], depth: int) -> bytes:
    """A valid-looking state whose call tree is ``depth`` nodes deep (built as text:
    json.dumps itself could not nest that far)."""
    node = {k: v for k, v in state["nodes"][0].items() if k != "children"}
    opening = json.dumps(node)[:-1] + ',"children":['
    tree = opening * depth + "]}" * depth
    top = json.dumps({**state, "nodes": ["TREE"]}).replace('"TREE"', tree)
    return top.encode()


Mutation = Callable[[dict[str, Any]], Any]
MUTATIONS: dict[str, Mutation] = {
    "missing session": lambda s: s.pop("session"),
    "missing nodes": lambda s: s.pop("nodes"),
    "missing status": lambda s: s["session"].pop("status"),
    "null session": lambda s: s.update(session=None),
    "session is a string": lambda s: s.update(session="hello"),
    "nodes is an object": lambda s: s.update(nodes={"a": 1}),
    "children is a string": lambda s: s["nodes"][0].update(children="x"),
    "bad hex span id": lambda s: s["nodes"][0].update(span_id="zzzzzzzzzzzzzzzz"),
    "short trace id": lambda s: s["session"].update(trace_id="abc"),
    "unknown span kind": lambda s: s["nodes"][0].update(kind="SIDEWAYS"),
    "unknown status": lambda s: s["nodes"][0].update(status="exploded"),
    "error is a string": lambda s: s["nodes"][0].update(status="failed", error="boom"),
    "time is a string": lambda s: s["nodes"][0].update(start_time_unix_nano="yesterday"),
    "negative time": lambda s: s["nodes"][0].update(end_time_unix_nano=-5),
    "schema_version true": lambda s: s.update(schema_version=True),
    "schema_version 3": lambda s: s.update(schema_version=3),
    "schema_version string": lambda s: s.update(schema_version="2"),
    "version 1 with counts": lambda s: s.update(schema_version=1),
    "version 2 without counts": lambda s: s.pop("counts"),
    "node count not a number": lambda s: s["counts"].update(nodes="3"),
    "negative node count": lambda s: s["counts"].update(nodes=-1),
    "counts not an object": lambda s: s.update(counts=[3, 0]),
    "unknown count": lambda s: s["counts"].update(spans=4),
    "unknown field": lambda s: s["nodes"][0].update(surprise=1),
    "event without name": lambda s: s["nodes"][0].update(
        events=[{"time_unix_nano": 1, "attributes": {}}]
    ),
    "attribute is an object": lambda s: s["nodes"][0].update(attributes={"a": {"b": 1}}),
    "name is a number": lambda s: s["nodes"][0].update(name=7),
}
# Damage inside the call tree: `runs` reads only the head, so it lists these from
# it; show, export and load_state, which read the nodes, refuse them.
IN_THE_NODES: frozenset[str] = frozenset(
    {
        "children is a string",
        "bad hex span id",
        "unknown span kind",
        "unknown status",
        "error is a string",
        "time is a string",
        "negative time",
        "unknown field",
        "event without name",
        "attribute is an object",
        "name is a number",
        "deep call tree",
    }
)
RAW: dict[str, bytes] = {
    "empty file": b"",
    "not JSON": b"{",
    "not UTF-8": b'{"schema_version": 1, "x": "\xff\xfe"}',
    "NaN literal": b'{"schema_version": NaN}',
    "a JSON array": b"[1, 2, 3]",
    "deeply nested answer": b'{"schema_version":1,"answer":'
    + b"[" * 200_000
    + b"]" * 200_000
    + b"}",
}


def _crafted(tmp_path: Path) -> dict[str, bytes]:
    good = _good_state(tmp_path)
    files = dict(RAW)
    for kind, mutate in MUTATIONS.items():
        state = copy.deepcopy(good)
        mutate(state)
        files[kind] = json.dumps(state).encode()
    files["deep call tree"] = _deep_tree(good, 3000)
    return files


def test_the_written_state_validates_with_jsonschema_too(tmp_path: Path) -> None:
    jsonschema.Draft202012Validator(published_schema()).validate(_good_state(tmp_path))


# The CLI's entry point run once per argument list, in one process rather than one
# each (68 interpreter starts took 40 s on a loaded two-core machine): the exit code
# and everything written to file descriptor 2 during each call, as a shell sees them.
# tests/test_cli.py runs the console script itself as separate processes.
CLI_IN_ONE_PROCESS = """
import json, os, sys, tempfile
from railtracks._commands.cli import main

outcomes = []
for argv in json.loads(open(sys.argv[1]).read()):
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            try:
                code = main(argv)
            except SystemExit as exit:
                code = exit.code
            sys.stderr.flush()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        outcomes.append([code, captured.read().decode("utf-8", "replace")])
with open(sys.argv[2], "w") as out:
    json.dump(outcomes, out)
"""


def _cli_in_one_process(cwd: Path, argvs: list[list[str]]) -> list[tuple[int, str]]:
    asked, answered = cwd / "argvs.json", cwd / "outcomes.json"
    asked.write_text(json.dumps(argvs))
    done = run([PYTHON, "-c", CLI_IN_ONE_PROCESS, str(asked), str(answered)], cwd)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return [(int(code), str(stderr)) for code, stderr in json.loads(answered.read_text())]


def test_crafted_files_matrix(tmp_path: Path) -> None:
    files = _crafted(tmp_path)
    directory = tmp_path / ".railtracks"
    validator = jsonschema.Draft202012Validator(published_schema())
    for index, (kind, data) in enumerate(files.items()):
        path = directory / f"bad{index:02d}.json"
        path.write_bytes(data)
        # rt.load_state: a StateError, never another exception
        with pytest.raises(rt.errors.StateError):
            rt.load_state(path)
        if kind in MUTATIONS:
            # the reference validator agrees that the file is invalid
            assert not validator.is_valid(json.loads(data)), kind
    commands = [
        (kind, [command[0], f".railtracks/bad{index:02d}.json", *command[1:]])
        for index, kind in enumerate(files)
        for command in (["show"], ["export", "--endpoint", "http://127.0.0.1:9"])
    ]
    outcomes = _cli_in_one_process(tmp_path, [argv for _, argv in commands])
    for (kind, argv), (code, stderr) in zip(commands, outcomes, strict=True):
        assert code == 2, (kind, argv, stderr)
        assert len(stderr.splitlines()) == 1, (kind, stderr)
        assert stderr.startswith("railtracks: error: "), (kind, stderr)
        assert "Traceback" not in stderr
    listed = run([RAILTRACKS, "runs"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    unreadable = {line.split()[0] for line in lines if "unreadable" in line}
    expected = {f"bad{i:02d}" for i, kind in enumerate(files) if kind not in IN_THE_NODES}
    assert unreadable == expected
    listed_from_head = [line for line in lines if line.startswith("good ")]
    # the good state, and each damaged one its head still describes
    assert len(listed_from_head) == 1 + len(IN_THE_NODES)
    assert all("completed" in line for line in listed_from_head)


def test_the_good_state_still_shows(tmp_path: Path) -> None:
    _good_state(tmp_path)
    done = run([RAILTRACKS, "show", "good"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "parent" in done.stdout
    assert "child" in done.stdout


def test_strict_json_for_hostile_values(tmp_path: Path) -> None:
    rt.configure(console_stream=io.StringIO())
    surrogate = "name-\udcff"
    huge = 10**4400  # past the 4,300 digits Python prints, short enough in hex for the limit

    @rt.function_node
    async def node(x: Any) -> Any:
        return x

    @rt.session(
        name="strict",
        context={"nan": float("nan"), "inf": float("inf"), surrogate: surrogate, "huge": huge},
    )
    async def flow() -> Any:
        await rt.call(node, [float("-inf"), surrogate, 2**80])
        return {"nan": float("nan"), "huge": huge}

    result, session = asyncio.run(flow())
    assert result["huge"] is huge
    assert session.state_path is not None
    assert rt.flush(30)  # the state file is complete once flush returns
    raw = session.state_path.read_bytes()
    raw.decode("utf-8")  # strict UTF-8

    def reject(name: str) -> None:
        raise AssertionError(f"{name} in the state")

    document = json.loads(raw, parse_constant=reject)
    jsonschema.Draft202012Validator(published_schema()).validate(document)
    assert document["session"]["context"]["nan"] == "NaN"
    assert document["session"]["context"]["inf"] == "Infinity"
    assert document["session"]["context"]["name-\ufffd"] == "name-\ufffd"
    assert document["answer"]["nan"] == "NaN"
    assert document["answer"]["huge"].startswith("0x")
    assert document["nodes"][0]["input"]["x"] == ["-Infinity", "name-\ufffd", 2**80]
    assert rt.load_state("strict") == document


def test_stale_temporaries_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    directory = tmp_path / "states"
    directory.mkdir()
    stale = directory / f"{TEMP_PREFIX}crashed.tmp"
    stale.write_bytes(b"x" * 1000)
    legacy = directory / ".my-run.abcd1234.tmp"
    legacy.write_bytes(b"x")
    fresh = directory / f"{TEMP_PREFIX}writing.tmp"
    fresh.write_bytes(b"x")
    old = os.stat(stale).st_mtime - 60
    os.utime(stale, (old, old))
    os.utime(legacy, (old, old))
    unrelated = directory / "notes.tmp"
    unrelated.write_text("mine")
    os.utime(unrelated, (old, old))
    write_bytes_atomically(directory / "run.json", b"{}\n")
    assert not stale.exists()
    assert not legacy.exists()
    assert fresh.exists()  # may belong to a writer that has not locked it yet
    assert unrelated.exists()
    assert clean_stale_temporaries(directory) == 0


def test_a_locked_temporary_is_never_removed(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    live = tmp_path / f"{TEMP_PREFIX}live.tmp"
    live.write_bytes(b"x")
    old = os.stat(live).st_mtime - 60
    os.utime(live, (old, old))
    with live.open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert clean_stale_temporaries(tmp_path) == 0
        assert live.exists()


def test_write_is_fsynced_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    target = tmp_path / "new-dir" / "run.json"
    write_bytes_atomically(target, b"{}\n")
    assert len(synced) == 2  # the file before the rename, the directory after it
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["run.json"]
