"""Recorded outputs: written in full, rebuilt to the return annotation, read as hostile input."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, TypedDict

import pydantic
import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks._recording.scrub import Scrubber
from railtracks._reuse.rebuild import Unrebuildable, rebuild
from railtracks._reuse.recorded import Unrecordable, arguments_digest, record_json
from railtracks.testing import SpanCapture

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    RAN.clear()


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: int
    label: str


class Price(pydantic.BaseModel):
    amount: Decimal
    currency: str


@dataclasses.dataclass(frozen=True)
class Order:
    id: uuid.UUID
    placed: dt.datetime
    colour: Colour
    total: Decimal
    points: list[Point]
    prices: dict[str, Price]
    size: tuple[int, int]
    due: dt.date | None = None


ORDER = Order(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    placed=dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
    colour=Colour.BLUE,
    total=Decimal("10.25"),
    points=[{"x": 1, "label": "a"}],
    prices={"eur": Price(amount=Decimal("3.10"), currency="EUR")},
    size=(2, 3),
    due=dt.date(2024, 6, 1),
)


@rt.function_node
async def make_order() -> Order:
    RAN.append("make_order")
    return ORDER


@rt.function_node
async def colours() -> list[Colour]:
    RAN.append("colours")
    return [Colour.RED, Colour.BLUE]


@rt.function_node
async def price() -> Price:
    RAN.append("price")
    return Price(amount=Decimal("1.5"), currency="USD")


@rt.function_node
async def when() -> tuple[dt.datetime, uuid.UUID, Decimal]:
    RAN.append("when")
    return (ORDER.placed, ORDER.id, Decimal("0.1"))


@rt.function_node
async def big() -> str:
    RAN.append("big")
    return "x" * 20_000  # far past the span value limit: recorded in full apart


async def every_kind() -> list[Any]:
    return [await rt.call(n) for n in (make_order, colours, price, when, big)]


def test_every_listed_kind_is_rebuilt_to_its_type(rt_spans: SpanCapture) -> None:
    async def run(**options: Any) -> list[Any]:
        async with rt.Session(name="kinds", **options):
            return await every_kind()

    live = asyncio.run(run())
    RAN.clear()
    replayed = asyncio.run(run(resume=True))
    assert RAN == []
    assert replayed == live
    assert type(replayed[0]) is Order
    assert type(replayed[0].prices["eur"]) is Price
    assert replayed[0].colour is Colour.BLUE
    assert type(replayed[0].size) is tuple
    assert replayed[1] == [Colour.RED, Colour.BLUE]
    assert len(replayed[4]) == 20_000


def test_outputs_shown_in_full_are_not_recorded_twice(rt_spans: SpanCapture) -> None:
    @rt.function_node
    async def plain() -> dict[str, list[int]]:
        return {"a": [1, 2]}

    async def run() -> None:
        async with rt.Session(name="plain"):
            await rt.call(plain)
            await rt.call(big)

    asyncio.run(run())
    assert rt.flush(30)
    small, large = json.loads((rt_spans.state_dir / "plain.json").read_text())["nodes"]
    assert attr.NODE_RECORDED_OUTPUT not in small["attributes"]
    assert small["output"] == {"a": [1, 2]}
    assert large["raw_fields"] == ["output"]  # cut at the value limit...
    assert json.loads(large["attributes"][attr.NODE_RECORDED_OUTPUT]) == "x" * 20_000  # ...kept


def test_an_output_past_the_bound_is_not_replayable(
    rt_spans: SpanCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAILTRACKS_MAX_RECORDED_BYTES", "10000")

    async def run(**options: Any) -> str:
        async with rt.Session(name="bounded", **options):
            return await rt.call(big)

    asyncio.run(run())
    assert rt.flush(30)
    node = json.loads((rt_spans.state_dir / "bounded.json").read_text())["nodes"][0]
    assert node["attributes"][attr.NODE_UNREPLAYABLE] == "too large"
    RAN.clear()
    assert len(asyncio.run(run(resume=True))) == 20_000
    assert RAN == ["big"]


def test_an_output_that_cannot_be_rebuilt_runs_live_with_one_warning(
    rt_spans: SpanCapture,
) -> None:
    @rt.function_node(name="count")
    async def as_int() -> int:
        RAN.append("int")
        return 3

    @rt.function_node(name="count")
    async def as_colour() -> Colour:  # the same node now says it returns a Colour
        RAN.append("colour")
        return Colour.RED

    async def run(node: Any, **options: Any) -> Any:
        async with rt.Session(name="count", **options):
            return [await rt.call(node), await rt.call(node)]

    asyncio.run(run(as_int))
    rt.set_config(logging_setting="REGULAR")
    assert asyncio.run(run(as_colour, resume=True)) == [Colour.RED, Colour.RED]
    assert RAN == ["int", "int", "colour", "colour"]
    warnings = [ln for ln in rt_spans.console_output().splitlines() if "ran live" in ln]
    assert len(warnings) == 1
    assert "2 recorded call(s) ran live" in warnings[0]
    assert "could not be rebuilt" in warnings[0]


@pytest.mark.parametrize(
    ("text", "annotation", "why"),
    [
        ('{"x": 1}', int, "expected int"),
        ('"not-a-uuid"', uuid.UUID, "is not a UUID"),
        ('"2024-13-45"', dt.datetime, "is not a datetime"),
        ('"green"', Colour, "is not a Colour"),
        ('{"amount": "x", "currency": 1}', Price, "not a valid Price"),
        ('{"x": 1}', Point, "'label' is missing"),
        ('{"id": 1}', Order, "expected UUID"),
        ("[1, 2, 3]", tuple[int, int], "expected 2 items"),
        ("NaN", float, "not JSON"),
        ("[" * 100_000 + "]" * 100_000, list[Any], "nested too deeply"),
        ('"\\u001b[2J"', int, "expected int"),
        ("{", dict[str, int], "not JSON"),
    ],
)
def test_hostile_recorded_values_are_refused_in_one_line(
    text: str, annotation: Any, why: str
) -> None:
    with pytest.raises(Unrebuildable, match=why) as caught:
        rebuild(text, annotation)
    assert "\n" not in str(caught.value)


def test_a_crafted_state_makes_calls_run_live_never_a_traceback(
    rt_spans: SpanCapture, tmp_path: Path
) -> None:
    async def run(**options: Any) -> Any:
        async with rt.Session(name="crafted", **options):
            return await rt.call(make_order)

    asyncio.run(run())
    assert rt.flush(30)
    path = rt_spans.state_dir / "crafted.json"
    state = json.loads(path.read_text())
    node = state["nodes"][0]
    node["attributes"][attr.NODE_RECORDED_OUTPUT] = '{"__class__": "os.system", "id": "rm -rf"}'
    crafted = tmp_path / "crafted-copy.json"
    crafted.write_text(json.dumps(state))
    RAN.clear()
    assert asyncio.run(run(resume=crafted)) == ORDER
    assert RAN == ["make_order"]


def test_record_json_refuses_secrets_and_unknown_objects() -> None:
    scrubber = Scrubber()
    with pytest.raises(Unrecordable, match="redacted"):
        record_json({"password": "hunter2"}, scrubber)
    with pytest.raises(Unrecordable, match="redacted"):
        record_json(["Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"], scrubber)
    with pytest.raises(Unrecordable, match="unencodable: object"):
        record_json(object(), scrubber)
    with pytest.raises(Unrecordable, match="too large"):
        record_json("y" * 100, scrubber, limit=50)
    assert record_json({1: Colour.RED, "s": {3}}, scrubber) == '{"1":"red","s":[3]}'


def test_the_arguments_digest_is_canonical_and_keeps_secrets_out() -> None:
    scrubber = Scrubber()
    one = arguments_digest({"b": 1, "a": [Colour.RED]}, scrubber)
    assert one == arguments_digest({"a": ["red"], "b": 1}, scrubber)  # sorted keys, values
    assert len(one) == 64
    assert arguments_digest({"password": "a"}, scrubber) == arguments_digest(
        {"password": "b"}, scrubber
    )
    assert arguments_digest({"client": object()}, scrubber) == arguments_digest(
        {"client": object()}, scrubber
    )
