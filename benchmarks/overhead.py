"""Per-call overhead of ``rt.call`` against a bare await and a raw OpenTelemetry span.

Run:  .venv/bin/python benchmarks/overhead.py [--calls N] [--repeats R]

All three are measured in this one process, on the same event loop, with the
same tracer provider and the same span processors (railtracks' fan-out with
its session collector; no exporter), and the raw span carries the same
number of attributes as a node span (set at start, plus two at the end).
Each figure is the best of R runs of N sequential calls, in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from opentelemetry import trace

import railtracks as rt
from railtracks import _attributes as attr
from railtracks._telemetry import TELEMETRY


async def trivial(x: int) -> int:
    return x


node = rt.function_node(trivial)


async def bare(calls: int) -> None:
    for i in range(calls):
        await trivial(i)


async def raw_span(calls: int) -> None:
    tracer = TELEMETRY.tracer()
    session_id = str(uuid.uuid4())
    TELEMETRY.collector.open(session_id)  # the collector files these spans like a session's
    attributes = {
        attr.NODE_NAME: "trivial",
        attr.NODE_KIND: attr.NODE_KIND_FUNCTION,
        attr.SESSION_ID: session_id,
        attr.OPENINFERENCE_SESSION_ID: session_id,
        attr.GEN_AI_OPERATION_NAME: attr.OPERATION_TOOL,
        attr.GEN_AI_TOOL_NAME: "trivial",
        attr.SESSION_NAME: "bench",
        attr.NODE_INPUT: '{"x":0}',
    }
    try:
        for i in range(calls):
            with tracer.start_as_current_span("trivial", attributes=attributes) as span:
                result = await trivial(i)
                span.set_attribute(attr.NODE_OUTPUT, str(result))
                span.set_attribute(attr.STATUS, attr.STATUS_COMPLETED)
    finally:
        TELEMETRY.collector.close(session_id)


async def railtracks_call(calls: int) -> None:
    with rt.Session(name="bench", logging_setting="NONE", save_state=False):
        for i in range(calls):
            await rt.call(node, i)


def per_call(run: Callable[[int], Awaitable[None]], calls: int) -> float:
    started = time.perf_counter()
    asyncio.run(run(calls))
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    for warm in (bare, raw_span, railtracks_call):  # warm imports, caches and the provider
        asyncio.run(warm(500))
    # interleave the three so drift on a busy machine hits each the same
    rounds: dict[str, list[float]] = {"bare": [], "raw": [], "rt": []}
    for _ in range(args.repeats):
        rounds["bare"].append(per_call(bare, args.calls))
        rounds["raw"].append(per_call(raw_span, args.calls))
        rounds["rt"].append(per_call(railtracks_call, args.calls))
    figures = {name: min(values) for name, values in rounds.items()}
    spread = {name: statistics.median(values) for name, values in rounds.items()}
    print(f"calls per run: {args.calls}, runs: {args.repeats} (best and median per call)")
    print(
        f"  bare await                     {figures['bare']:8.2f} us   median {spread['bare']:8.2f} us"
    )
    print(
        f"  raw OTel span (same processors){figures['raw']:8.2f} us   median {spread['raw']:8.2f} us"
    )
    print(
        f"  rt.call in a session (NONE)    {figures['rt']:8.2f} us   median {spread['rt']:8.2f} us"
    )
    print(
        f"  ratio rt.call / raw span       {figures['rt'] / figures['raw']:8.2f}x  (target <= 1.25x)"
    )


if __name__ == "__main__":
    main()
