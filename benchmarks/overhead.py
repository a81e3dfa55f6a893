"""Per-call overhead of ``rt.call`` against a bare await and a raw OpenTelemetry span.

Run:  .venv/bin/python benchmarks/overhead.py [--calls N] [--rounds R]

Everything is measured in this one process. The raw span uses the same
tracer provider and the same span processors railtracks feeds (its fan-out,
session collector and console printer), carries the same number of
attributes as a node span (set at start, plus four at the end), and is made
the idiomatic way, ``tracer.start_as_current_span``. Rows:

* bare await of a trivial ``async def``;
* the raw span around it (no exporter);
* ``rt.call`` in a session with ``logging_setting="NONE"``, no exporter;
* ``rt.call`` with ``logging_setting="REGULAR"``, the console on a null stream;
* the raw span and ``rt.call`` (NONE) with OTLP/HTTP export on, to a local
  receiver in another process (export runs in railtracks' worker thread).

Each figure is the best of R rounds of N sequential calls, in microseconds
per call; rounds of the different rows are interleaved so that drift on a
busy machine hits each the same.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import railtracks as rt
from railtracks._delivery.telemetry import TELEMETRY
from railtracks._recording import attributes as attr
from railtracks.testing._receiver import otlp_receiver_process


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
        # the semantic conventions every node span carries (SPEC 3)
        attr.GEN_AI_TOOL_TYPE: attr.TOOL_TYPE_FUNCTION,
        attr.OPENINFERENCE_SPAN_KIND: attr.SPAN_KIND_TOOL,
        attr.INPUT_VALUE: '{"x":0}',
        attr.INPUT_MIME_TYPE: attr.MIME_JSON,
    }
    try:
        for i in range(calls):
            with tracer.start_as_current_span("trivial", attributes=attributes) as span:
                result = await trivial(i)
                output = str(result)
                span.set_attribute(attr.NODE_OUTPUT, output)
                span.set_attribute(attr.OUTPUT_VALUE, output)
                span.set_attribute(attr.OUTPUT_MIME_TYPE, attr.MIME_JSON)
                span.set_attribute(attr.STATUS, attr.STATUS_COMPLETED)
    finally:
        TELEMETRY.collector.close(session_id)


def railtracks_call(setting: str) -> Callable[[int], Awaitable[None]]:
    async def run(calls: int) -> None:
        with rt.Session(name="bench", logging_setting=setting, save_state=False):
            for i in range(calls):
                await rt.call(node, i)

    return run


def per_call(run: Callable[[int], Awaitable[None]], calls: int) -> float:
    started = time.perf_counter()
    asyncio.run(run(calls))
    return (time.perf_counter() - started) / calls * 1e6


Run = Callable[[int], Awaitable[None]]


def measure(
    rows: dict[str, Run], calls: int, rounds: int, setup: Callable[[], None]
) -> dict[str, list[float]]:
    setup()
    for run in rows.values():  # warm imports, caches and the pipeline
        asyncio.run(run(500))
    results: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        for name, run in rows.items():
            results[name].append(per_call(run, calls))
            rt.flush(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    null = io.StringIO()

    def local() -> None:
        rt.configure(console_stream=null, export=False)

    results = measure(
        {
            "bare await": bare,
            "raw OTel span": raw_span,
            "rt.call, NONE": railtracks_call("NONE"),
            "rt.call, REGULAR to a null stream": railtracks_call("REGULAR"),
        },
        args.calls,
        args.rounds,
        local,
    )
    with otlp_receiver_process(grpc=False) as sink:  # its own process: costs the run nothing

        def exporting() -> None:
            rt.configure(console_stream=null, endpoint=sink.http_endpoint, protocol="http/protobuf")

        results |= measure(
            {
                "raw OTel span, OTLP export on": raw_span,
                "rt.call, NONE, OTLP export on": railtracks_call("NONE"),
            },
            args.calls,
            args.rounds,
            exporting,
        )
        rt.flush(30)
        received = sink.stats().total
    baseline = min(results["raw OTel span"])
    print(f"{args.calls} sequential calls per round, {args.rounds} rounds; microseconds per call")
    print(f"{'':36}{'best':>9}{'median':>9}{'vs raw span':>13}")
    for name, values in results.items():
        best = min(values)
        print(f"{name:36}{best:9.2f}{statistics.median(values):9.2f}{best / baseline:12.2f}x")
    print(f"spans received by the local OTLP receiver: {received}")
    ratio = min(results["rt.call, NONE"]) / baseline
    print(f"rt.call (NONE) / raw span = {ratio:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
