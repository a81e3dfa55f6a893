"""What summing model calls' usage (SPEC 15) costs: per ``rt.call``, and per saved state.

Run:  .venv/bin/python benchmarks/usage.py [--calls N] [--rounds R] [--model-calls M]

1. Per call, microseconds, the median of R interleaved rounds of N sequential
   calls at ``NONE`` (floor.py's method and baseline): ``rt.call`` as shipped
   (the usage roll-up installed, no model called: the common case), the same
   with the roll-up taken off the fan-out (railtracks without this feature),
   and a node that records one model call per call (``rt.record_usage``).
2. State assembly (``build_state``) of one session of M nodes, each with one
   model-call span under it (GenAI token counts), against the same session
   whose spans carry no token counts: the usage pass's share of assembly.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import railtracks as rt
from railtracks._delivery.telemetry import TELEMETRY, USAGE_ROLLUP
from railtracks._runs.state import build_state

sys.path.insert(0, str(Path(__file__).parent))
from floor import measure, print_rows, railtracks_call, sdk_span

TRACER = trace.get_tracer("bench.llm")


async def trivial(x: int) -> int:
    return x


@rt.function_node
async def recording(x: int) -> int:
    rt.record_usage(model="bench-model", input_tokens=100 + x % 7, output_tokens=20)
    return x


def recording_calls() -> Any:
    async def run(calls: int) -> None:
        with rt.Session(name="bench", logging_setting="NONE", save_state=False):
            for i in range(calls):
                await rt.call(recording, i)

    return run


class RollupOff:
    """The usage roll-up off railtracks' fan-out for the block: railtracks without SPEC 15."""

    def __enter__(self) -> None:
        TELEMETRY.fanout.remove(USAGE_ROLLUP)

    def __exit__(self, *exc: object) -> None:
        TELEMETRY.fanout.add(USAGE_ROLLUP)


def without_rollup() -> Any:
    inner = railtracks_call("NONE")

    async def run(calls: int) -> None:
        with RollupOff():
            await inner(calls)

    return run


def per_call(calls: int, rounds: int) -> None:
    rt.configure(console_stream=io.StringIO(), export=False)
    rows = {
        "bare SDK span, no processor (baseline)": sdk_span(TracerProvider()),
        "rt.call, NONE, usage roll-up off (without SPEC 15)": without_rollup(),
        "rt.call, NONE, as shipped, no model called": railtracks_call("NONE"),
        "rt.call, NONE, one rt.record_usage per call": recording_calls(),
    }
    print_rows(
        f"{calls} sequential calls, median of {rounds} rounds",
        measure(rows, calls, rounds),
        "bare SDK span, no processor (baseline)",
        {},
    )


def session_spans(model_calls: int, with_usage: bool) -> list[Any]:
    """The finished spans of a session of ``model_calls`` nodes, each over one model-call span."""
    counts = {"gen_ai.usage.input_tokens": 1234, "gen_ai.usage.output_tokens": 56}

    @rt.function_node
    async def ask(i: int) -> int:
        with TRACER.start_as_current_span("chat bench-model") as span:
            span.set_attributes(
                {"gen_ai.request.model": f"model-{i % 3}", **(counts if with_usage else {})}
            )
        return i

    async def flow() -> rt.Session:
        async with rt.Session(name="assembly", logging_setting="NONE", save_state=False) as s:
            for i in range(model_calls):
                await rt.call(ask, i)
        return s

    session = asyncio.run(flow())
    spans = session.finished_spans()
    assert spans is not None
    return list(spans)


def assembly(model_calls: int, rounds: int) -> None:
    rt.configure(
        console_stream=io.StringIO(), export=False, prices={"model-0": {"input": 1, "output": 2}}
    )
    figures: dict[str, float] = {}
    for label, with_usage in (("no token counts", False), ("one model call per node", True)):
        spans = session_spans(model_calls, with_usage)
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            state = build_state(spans)
            times.append(time.perf_counter() - started)
        if with_usage:
            assert state["session"]["usage"]["calls"] == model_calls
        figures[label] = statistics.median(times) * 1e3
    print(
        f"\nbuild_state of a session of {model_calls:,} nodes "
        f"(+ {model_calls:,} model-call spans), median of {rounds} rounds"
    )
    base = figures["no token counts"]
    for label, value in figures.items():
        print(f"  {label:52}{value:9.1f} ms{value / base:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--model-calls", type=int, default=10_000)
    args = parser.parse_args()
    per_call(args.calls, args.rounds)
    assembly(args.model_calls, max(args.rounds // 2, 3))


if __name__ == "__main__":
    main()
