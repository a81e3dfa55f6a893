"""``railtracks diff`` as a user meets it: two real runs, the command in a subprocess (SPEC 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from railtracks._reuse.callkey import calls_by_place, place_text
from railtracks._reuse.rundiff import diff_states
from railtracks._reuse.valuediff import value_diff

from .conftest import RAILTRACKS, run
from .diffruns import record_run


def _record(tmp_path: Path, mode: str, name: str) -> None:
    record_run(tmp_path, mode, name)


def _diff(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    done = run([RAILTRACKS, "diff", *args], tmp_path)
    return done.returncode, done.stdout, done.stderr


def test_same_runs_exit_0(tmp_path: Path) -> None:
    _record(tmp_path, "same", "first")
    _record(tmp_path, "same", "second")
    code, out, err = _diff(tmp_path, "first", "second")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "same: 4 calls aligned, no difference"


@pytest.mark.parametrize(
    ("mode", "line", "kind"),
    [
        ("added", "+ added      plan/extra  completed", "added"),
        ("fail", "! status     plan/fetch[2]  completed -> failed (ValueError: boom", "status"),
        ("output", "~ output     plan/fetch[3]  2 difference(s)", "output"),
        ("args", "~ arguments  plan  called with other arguments", "arguments"),
    ],
)
def test_each_kind_of_difference_exit_1(tmp_path: Path, mode: str, line: str, kind: str) -> None:
    _record(tmp_path, "same", "before")
    _record(tmp_path, mode, "after")
    code, out, err = _diff(tmp_path, "before", "after")
    assert (code, err) == (1, "")
    assert any(shown.startswith(line) for shown in out.splitlines()), out
    assert "\x1b" not in out  # the error message's escape is shown, never obeyed
    code, text, _ = _diff(tmp_path, "before", "after", "--json")
    assert code == 1
    result = json.loads(text)
    assert result["same"] is False
    assert result["counts"][kind] >= 1
    assert result["a"]["name"] == "before"
    assert result["b"]["calls"] >= 4


def test_failed_output_and_json_detail(tmp_path: Path) -> None:
    _record(tmp_path, "same", "before")
    _record(tmp_path, "fail", "after")
    code, out, _ = _diff(tmp_path, ".railtracks/before.json", ".railtracks/after.json")
    assert code == 1
    assert "boom \\x1b[2J" in out
    result = json.loads(_diff(tmp_path, "before", "after", "--json")[1])
    status = next(c for c in result["changes"] if c["kind"] == "status")
    assert status["place"] == [["plan", 0], ["fetch", 1]]
    assert status["where"] == "plan/fetch[2]"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no saved state 'missing'"),
        ("{", "not JSON"),
        ('{"schema_version": 2, "nodes": []}', "not a valid railtracks state"),
    ],
)
def test_bad_input_exit_2_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    _record(tmp_path, "same", "good")
    if content is not None:
        (tmp_path / ".railtracks" / "missing.json").write_text(content)
    for args in (("good", "missing"), ("missing", "good")):
        code, out, err = _diff(tmp_path, *args)
        assert (code, out) == (2, "")
        assert len(err.splitlines()) == 1
        assert message in err, err
    code, _, err = _diff(tmp_path, "good")
    assert code == 2
    assert len(err.splitlines()) == 1


def _node(name: str, start: int, children: list[dict] | None = None, **extra: object) -> dict:
    return {"name": name, "span_id": f"{start:016x}", "start_time_unix_nano": start,
            "children": children or [], **extra}  # fmt: skip


def test_places_count_same_named_calls_in_start_order_across_foreign_spans() -> None:
    # fetch #2 starts inside an HTTP span that began before fetch #1: start order decides
    tree = [
        _node("plan", 1, [
            _node("GET", 2, [_node("fetch", 9)], foreign=True),
            _node("fetch", 5),
            _node("GET", 6, foreign=True),
        ]),
    ]  # fmt: skip
    places = {place_text(p): call.record["span_id"] for p, call in calls_by_place(tree).items()}
    assert places == {
        "plan": f"{1:016x}",
        "plan/~GET": f"{2:016x}",
        "plan/~GET[2]": f"{6:016x}",
        "plan/fetch": f"{5:016x}",
        "plan/fetch[2]": f"{9:016x}",
    }


def test_value_diff_is_short_and_bounded() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    lines, found = value_diff(
        {"a": 1, "b": [1, 2], "s": "x" * 500, "d": deep}, {"a": 2, "b": [1], "s": "y", "d": 2}
    )
    assert found == 4
    assert lines[0] == "$.a: 1 -> 2"
    assert lines[1] == "$.b: 2 items -> 1 items"
    assert all(len(line) < 160 for line in lines)


def _state(status: str, nodes: list[dict]) -> dict:
    return {"session": {"name": "s", "status": status, "trace_id": "0" * 32}, "answer": None,
            "nodes": nodes}  # fmt: skip


def _call(name: str, start: int, **fields: object) -> dict:
    record = {"status": "completed", "input": {"x": 1}, "output": 1, "error": None,
              "duration_seconds": 0.01}  # fmt: skip
    record.update(fields)
    return _node(name, start, **record)


def test_failed_differently_timing_and_session_status() -> None:
    error_a = {"type": "ValueError", "message": "ValueError: a"}
    error_b = {"type": "KeyError", "message": "KeyError: b"}
    before = _state("completed", [
        _call("ask", 1, status="failed", error=error_a, output=None),
        _call("slow", 2, duration_seconds=0.1),
        _call("same", 3, args_digest="d1", input={"x": 1}),
    ])  # fmt: skip
    after = _state("failed", [
        _call("ask", 1, status="failed", error=error_b, output=None),
        _call("slow", 2, duration_seconds=0.4),
        _call("same", 3, args_digest="d1", input={"x": 2}),  # digests decide when both have one
    ])  # fmt: skip
    result = diff_states(before, after)
    kinds = [(c["kind"], c["where"]) for c in result["changes"]]
    assert kinds == [("error", "ask")]
    assert "ValueError: a" in result["changes"][0]["detail"]
    assert result["session"] == [{"kind": "status", "detail": "completed -> failed"}]
    assert [(t["where"], t["before_seconds"], t["after_seconds"]) for t in result["timing"]] == [
        ("slow", 0.1, 0.4)
    ]
    # timing alone never makes two runs different
    timing_only = diff_states(before, _state("completed", [before["nodes"][0], after["nodes"][1],
                                                           before["nodes"][2]]))  # fmt: skip
    assert timing_only["same"] is True
    assert timing_only["timing_changes"] == 1


def test_a_missing_subtree_is_listed_once_with_its_size() -> None:
    before = _state(
        "completed", [_call("plan", 1, children=[_call("fetch", 2), _call("fetch", 3)])]
    )
    after = _state("completed", [])
    result = diff_states(before, after)
    assert [(c["kind"], c["where"], c["calls"]) for c in result["changes"]] == [
        ("removed", "plan", 3)
    ]
    assert result["counts"]["removed"] == 1
