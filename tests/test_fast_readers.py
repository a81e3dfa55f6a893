"""Fast reading of big states (SPEC 13), checking no less: the fast path agrees with jsonschema."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import railtracks as rt
from railtracks._commands import show_stream
from railtracks._commands.cli import main
from railtracks._runs import stream
from railtracks._runs.schema import SchemaError, published_schema, validate_state

from .conftest import RAILTRACKS

NODE: dict[str, Any] = {
    "name": "step",
    "span_id": "00f067aa0ba902b7",
    "parent_span_id": None,
    "status": "completed",
    "status_code": "UNSET",
    "kind": "INTERNAL",
    "start_time_unix_nano": 1,
    "end_time_unix_nano": 2,
    "duration_seconds": 1e-9,
    "context": {"user": "ada", "tags": ["a", 1, True, 2.5]},
    "error": None,
    "context_changes": [],
    "events": [],
    "attributes": {"railtracks.node.kind": "function", "n": 3},
    "input": {"i": 1},
    "output": None,
    "children": [],
}
# Every field of a plain node replaced by values of each JSON type (and near misses).
CANDIDATES: list[Any] = [
    None, True, 0, -1, 1.5, -0.5, "", "x", "00F067AA0BA902B7", "00f067aa0ba902b", "0" * 16,
    [], [1], [None], [[1]], {}, {"a": None}, {"a": {"b": 1}}, {"a": [1, None]},
    {"type": None, "message": None}, {"type": 1, "message": None}, {"type": "E"},
    "failed", "crashed", "unfinished", "running", "ERROR", "SERVER", "Internal",
]  # fmt: skip


def _document(node: Any) -> dict[str, Any]:
    session = {
        "identifier": "s", "name": None, "span_name": "session", "trace_id": "0" * 32,
        "timeout": None, "started_at": None, "ended_at": None,
        **{k: v for k, v in NODE.items() if k not in ("name", "input", "output", "children")},
        "resource": {}, "scope": None, "sampled": True,
    }  # fmt: skip
    return {
        "schema_version": 2,
        "counts": {"nodes": 1, "failed": 0},
        "session": session,
        "answer": None,
        "nodes": [{**NODE, "children": [node]}],
    }


def _ours(document: dict[str, Any]) -> bool:
    try:
        validate_state(document)
    except SchemaError:
        return False
    return True


def _reference(document: dict[str, Any]) -> bool:
    validator = jsonschema.Draft202012Validator(published_schema())
    return validator.is_valid(json.loads(json.dumps(document)))


def test_the_session_fixture_is_valid() -> None:
    document = _document(copy.deepcopy(NODE))
    assert _reference(document)
    assert _ours(document)


@pytest.mark.parametrize("field", [*NODE, "dropped", "foreign", "scope", "raw_fields", "extra"])
def test_every_field_of_a_node_is_checked_as_the_schema_says(field: str) -> None:
    for value in CANDIDATES:
        node = copy.deepcopy(NODE)
        node[field] = copy.deepcopy(value)
        document = _document(node)
        assert _ours(document) == _reference(document), (field, value)


@pytest.mark.parametrize("field", list(NODE))
def test_a_missing_field_is_refused(field: str) -> None:
    node = copy.deepcopy(NODE)
    del node[field]
    document = _document(node)
    assert not _ours(document)
    assert not _reference(document)


# -- railtracks show, streamed: the same lines as the whole-tree path, sooner


def _saved_tree(directory: Path) -> None:
    """A state with nesting, failures, a foreign span and gathered calls."""
    rt.configure(state_dir=directory)

    @rt.function_node
    async def leaf(i: int) -> int:
        if i % 7 == 3:
            raise ValueError(f"bad {i}")
        return i

    @rt.function_node
    async def branch(n: int) -> int:
        results = await asyncio.gather(
            *(rt.call(leaf, i) for i in range(n)), return_exceptions=True
        )
        return sum(r for r in results if isinstance(r, int))

    @rt.function_node
    async def root(n: int) -> int:
        total = 0
        for i in range(n):
            total += await rt.call(branch, i)
        return total

    async def main() -> None:
        async with rt.Session(name="tree", logging_setting="NONE", context={"user": "ada"}):
            await rt.call(root, 6)
            await rt.call(branch, 4)
            await rt.call(leaf, 1)

    asyncio.run(main())
    rt.flush()


@pytest.mark.parametrize(
    "options",
    [(), ("--depth", "0"), ("--depth", "1"), ("--depth", "2"), ("--limit", "5"), ("--all",),
     ("--depth", "2", "--limit", "3"), ("--limit", "0")],
)  # fmt: skip
def test_show_streams_the_same_lines_as_it_prints_from_the_whole_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
) -> None:  # fmt: skip
    _saved_tree(tmp_path)
    assert main(["show", "tree", *options]) == 0
    streamed = capsys.readouterr().out
    monkeypatch.setattr(show_stream, "streams", lambda narrowing: False)
    assert main(["show", "tree", *options]) == 0
    whole = capsys.readouterr().out
    assert streamed == whole
    assert "session tree" in streamed


def test_show_of_a_state_cut_short_prints_then_one_line_of_error(tmp_path: Path) -> None:
    _saved_tree(tmp_path)
    state = tmp_path / "tree.json"
    state.write_bytes(state.read_bytes()[:-400])
    done = subprocess.run(
        [RAILTRACKS, "show", "tree"], check=False, capture_output=True, text=True, timeout=120,
        env={**os.environ, "RAILTRACKS_STATE_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def _flat(nodes: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    stack: list[Any] = [None, *reversed(nodes)] if nodes else []
    while stack:
        node = stack.pop()
        if node is None:
            out.append(None)
            continue
        out.append({k: v for k, v in node.items() if k != "children"})
        stack.append(None)
        stack.extend(reversed(node["children"]))
    return out[:-1] if out else out


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 4096])
def test_the_stream_reads_every_value_whatever_the_block_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    _saved_tree(tmp_path)
    path = tmp_path / "tree.json"
    monkeypatch.setattr(stream, "_BLOCK", block)
    streamed = list(stream.stream_nodes(path))
    assert streamed == _flat(json.loads(path.read_text())["nodes"])
    assert len(streamed) > 40
