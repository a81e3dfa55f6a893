"""The state's head (schema_version 2): counts written ahead of the nodes, read without them.

``railtracks runs`` lists a state from its head alone; these tests check that
the head agrees with the tree, that the reader copes with where a read ends,
that a head which lies or a file cut short is listed as unreadable (the CLI as
a subprocess), and that version 1 files are still listed, shown and loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from opentelemetry import trace

import railtracks as rt
from railtracks._runs.head import MAX_HEAD_BYTES, read_head
from railtracks._runs.schema import published_schema
from railtracks._runs.state import iter_nodes
from railtracks._runs.store import encode_state
from railtracks.errors import StateError

from .conftest import RAILTRACKS, run

FIRST_READ = 64 << 10


@rt.function_node
async def leaf(x: int) -> int:
    if x == 2:
        raise ValueError("two is not allowed")
    return x


@rt.function_node
async def branch(n: int) -> int:
    total = 0
    with trace.get_tracer("app.manual").start_as_current_span("manual step"):
        for x in range(n):
            with contextlib.suppress(ValueError):
                total += await rt.call(leaf, x)
    return total


def _state(tmp_path: Path, calls: int = 4) -> Path:
    rt.configure(console_stream=io.StringIO(), state_dir=tmp_path / ".railtracks")

    @rt.session(name="tree")
    async def flow() -> int:
        return await rt.call(branch, calls)

    _, session = asyncio.run(flow())
    assert session.state_path is not None
    return session.state_path


def _runs(tmp_path: Path) -> dict[str, list[str]]:
    done = run([RAILTRACKS, "runs"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    _, *rows = done.stdout.splitlines()
    return {row.split()[0]: row.split() for row in rows}


def test_the_head_counts_what_the_tree_holds(tmp_path: Path) -> None:
    path = _state(tmp_path)
    document = rt.load_state(path)
    nodes = [node for _, node in iter_nodes(document["nodes"])]
    assert any(node.get("foreign") for node in nodes), "a foreign span is a node of the state"
    failed = sum(node["status"] != "completed" for node in nodes)
    assert document["schema_version"] == 2
    assert document["counts"] == {"nodes": len(nodes), "failed": failed}
    assert failed == 1
    raw = path.read_bytes()
    assert raw.index(b'"counts"') < raw.index(b'"session"') < raw.index(b'"nodes":[')
    head = read_head(path)
    assert head is not None
    assert (head.nodes, head.failed) == (len(nodes), failed)
    assert (head.session, head.answer) == (document["session"], document["answer"])
    jsonschema.Draft202012Validator(published_schema()).validate(document)


def _as_version_1(document: dict[str, Any]) -> dict[str, Any]:
    """What railtracks wrote before the counts: the same document without them."""
    old = {key: value for key, value in document.items() if key != "counts"}
    old["schema_version"] = 1
    return old


def test_a_version_1_state_is_still_listed_shown_and_loaded(tmp_path: Path) -> None:
    path = _state(tmp_path)
    document = rt.load_state(path)
    old = _as_version_1(document)
    old["session"] = {**old["session"], "name": "legacy"}
    jsonschema.Draft202012Validator(published_schema()).validate(old)
    legacy = path.with_name("legacy.json")
    legacy.write_bytes(encode_state(old))
    assert read_head(legacy) is None  # no counts: read it whole
    assert rt.load_state(legacy) == old
    rows = _runs(tmp_path)
    assert rows["tree"][4:6] == rows["legacy"][4:6] == [str(document["counts"]["nodes"]), "1"]
    assert rows["tree"][1] == rows["legacy"][1] == "completed"
    shown = run([RAILTRACKS, "show", "legacy"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == run([RAILTRACKS, "show", "tree"], tmp_path).stdout
    assert len(shown.stdout.splitlines()) == 1 + document["counts"]["nodes"] + 1


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / f"{name}.json"
    path.write_bytes(data)
    return path


def test_heads_that_lie_and_files_cut_short_are_unreadable(tmp_path: Path) -> None:
    path = _state(tmp_path)
    directory = path.parent
    document = rt.load_state(path)
    good = encode_state(document)
    head_end = good.index(b'"nodes":[')

    def variant(**changes: Any) -> bytes:
        return encode_state({**document, **changes})

    bad = {
        "cut-in-nodes": good[: head_end + 200],
        "cut-in-head": good[: head_end // 2],
        "count-a-string": variant(counts={"nodes": "many", "failed": 0}),
        "count-a-float": variant(counts={"nodes": 7.5, "failed": 0}),
        "count-true": variant(counts={"nodes": True, "failed": 0}),
        "more-failed": variant(counts={"nodes": 1, "failed": 2}),
        "counts-twice": good.replace(b'"counts":', b'"counts":{"nodes":1,"failed":0},"counts":', 1),
        "unknown-head-field": good.replace(b'"counts":', b'"surprise":1,"counts":', 1),
        "no-nodes": good[:head_end] + b'"other":[]}',
        "nodes-not-a-list": good[:head_end] + b'"nodes":{}}',
        "session-broken": variant(session={**document["session"], "trace_id": "x"}),
        "nan-in-answer": good.replace(b'"answer":', b'"answer":NaN,"x":', 1),
        "not-utf8": good.replace(b'"tree"', b'"tr\xffee"', 1),
        "a-list": b"[" + good + b"]",
        "empty": b"",
        "a-fifo": b"",
    }
    for name, data in bad.items():
        _write(directory, name, data)
    os.unlink(directory / "a-fifo.json")
    os.mkfifo(directory / "a-fifo.json")  # must not hang the listing
    huge = variant(answer="x" * (MAX_HEAD_BYTES + 10))
    _write(directory, "huge-head", huge)
    rows = _runs(tmp_path)
    for name in [*bad, "huge-head"]:
        assert rows[name][1:] == ["unreadable", "-", "-", "-", "-", "-", "-"], name
        with pytest.raises(StateError):
            read_head(directory / f"{name}.json")
    assert rows["tree"][1] == "completed"
    for name in bad:
        # a FIFO is no state file; a key given twice is read by JSON's rule (the last
        # one wins) when the whole file is parsed, but is refused in a head
        if name in ("a-fifo", "counts-twice"):
            continue
        done = run([RAILTRACKS, "show", name], tmp_path)
        assert done.returncode == 2, (name, done.stderr)
        assert len(done.stderr.splitlines()) == 1, done.stderr
    # a head over the bound is not listed, but the state is valid: show reads it whole
    shown = run([RAILTRACKS, "show", "huge-head"], tmp_path)
    assert shown.returncode == 0, shown.stderr


def test_counts_that_disagree_with_the_tree(tmp_path: Path) -> None:
    """runs trusts the head (it never reads the nodes); everything that reads them refuses."""
    path = _state(tmp_path)
    document = rt.load_state(path)
    lying = path.with_name("lying.json")
    session = {**document["session"], "name": "lying"}
    lying.write_bytes(
        encode_state({**document, "counts": {"nodes": 999, "failed": 0}, "session": session})
    )
    assert _runs(tmp_path)["lying"][4:6] == ["999", "0"]
    with pytest.raises(StateError, match="its counts say 999 nodes"):
        rt.load_state(lying)
    done = run([RAILTRACKS, "show", "lying"], tmp_path)
    assert done.returncode == 2
    assert "its counts say 999 nodes (0 failed), its call tree holds" in done.stderr


def _padded(document: dict[str, Any], where: int, fill: str) -> bytes:
    """The document with a padded answer ahead of the counts, placed so that byte
    ``where`` falls inside the node count (``"number"``) or between the two bytes
    of a character (``"utf8"``)."""

    def encoded(pad: int) -> bytes:
        answer = "a" * pad + ("é" if fill == "utf8" else "")
        rest = {k: v for k, v in document.items() if k not in ("schema_version", "answer")}
        return encode_state({"schema_version": 2, "answer": answer, **rest})

    unpadded = encoded(0)
    if fill == "utf8":
        pad = where - 1 - unpadded.index(b"\xc3")
    else:
        pad = where - 1 - (unpadded.index(b'"counts":{"nodes":') + len(b'"counts":{"nodes":'))
    data = encoded(pad)
    assert data[where - 1 : where + 1] == (
        "é".encode() if fill == "utf8" else data[where - 1 : where + 1]
    )
    return data


@pytest.mark.parametrize("fill", ["number", "utf8"])
def test_a_read_that_ends_inside_a_member(tmp_path: Path, fill: str) -> None:
    path = _state(tmp_path, calls=12)
    document = rt.load_state(path)
    assert document["counts"]["nodes"] >= 10  # two digits: the read ends between them
    data = _padded(document, FIRST_READ, fill)
    target = _write(path.parent, "padded", data)
    head = read_head(target)
    assert head is not None
    assert head.nodes == document["counts"]["nodes"] >= 10


def _demo(tmp_path: Path) -> None:
    done = run([RAILTRACKS, "demo"], tmp_path)
    assert done.returncode == 0, done.stderr


def _show(tmp_path: Path, *args: str) -> list[str]:
    done = run([RAILTRACKS, "show", "railtracks-demo", *args], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("session railtracks-demo  completed  ")
    assert done.stdout.splitlines()[-1].startswith("answer: ")
    lines = done.stdout.splitlines()[1:-1]  # after the session line, before the answer
    return [line for line in lines if not line.startswith(("  context: ", "  final context: "))]


def test_show_narrowed(tmp_path: Path) -> None:
    _demo(tmp_path)
    everything = _show(tmp_path)
    assert len(everything) == 22
    # --failed: the failed node and its ancestors, nothing else
    assert [line.split()[:2] for line in _show(tmp_path, "--failed")] == [
        ["checkout", "completed"],
        ["reserve", "failed"],
    ]
    # --depth: levels below the session; what is cut is counted
    top = _show(tmp_path, "--depth", "1")
    assert [line.split()[0] for line in top] == ["price_line"] * 3 + ["checkout"]
    assert all(not line.startswith("    ") for line in top)
    assert top[-1].endswith("[+12 below]")
    assert len(_show(tmp_path, "--depth", "2")) == 4 + 3 * 2 + 3
    assert _show(tmp_path, "--depth", "0") == ["  [nodes below: --depth 1 or more to print them]"]
    # --node NAME: every node of that name, with its subtree and its ancestors
    reserves = _show(tmp_path, "--node", "reserve")
    assert reserves[0].split()[0] == "checkout"
    assert [line.split()[0] for line in reserves].count("reserve") == 3
    assert len(reserves) == 1 + 3 * 4
    assert len(_show(tmp_path, "--node", "reserve", "--depth", "0")) == 4
    # --node SPAN_ID: exactly that subtree
    state = rt.load_state(tmp_path / ".railtracks" / "railtracks-demo.json")
    checkout = state["nodes"][-1]
    one = _show(tmp_path, "--node", checkout["span_id"].upper(), "--depth", "1")
    assert one[0].startswith("  checkout  completed")
    assert len(one) == 1 + len(checkout["children"])
    # combined: the failed nodes under one node
    assert len(_show(tmp_path, "--node", checkout["span_id"], "--failed")) == 2
    # --limit N, and the note that says how many were left out
    limited = _show(tmp_path, "--limit", "3")
    assert limited[:3] == everything[:3]
    assert limited[3] == "  ... 19 more nodes: --limit N or --all to print them"
    assert _show(tmp_path, "--all") == everything


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--node", "nope"), "no node 'nope' in this state"),
        (("--depth", "-1"), "must be 0 or more"),
        (("--depth", "two"), "not a whole number"),
        (("--limit", "5", "--all"), "not allowed with argument"),
    ],
)
def test_show_narrowing_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    _demo(tmp_path)
    done = run([RAILTRACKS, "show", "railtracks-demo", *args], tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert message in done.stderr


def test_a_large_state_prints_a_page_unless_asked(tmp_path: Path) -> None:
    rt.configure(console_stream=io.StringIO(), state_dir=tmp_path / ".railtracks")

    @rt.session(name="wide")
    async def flow() -> None:
        for i in range(1500):
            with contextlib.suppress(ValueError):
                await rt.call(leaf, i)

    asyncio.run(flow())
    done = run([RAILTRACKS, "show", "wide"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 + 1000 + 1
    assert lines[-1] == "  ... 500 more nodes: --limit N or --all to print them"
    assert len(run([RAILTRACKS, "show", "wide", "--all"], tmp_path).stdout.splitlines()) == 1501
    failed = run([RAILTRACKS, "show", "wide", "--failed"], tmp_path).stdout.splitlines()
    assert [line.split()[:2] for line in failed[1:]] == [["leaf", "failed"]]
    assert _runs(tmp_path)["wide"][4:6] == ["1500", "1"]
