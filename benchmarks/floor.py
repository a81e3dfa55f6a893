"""How close ``rt.call`` is to the OpenTelemetry floor, and whether it stays flat at any size.

Run:  .venv/bin/python benchmarks/floor.py [--calls N] [--rounds R] [--sizes ...] [--big]

Every figure is measured in this one process (the session-size rows each in a
fresh child process, so one size's memory never flatters the next). The
baseline is a bare OpenTelemetry SDK span with no processor at all, made the
idiomatic way (``start_as_current_span`` with the six attributes a node span
starts with), around the same trivial ``async def``. Rows, in microseconds
per call, the median of R interleaved rounds of N sequential calls:

* ``rt.call`` at ``NONE`` (target <= 1.2x the baseline, aim <= 1.0x);
* ``rt.call`` at ``REGULAR`` to a null stream (target <= 1.4x);
* with OTLP/HTTP export of traces and metrics to a local receiver in another
  process, against the SDK's ``BatchSpanProcessor(max_queue_size=262144)`` +
  ``OTLPSpanExporter`` to the same receiver (target <= 1.15x), each timed until
  its own flush returns (both export from a background thread: what is still
  queued when the calls end is part of their cost);
* an empty session against a raw root span (target <= 1.3x);
* reference rows, when installed in this environment (``bash
  benchmarks/setup_reference.sh`` makes ``.venv-bench`` with them): Logfire's
  ``logfire.span`` and the OpenAI Agents SDK's ``trace`` + ``custom_span``
  with an in-memory processor.

Then, per session size (1k, 10k, 100k; ``--big`` adds 1M): the per-call cost
(flat within 10% is the target), the longest event-loop stall while the
session ends and its state is saved (a concurrent 1 ms ticker; target
<= 50 ms), the state write time, the peak RSS above the process's baseline,
and ``railtracks runs`` over a directory holding that state (target <= 1 s
at 1M).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from _rss import CHILD_PRELUDE  # benchmarks/_rss.py
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import railtracks as rt
from railtracks.testing._receiver import otlp_receiver_process

Run = Callable[[int], Awaitable[None]]
ATTRIBUTES = {
    "railtracks.node.name": "trivial",
    "railtracks.node.kind": "function",
    "railtracks.session.id": "0b7f3c1e-5a53-4b38-9d0e-1c2d3e4f5a6b",
    "session.id": "0b7f3c1e-5a53-4b38-9d0e-1c2d3e4f5a6b",
    "gen_ai.operation.name": "execute_tool",
    "railtracks.node.input": '{"x":0}',
}


# What railtracks' node span carries (SPEC 3 and the OpenInference/GenAI keys), for the
# reference row that shows how much of the distance to the baseline is those attributes.
NODE_ATTRIBUTES = {
    **ATTRIBUTES,
    "gen_ai.tool.name": "trivial",
    "gen_ai.tool.type": "function",
    "openinference.span.kind": "TOOL",
    "railtracks.session.name": "bench",
    "input.value": '{"x":0}',
    "input.mime_type": "application/json",
}


async def trivial(x: int) -> int:
    return x


node = rt.function_node(trivial)


def sdk_span(provider: TracerProvider) -> Run:
    tracer = provider.get_tracer("bench")

    async def run(calls: int) -> None:
        for i in range(calls):
            with tracer.start_as_current_span("trivial", attributes=ATTRIBUTES) as span:
                span.set_attribute("railtracks.node.output", str(await trivial(i)))

    return run


def sdk_span_node_attributes(provider: TracerProvider) -> Run:
    tracer = provider.get_tracer("bench")

    async def run(calls: int) -> None:
        for i in range(calls):
            with tracer.start_as_current_span("trivial", attributes=NODE_ATTRIBUTES) as span:
                output = str(await trivial(i))
                span.set_attributes(
                    {
                        "railtracks.node.output": output,
                        "output.value": output,
                        "output.mime_type": "application/json",
                        "railtracks.status": "completed",
                    }
                )

    return run


def railtracks_call(setting: str) -> Run:
    async def run(calls: int) -> None:
        with rt.Session(name="bench", logging_setting=setting, save_state=False):
            for i in range(calls):
                await rt.call(node, i)

    return run


def empty_sessions(setting: str = "NONE") -> Run:
    async def run(calls: int) -> None:
        for _ in range(calls):
            with rt.Session(logging_setting=setting, save_state=False):
                pass

    return run


def root_spans(provider: TracerProvider) -> Run:
    tracer = provider.get_tracer("bench")

    async def run(calls: int) -> None:
        for _ in range(calls):
            with tracer.start_as_current_span("session", attributes=ATTRIBUTES):
                pass

    return run


def logfire_span() -> Run | None:
    try:
        import logfire
    except ImportError:
        return None
    logfire.configure(send_to_logfire=False, console=False, inspect_arguments=False)

    async def run(calls: int) -> None:
        for i in range(calls):
            with logfire.span("trivial", x=i) as span:
                span.set_attribute("output", await trivial(i))

    return run


def agents_span() -> Run | None:
    try:
        from agents import custom_span, trace
        from agents.tracing import TracingProcessor, set_trace_processors
    except ImportError:
        return None

    class InMemory(TracingProcessor):  # type: ignore[misc]
        def __init__(self) -> None:
            self.spans: list[Any] = []

        def on_trace_start(self, trace: Any) -> None: ...
        def on_trace_end(self, trace: Any) -> None: ...
        def on_span_start(self, span: Any) -> None: ...
        def on_span_end(self, span: Any) -> None:
            self.spans.append(span)

        def shutdown(self) -> None: ...
        def force_flush(self) -> None: ...

    memory = InMemory()
    set_trace_processors([memory])

    async def run(calls: int) -> None:
        with trace("bench"):
            for i in range(calls):
                with custom_span("trivial", data={"x": i}):
                    await trivial(i)
        memory.spans.clear()

    return run


def measure(
    rows: dict[str, Run],
    calls: int,
    rounds: int,
    drains: dict[str, Callable[[], object]] | None = None,
) -> dict[str, float]:
    """Median microseconds per call of each row, rounds interleaved.

    A row with a drain (an exporting row) is timed until its drain returns:
    until every span it made has been encoded and sent, so work a background
    thread still has queued is counted in its own row, never in the next one's.
    """
    drains = drains or {}
    for name, run in rows.items():  # warm imports, caches and pipelines
        asyncio.run(run(min(calls, 500)))
        drains.get(name, _no_drain)()
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        for name, run in rows.items():
            started = time.perf_counter()
            asyncio.run(run(calls))
            drains.get(name, _no_drain)()
            samples[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def _no_drain() -> None:
    return None


def print_rows(
    title: str, figures: dict[str, float], baseline: str, targets: dict[str, str]
) -> None:
    print(f"\n{title}")
    base = figures[baseline]
    for name, value in figures.items():
        target = targets.get(name, "")
        print(f"  {name:52}{value:9.2f} us{value / base:8.2f}x  {target}")


def per_call_rows(calls: int, rounds: int) -> None:
    null = io.StringIO()
    bare = TracerProvider()
    rt.configure(console_stream=null, export=False)
    rows: dict[str, Run] = {
        "bare SDK span, no processor (baseline)": sdk_span(bare),
        "bare SDK span, a node span's 16 attributes": sdk_span_node_attributes(bare),
        "rt.call, NONE": railtracks_call("NONE"),
        "rt.call, REGULAR to a null stream": railtracks_call("REGULAR"),
    }
    print_rows(
        f"{calls} sequential calls, median of {rounds} rounds",
        measure(rows, calls, rounds),
        "bare SDK span, no processor (baseline)",
        {"rt.call, NONE": "target <= 1.2x", "rt.call, REGULAR to a null stream": "target <= 1.4x"},
    )
    print_rows(
        f"{calls} empty sessions, median of {rounds} rounds",
        measure(
            {"raw root span (baseline)": root_spans(bare), "empty rt.Session": empty_sessions()},
            calls,
            rounds,
        ),
        "raw root span (baseline)",
        {"empty rt.Session": "target <= 1.3x"},
    )
    with otlp_receiver_process(grpc=False) as sink:  # its own process: costs the run nothing
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporting = TracerProvider()
        exporting.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{sink.http_endpoint}/v1/traces"), max_queue_size=262_144
            )
        )
        rt.configure(console_stream=null, endpoint=sink.http_endpoint, protocol="http/protobuf")
        print_rows(
            f"{calls} sequential calls with OTLP/HTTP export on, until all is sent, "
            f"median of {rounds} rounds",
            measure(
                {
                    "SDK BatchSpanProcessor + OTLPSpanExporter": sdk_span(exporting),
                    "rt.call, NONE, traces and metrics exported": railtracks_call("NONE"),
                },
                calls,
                rounds,
                {
                    "SDK BatchSpanProcessor + OTLPSpanExporter": exporting.force_flush,
                    "rt.call, NONE, traces and metrics exported": lambda: rt.flush(60),
                },
            ),
            "SDK BatchSpanProcessor + OTLPSpanExporter",
            {"rt.call, NONE, traces and metrics exported": "target <= 1.15x"},
        )
        exporting.shutdown()
        rt.flush(30)
        print(f"  spans received by the local receiver: {sink.stats().total}")
    reference_rows(bare, calls, rounds)


def reference_rows(bare: TracerProvider, calls: int, rounds: int) -> None:
    """Logfire and the OpenAI Agents SDK beside the same baseline, measured last.

    ``logfire.configure`` installs its own global tracer provider, which
    railtracks would follow (as it follows any application's): no railtracks
    row may run after it.
    """
    rows: dict[str, Run] = {"bare SDK span, no processor (baseline)": sdk_span(bare)}
    for name, factory in (("logfire.span (reference)", logfire_span),
                          ("agents custom_span (reference)", agents_span)):  # fmt: skip
        run = factory()
        if run is not None:
            rows[name] = run
        else:
            print(f"  ({name} not installed: bash benchmarks/setup_reference.sh)")
    if len(rows) > 1:
        print_rows(
            f"{calls} sequential calls of the reference libraries, median of {rounds} rounds",
            measure(rows, calls, rounds),
            "bare SDK span, no processor (baseline)",
            {},
        )


# -- one session of N calls, in a child process ----------------------------------------------
_CHILD = (
    CHILD_PRELUDE
    + r"""
async def main() -> dict:
    longest = 0.0
    stop = False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    # one-time costs (the pipeline, modules loaded on first use) are not per call
    async with rt.Session(name="warm-up", logging_setting="NONE", save_state=False):
        for i in range(100):
            await rt.call(step, i)
    baseline = rss_mb()
    session = rt.Session(name="big", logging_setting="NONE")
    await session.__aenter__()  # as @rt.session and `async with` do
    started = time.perf_counter()
    for i in range(calls):
        await rt.call(step, i)
    ran = time.perf_counter() - started
    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    longest = 0.0
    ending = time.perf_counter()
    await session.__aexit__(None, None, None)
    ended = time.perf_counter() - ending
    await asyncio.sleep(0.05)
    stop = True
    await tick
    peak = peak_mb()
    return {"per_call_us": ran / calls * 1e6, "stall_ms": longest * 1e3, "end_s": ended,
            "peak_above_mb": peak - baseline, "held_mb": rss_mb() - baseline}

print(json.dumps(asyncio.run(main())))
"""
)


@contextlib.contextmanager
def _directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def size_rows(sizes: list[int]) -> None:
    print(
        "\none session of N sequential calls, each size in a fresh process after a 100-call "
        "warm-up session (NONE, state saved)"
    )
    print(
        f"  {'N':>9}{'per call':>11}{'end stall':>11}{'session end':>13}{'peak RSS+':>11}"
        f"{'held':>9}{'state':>10}{'runs':>9}"
    )
    railtracks = str(Path(sys.executable).with_name("railtracks"))
    first: float | None = None
    for size in sizes:
        with _directory() as directory:
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(size), str(directory)],
                capture_output=True, text=True, check=True, timeout=3600,
            )  # fmt: skip
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            state = directory / "big.json"
            started = time.perf_counter()
            subprocess.run(
                [railtracks, "runs"],
                env={**os.environ, "RAILTRACKS_STATE_DIR": str(directory)},
                capture_output=True, check=True, timeout=600,
            )  # fmt: skip
            runs = time.perf_counter() - started
            first = first or figures["per_call_us"]
            print(
                f"  {size:>9}{figures['per_call_us']:>9.2f}us{figures['stall_ms']:>9.1f}ms"
                f"{figures['end_s']:>12.2f}s{figures['peak_above_mb']:>9.0f}MB"
                f"{figures['held_mb']:>7.0f}MB{state.stat().st_size / 1e6:>8.1f}MB{runs:>8.2f}s"
                f"   ({figures['per_call_us'] / first:.2f}x the first size)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--big", action="store_true", help="add a 1,000,000-call session")
    parser.add_argument("--skip-calls", action="store_true", help="only the session-size rows")
    args = parser.parse_args()
    if not args.skip_calls:
        per_call_rows(args.calls, args.rounds)
    size_rows([*args.sizes, *([1_000_000] if args.big else [])])


if __name__ == "__main__":
    main()
