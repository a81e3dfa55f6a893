"""Model calls' tokens and cost, summed per node and per session (SPEC 15)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import railtracks as rt
from railtracks import errors
from railtracks._recording.usage_rollup import ROLLUP
from railtracks._runs.journal import KEPT_RECORDS
from railtracks._runs.schema import validate_state
from railtracks.testing import capture_spans

from .conftest import metric_points

TRACER = trace.get_tracer("tests.fake_llm")


def _genai_span(name: str, attributes: dict[str, Any]) -> None:
    with TRACER.start_as_current_span(name) as span:
        span.set_attributes(attributes)


@rt.function_node
async def recorded() -> str:
    rt.record_usage(model="m1", input_tokens=1000, output_tokens=10, cached_input_tokens=200)
    return "recorded"


@rt.function_node
def recorded_sync() -> str:
    rt.record_usage(model="m2", input_tokens=7, output_tokens=3, reasoning_tokens=2)
    return "sync"


@rt.function_node
async def instrumented() -> str:
    # a framework's model-call span over an SDK's: the outer one is the whole call
    with TRACER.start_as_current_span("chat m1") as outer:
        outer.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m1",
                "gen_ai.response.model": "m1-0601",
                "gen_ai.provider.name": "acme",
                "gen_ai.usage.input_tokens": 50,
                "gen_ai.usage.output_tokens": 5,
                "gen_ai.usage.cache_read.input_tokens": 10,
            }
        )
        _genai_span(
            "POST /chat", {"gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 5}
        )
    _genai_span(  # OpenInference's names
        "llm",
        {"llm.model_name": "m2", "llm.token_count.prompt": 20, "llm.token_count.completion": 4},
    )
    return "instrumented"


@rt.function_node
async def quiet_node() -> str:
    return "no model"


@rt.function_node
async def middle() -> list[str]:
    return list(await asyncio.gather(rt.call(recorded), rt.call(recorded_sync)))


@rt.function_node
async def top() -> list[Any]:
    return list(await asyncio.gather(rt.call(middle), rt.call(instrumented), rt.call(quiet_node)))


def _run() -> rt.Session:
    @rt.session(name="usage", logging_setting="NONE")
    async def flow() -> list[Any]:
        return await rt.call(top)

    _, session = asyncio.run(flow())
    return session


def _by_name(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    stack = list(nodes)
    while stack:
        node = stack.pop()
        found[node["name"]] = node
        stack.extend(node["children"])
    return found


M1 = {"calls": 2, "input_tokens": 1050, "output_tokens": 15, "cached_input_tokens": 210}
M2 = {"calls": 2, "input_tokens": 27, "output_tokens": 7, "reasoning_tokens": 2}


def _fields(usage: dict[str, Any], model: str) -> dict[str, int]:
    figures = usage["models"][model]
    return {key: figures[key] for key in (M1 if model == "m1" else M2)}


def test_usage_is_summed_exactly_per_node_and_session() -> None:
    with capture_spans() as capture:
        session = _run()
    state = session.state
    assert state is not None
    validate_state(state)
    usage = state["session"]["usage"]
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"]) == (4, 1077, 22)
    assert (usage["cached_input_tokens"], usage["reasoning_tokens"]) == (210, 2)
    assert (_fields(usage, "m1"), _fields(usage, "m2")) == (M1, M2)
    assert usage["cost_usd"] is None  # m1 and m2 have no price anywhere
    nodes = _by_name(state["nodes"])
    assert nodes["top"]["usage"] == usage
    assert nodes["middle"]["usage"]["calls"] == 2
    assert nodes["middle"]["usage"]["input_tokens"] == 1007
    assert nodes["recorded_sync"]["usage"]["models"]["m2"]["reasoning_tokens"] == 2
    assert nodes["instrumented"]["usage"]["input_tokens"] == 70  # the inner span not again
    assert nodes["chat m1"]["usage"]["calls"] == 1  # its own call, not the one under it
    assert nodes["POST /chat"]["usage"]["calls"] == 1  # shows its figures, counted once above
    assert "usage" not in nodes["quiet_node"]
    # the spans carry the same totals, set as each one ended
    spans = {span.name: dict(span.attributes or {}) for span in capture.spans(session)}
    session_span = spans["session usage"]
    assert session_span["railtracks.usage.calls"] == 4
    assert session_span["railtracks.usage.input_tokens"] == 1077
    assert session_span["railtracks.usage.output_tokens"] == 22
    assert session_span["railtracks.usage.models"] == ("m1", "m2")
    assert json.loads(str(session_span["railtracks.usage.by_model"])) == usage["models"]
    assert spans["middle"]["railtracks.usage.input_tokens"] == 1007
    assert spans["instrumented"]["railtracks.usage.calls"] == 2
    assert "railtracks.usage.calls" not in spans["quiet_node"]
    assert not ROLLUP.pending  # nothing left behind for the next run


def test_a_state_assembled_from_the_journal_has_the_same_usage() -> None:
    """Over KEPT_RECORDS spans the state is streamed from the journal, usage from span totals."""

    @rt.function_node
    async def filler(i: int) -> int:
        return i

    @rt.session(name="usage-big", logging_setting="NONE")
    async def flow() -> list[Any]:
        for i in range(KEPT_RECORDS + 10):
            await rt.call(filler, i)
        return await rt.call(top)

    asyncio.run(flow())
    rt.flush()
    state = rt.load_state("usage-big")
    assert state["counts"]["nodes"] > KEPT_RECORDS  # it was assembled from the journal
    usage = state["session"]["usage"]
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"]) == (4, 1077, 22)
    assert (_fields(usage, "m1"), _fields(usage, "m2")) == (M1, M2)
    nodes = _by_name(state["nodes"])
    assert nodes["top"]["usage"] == usage
    assert nodes["middle"]["usage"]["input_tokens"] == 1007
    assert nodes["instrumented"]["usage"]["input_tokens"] == 70
    assert "usage" not in nodes["quiet_node"]
    assert "usage" not in nodes["filler"]


def test_configured_prices_are_exact_decimals() -> None:
    rt.configure(prices={"m1": {"input": 0.15, "output": 0.6, "cached_input": "0.075"}})
    with capture_spans() as capture:
        session = _run()
    state = session.state
    assert state is not None
    usage = state["session"]["usage"]
    # m1: (1050 - 210) * 0.15 + 210 * 0.075 + 15 * 0.6, per million tokens
    expected = (840 * Decimal("0.15") + 210 * Decimal("0.075") + 15 * Decimal("0.6")) / 10**6
    assert Decimal(usage["models"]["m1"]["cost_usd"]) == expected
    assert usage["cost_usd"] == usage["models"]["m1"]["cost_usd"] == "0.00015075"
    assert usage["models"]["m2"]["cost_usd"] is None
    assert usage["unpriced_models"] == ["m2"]
    (session_span,) = capture.named("session usage")
    assert (session_span.attributes or {})["railtracks.usage.cost_usd"] == "0.00015075"


def test_a_sum_of_prices_never_drifts() -> None:
    rt.configure(prices={"tenth": {"input": 100_000, "output": 0}})  # 0.1 USD a token

    @rt.function_node
    def one_token() -> None:
        rt.record_usage(model="tenth", input_tokens=1, output_tokens=0)

    @rt.session(name="drift", logging_setting="NONE")
    async def flow() -> None:
        await asyncio.gather(*(rt.call(one_token) for _ in range(3)))

    _, session = asyncio.run(flow())
    assert 0.1 + 0.1 + 0.1 != 0.3  # what float addition would have shown
    assert session.state is not None
    assert session.state["session"]["usage"]["cost_usd"] == "0.3"


def test_genai_prices_table_when_no_price_is_configured() -> None:
    @rt.function_node
    async def call_known_model() -> None:
        rt.record_usage(model="gpt-4o-mini", input_tokens=12_345, output_tokens=678)

    @rt.session(name="table", logging_setting="NONE")
    async def flow() -> None:
        await rt.call(call_known_model)

    _, session = asyncio.run(flow())
    assert session.state is not None
    usage = session.state["session"]["usage"]
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=12_345, output_tokens=678), model_ref="gpt-4o-mini"
    ).total_price
    assert Decimal(usage["cost_usd"]) == expected > 0
    assert "unpriced_models" not in usage


@pytest.mark.parametrize(
    "prices",
    [
        {"m": {"input": 1}},
        {"m": {"input": 1, "output": -1}},
        {"m": {"input": "a lot", "output": 1}},
        {"m": {"input": True, "output": 1}},
        {"m": {"input": float("nan"), "output": 1}},
        {"m": {"input": 1, "output": 1, "surcharge": 1}},
        {"": {"input": 1, "output": 1}},
        {"m": [1, 2]},
    ],
)
def test_bad_prices_are_refused(prices: Any) -> None:
    with pytest.raises(errors.ConfigurationError, match="prices"):
        rt.configure(prices=prices)


def test_record_usage_checks_its_arguments_and_its_place() -> None:
    with pytest.raises(errors.ContextError):
        rt.record_usage(model="m", input_tokens=1, output_tokens=1)

    @rt.function_node
    async def misuse(kwargs: dict[str, Any]) -> None:
        rt.record_usage(**kwargs)

    @rt.session(name="misuse", logging_setting="NONE", save_state=False)
    async def flow(kwargs: dict[str, Any]) -> None:
        await rt.call(misuse, kwargs)

    for kwargs, error in (
        ({"model": "m", "input_tokens": -1, "output_tokens": 1}, ValueError),
        ({"model": "m", "input_tokens": True, "output_tokens": 1}, TypeError),
        ({"model": "", "input_tokens": 1, "output_tokens": 1}, TypeError),
        ({"model": "m", "input_tokens": 1.5, "output_tokens": 1}, TypeError),
    ):
        with pytest.raises(error):
            asyncio.run(flow(kwargs))


def test_hostile_counts_on_a_span_are_not_counted() -> None:
    @rt.function_node
    async def odd_spans() -> None:
        _genai_span("a", {"gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": -3})
        _genai_span("b", {"gen_ai.usage.input_tokens": 10**18})
        _genai_span("c", {"gen_ai.usage.input_tokens": 4, "gen_ai.request.model": "\x1b[2J"})

    @rt.session(name="odd", logging_setting="NONE")
    async def flow() -> None:
        await rt.call(odd_spans)

    _, session = asyncio.run(flow())
    assert session.state is not None
    usage = session.state["session"]["usage"]
    assert (usage["calls"], usage["input_tokens"], list(usage["models"])) == (1, 4, ["\x1b[2J"])


def test_metrics_token_histogram_and_counter() -> None:
    reader = InMemoryMetricReader()
    rt.configure(metric_readers=[reader])
    _run()
    points = metric_points(reader)
    sums: dict[tuple[str, str], tuple[int, int]] = {}
    for p in points["gen_ai.client.token.usage"]:  # one point per set of labels
        key = (p.attributes["gen_ai.request.model"], p.attributes["gen_ai.token.type"])
        total, count = sums.get(key, (0, 0))
        sums[key] = (total + p.sum, count + p.count)
    assert sums == {
        ("m1", "input"): (1050, 2),
        ("m1", "output"): (15, 2),
        ("m2", "input"): (27, 2),
        ("m2", "output"): (7, 2),
    }
    chat = next(
        p for p in points["gen_ai.client.token.usage"] if "gen_ai.response.model" in p.attributes
    )
    assert chat.attributes["gen_ai.response.model"] == "m1-0601"
    assert chat.attributes["gen_ai.provider.name"] == "acme"
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    counter = {
        (
            p.attributes["railtracks.node.name"],
            p.attributes["railtracks.usage.model"],
            p.attributes["gen_ai.token.type"],
        ): p.value
        for p in points["railtracks.tokens"]
    }
    assert counter == {
        ("recorded", "m1", "input"): 1000,
        ("recorded", "m1", "output"): 10,
        ("recorded_sync", "m2", "input"): 7,
        ("recorded_sync", "m2", "output"): 3,
        ("instrumented", "m1", "input"): 50,
        ("instrumented", "m1", "output"): 5,
        ("instrumented", "m2", "input"): 20,
        ("instrumented", "m2", "output"): 4,
    }


class _PickleExecutor:
    """Runs a call in a thread after a pickle round trip of its reply: a process boundary."""

    async def run_call(self, call: Any) -> Any:
        import pickle

        from railtracks._remote.segment import execute_call

        reply = await asyncio.to_thread(execute_call, call)
        ROLLUP._closed.clear()  # as in another process: this one saw none of the reply's spans
        return pickle.loads(pickle.dumps(reply))


@rt.function_node(executor=_PickleExecutor())
async def remote_model_node() -> str:
    rt.record_usage(model="far", input_tokens=40, output_tokens=4)
    return "far"


def test_usage_in_a_segment_reply_is_summed_by_the_caller() -> None:
    @rt.function_node
    async def caller() -> str:
        return await rt.call(remote_model_node)

    @rt.session(name="carried", logging_setting="NONE")
    async def flow() -> str:
        return await rt.call(caller)

    with capture_spans() as capture:
        _, session = asyncio.run(flow())
    assert session.state is not None
    usage = session.state["session"]["usage"]
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"]) == (1, 40, 4)
    assert usage["models"]["far"]["calls"] == 1
    (caller_span,) = capture.named("caller")  # its total includes what came back in the reply
    assert (caller_span.attributes or {})["railtracks.usage.input_tokens"] == 40
    assert not ROLLUP.pending


def test_a_failing_usage_sum_never_changes_the_run(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from railtracks._recording import usage as usage_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("price table on fire")

    monkeypatch.setattr(usage_module, "cost_of", broken)

    @rt.session(name="unharmed", logging_setting="QUIET")  # NONE would hide the warning
    async def flow() -> str:
        return await rt.call(recorded)

    answer, session = asyncio.run(flow())
    assert answer == "recorded"
    assert session.status == "completed"
    assert session.state is not None
    validate_state(session.state)
    assert "usage" not in session.state["session"]  # left out, the rest saved
    assert rt.flush(30)
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if "summing model usage" in line]
    assert len(warnings) == 2, warnings  # one for the spans, one for the state
    assert all("price table on fire" in line for line in warnings)
