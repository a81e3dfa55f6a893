"""Hostile values never break a run, and attributes stay bounded (SPEC 3 values)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks._recording.encoding import REDACTED, ValueEncoder, to_json
from railtracks.testing import SpanCapture

pytestmark = pytest.mark.usefixtures("quiet")


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


@dataclasses.dataclass
class Order:
    sku: str
    qty: int


def test_hostile_values_run_and_stay_bounded(rt_spans: SpanCapture) -> None:
    huge = "x" * (5 * 1024 * 1024)
    odd_keys = {(1, 2): "tuple key", None: "none key", 3.5: "float key", frozenset(): BadRepr()}
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)

    @rt.function_node
    async def swallow(value: Any) -> Any:
        return value

    @rt.session(name="hostile", context={"blob": huge, "weird": odd_keys})
    async def flow() -> list[Any]:
        return [
            await rt.call(swallow, BadRepr()),
            await rt.call(swallow, huge),
            await rt.call(swallow, odd_keys),
            await rt.call(swallow, cyclic),
            await rt.call(swallow, Order("a", 2)),
        ]

    result, session = asyncio.run(flow())
    assert session.status == "completed"
    assert result[1] is huge
    for span in rt_spans.spans(session):
        for key, value in (span.attributes or {}).items():
            if key == attr.NODE_RECORDED_OUTPUT:  # the full output resume replays (SPEC 14)
                assert len(value) <= 16 * 1024 * 1024  # type: ignore[arg-type]
                continue
            assert not isinstance(value, str) or len(value) <= 4096, key
    outputs = [
        (s.attributes or {})[attr.NODE_OUTPUT]
        for s in sorted(rt_spans.named("swallow"), key=lambda s: s.start_time or 0)
    ]
    assert outputs[0] == '"<unrepresentable BadRepr>"'
    assert str(outputs[1]).endswith("...[truncated]")
    assert json.loads(str(outputs[2])) == {
        "(1, 2)": "tuple key",
        "None": "none key",
        "3.5": "float key",
        "frozenset()": "<unrepresentable BadRepr>",
    }
    assert json.loads(str(outputs[4])) == {"sku": "a", "qty": 2}
    state = session.state
    assert state is not None
    assert state["nodes"][1]["raw_fields"] == ["input", "output"]


def test_value_encoding_rules() -> None:
    encoder = ValueEncoder(limit=100)
    assert encoder.encode("text") == "text"
    assert encoder.encode(True) is True
    assert encoder.encode(7) == 7
    assert encoder.encode(2.5) == 2.5
    assert encoder.encode(["a", "b"]) == ("a", "b")
    assert encoder.encode((1, 2, 3)) == (1, 2, 3)
    assert encoder.encode([1, "mixed"]) == '[1,"mixed"]'
    assert encoder.encode([True, 1]) == "[true,1]", "bool and int are not one type"
    assert encoder.encode([]) == "[]"
    assert encoder.encode({"k": [1, {"n": None}]}) == '{"k":[1,{"n":null}]}'
    assert encoder.encode(None) == "null"
    long = encoder.encode("y" * 1000)
    assert isinstance(long, str)
    assert len(long) <= 100
    assert long.endswith("...[truncated]")
    assert encoder.encode(["z" * 80, "z" * 80]).__class__ is str


def test_to_json_never_raises() -> None:
    class Exploding:
        def __repr__(self) -> str:
            raise ValueError("no")

    deep: Any = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    assert to_json(Exploding()).endswith('.Exploding>"')
    assert to_json(Exploding()).startswith('"<unrepresentable ')
    assert to_json({1: 2}) == '{"1":2}'
    assert isinstance(to_json(deep), str)
    assert to_json({"s": {1, 2}}) in ('{"s":[1,2]}', '{"s":[2,1]}')


def test_redaction_rules() -> None:
    encoder = ValueEncoder()
    attributes, dropped = encoder.context_attributes(
        "p.", {"user_id": 1, "apiKey": "k", "MY_TOKEN": "t", "author": "me", "oauth": "o"}
    )
    assert dropped == 0
    # "author" is a name, not a credential (Logfire spares it too); "oauth" is one
    assert attributes == {
        "p.user_id": 1,
        "p.apiKey": REDACTED,
        "p.MY_TOKEN": REDACTED,
        "p.author": "me",
        "p.oauth": REDACTED,
    }


def test_value_limit_is_configurable(rt_spans: SpanCapture) -> None:
    rt.configure(value_limit=200)

    @rt.session(name="limited")
    async def flow() -> str:
        return await rt.call(lambda: "q" * 1000)

    asyncio.run(flow())
    (span,) = rt_spans.named("<lambda>")
    output = str((span.attributes or {})[attr.NODE_OUTPUT])
    assert len(output) <= 200
    assert "truncated" in output
    with pytest.raises(ValueError, match="value_limit"):
        rt.configure(value_limit=3)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"x": 1, "flag": True, "none": None}, '{"x":1,"flag":true,"none":null}'),
        ({"password": 1}, '{"password":"[REDACTED]"}'),
        ({"ghp_" + "a" * 36: 1}, '{"[REDACTED]":1}'),
        ({"x": 2**63}, '{"x":9223372036854775808}'),
        (2**70, "1180591620717411303424"),
    ],
)
def test_small_dicts_of_plain_keys_take_the_fast_path_to_the_same_json(
    value: object, expected: str
) -> None:
    encoder = ValueEncoder()
    assert encoder.json(value) == expected == encoder.cleaned_json(value)
