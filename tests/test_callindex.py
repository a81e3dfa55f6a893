"""The replay index of a recorded run, and rebuild plans made once per annotation (SPEC 14)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from railtracks._recording import attributes as attr
from railtracks._reuse.callindex import CallIndex
from railtracks._reuse.rebuild import Unrebuildable, rebuild, rebuilder


@dataclasses.dataclass
class Point:
    x: int
    label: str = ""


@dataclasses.dataclass
class Tree:
    value: int
    children: list[Tree]


def _change(at: int, operation: str, recorded: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {attr.CONTEXT_CHANGE_OPERATION: operation}
    if recorded is not None:
        attributes[attr.CONTEXT_CHANGE_RECORDED] = recorded
    return {"time_unix_nano": at, "attributes": attributes}


def _node(name: str, start: int, *children: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "status": "completed",
        "span_id": f"{start:016x}",
        "start_time_unix_nano": start,
        "args_digest": f"digest-{name}-{start}",
        "input": {"n": start},
        "attributes": {},
        "children": list(children),
        **fields,
    }


def test_a_call_is_unreplayable_when_a_change_under_it_was_not_recorded() -> None:
    state = {
        "nodes": [
            _node(
                "plan",
                1,
                _node("fetch", 2, context_changes=[_change(20, "update", '{"a":1}')]),
                _node("fetch", 3, _node("leaf", 4, context_changes=[_change(40, "update", None)])),
                _node("other", 5, context_changes=[_change(15, "delete", '["b"]')]),
            ),
            _node("after", 6),
        ]
    }
    calls = CallIndex(state, keep_inputs=False).calls
    assert calls[(("plan", 0),)].reason is not None
    assert calls[(("plan", 0), ("fetch", 1))].reason is not None
    assert calls[(("plan", 0), ("fetch", 1), ("leaf", 0))].reason is not None
    assert calls[(("plan", 0), ("fetch", 0))].reason is None
    assert calls[(("after", 0),)].reason is None
    assert calls[(("after", 0),)].span_id == 6
    assert calls[(("after", 0),)].input is None  # it has a digest: its input is not kept
    assert CallIndex(state, keep_inputs=True).calls[(("after", 0),)].input == {"n": 6}


def test_the_changes_of_a_subtree_come_in_time_order() -> None:
    state = {
        "nodes": [
            _node(
                "plan",
                1,
                _node("fetch", 2, context_changes=[_change(20, "update", '{"a":1}')]),
                _node("other", 3, context_changes=[_change(15, "delete", '["b"]')]),
                context_changes=[_change(30, "update", '{"c":3}')],
            ),
            _node("after", 4, context_changes=[_change(5, "update", '{"d":4}')]),
        ]
    }
    index = CallIndex(state, keep_inputs=False)
    plan = index.calls[(("plan", 0),)]
    assert [c[1:] for c in index.subtree_changes(plan)] == [
        ("delete", '["b"]'),
        ("update", '{"a":1}'),
        ("update", '{"c":3}'),
    ]
    assert index.subtree_changes(index.calls[(("plan", 0), ("fetch", 0))]) == [
        (20, "update", '{"a":1}')
    ]
    assert [c[1:] for c in index.subtree_changes(index.calls[(("after", 0),)])] == [
        ("update", '{"d":4}')
    ]


def test_a_malformed_record_makes_a_call_run_live_not_raise() -> None:
    state = {"nodes": [{"name": "x", "children": "no", "context_changes": [1], "status": 3}, 7]}
    calls = CallIndex(state, keep_inputs=False).calls
    recorded = calls[(("x", 0),)]
    assert not recorded.completed
    assert recorded.reason is not None
    assert recorded.span_id == 0


def test_rebuild_says_where_inside_the_value_it_failed() -> None:
    with pytest.raises(Unrebuildable, match=r"at \$\[1\]\.x: expected int, found JSON str"):
        rebuild('[{"x": 1}, {"x": "no"}]', list[Point])
    with pytest.raises(Unrebuildable, match=r"at \$\.b\[0\]: expected int"):
        rebuild('{"a": [1], "b": ["x"]}', dict[str, list[int]])
    with pytest.raises(Unrebuildable, match=r"at \$<key>: expected int"):
        rebuild('{"1.5": 2}', dict[int, int])
    assert rebuild('[{"x": 1}, {"x": 2, "label": "b"}]', list[Point]) == [
        Point(1),
        Point(2, "b"),
    ]


def test_a_dataclass_that_holds_itself_is_rebuilt_and_bounded() -> None:
    value = rebuild('{"value": 1, "children": [{"value": 2, "children": []}]}', Tree)
    assert value == Tree(1, [Tree(2, [])])
    deep: Any = {"value": 0, "children": []}
    for _ in range(200):
        deep = {"value": 0, "children": [deep]}
    with pytest.raises(Unrebuildable, match="nested too deeply"):
        rebuilder(Tree)(deep)


def test_a_rebuilder_returns_fresh_containers() -> None:
    recorded = [{"x": 1}]
    first = rebuilder(list[dict[str, Any]])(recorded)
    assert first == recorded
    assert first is not recorded
