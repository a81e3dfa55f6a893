"""No span lost: a 20,000-call session that exits at once, per collector fault (SPEC 5).

Run:  .venv/bin/python benchmarks/faults.py [--calls N] [--protocol grpc|http/protobuf]

For each fault of the fault-injecting receiver the test suite uses
(``railtracks.testing._receiver``, in its own process on 127.0.0.1) this
prints: spans the collector received from the run itself, the extra exit time
against the same script with export off (from the end of the session, as the
script stamps it, to the end of its process; median of 3 export-off runs as the
baseline), what was left in the outbox (spans, bytes), and what the collector
has after ``railtracks outbox send``. Then the per-call cost of sequential
``rt.call`` with export on, side by side with the OpenTelemetry SDK's
``BatchSpanProcessor(max_queue_size=262144)`` + ``OTLPSpanExporter`` around the
same trivial coroutine, each span with the attributes of a railtracks node span
(best of 3 runs each, in fresh processes, interleaved).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from railtracks.testing._procs import free_port
from railtracks.testing._receiver import Receiver, otlp_receiver_process

RAILTRACKS = str(Path(sys.executable).with_name("railtracks"))

SESSION = """
import asyncio, sys, time
import railtracks as rt

@rt.function_node
async def work(i: int) -> int:
    return i

@rt.session(name="burst", logging_setting="NONE", save_state=False)
async def flow(calls):
    for i in range(calls):
        await rt.call(work, i)

calls = int(sys.argv[1])
started = time.perf_counter()
asyncio.run(flow(calls))
print((time.perf_counter() - started) / calls * 1e6, time.time())
"""

SDK = """
import asyncio, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.{module}.trace_exporter import OTLPSpanExporter

provider = TracerProvider()
provider.add_span_processor(
    BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[2]), max_queue_size=262144)
)
tracer = provider.get_tracer("bench")

async def work(i: int) -> int:
    return i

ATTRIBUTES = {{  # what a railtracks node span carries (as in benchmarks/overhead.py)
    "railtracks.node.name": "work",
    "railtracks.node.kind": "function",
    "railtracks.session.id": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "session.id": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "work",
    "railtracks.session.name": "burst",
}}

async def flow(calls):
    with tracer.start_as_current_span("session"):
        for i in range(calls):
            with tracer.start_as_current_span("work", attributes=ATTRIBUTES) as span:
                span.set_attribute("railtracks.node.input", '{{"i":%d}}' % i)
                result = await work(i)
                span.set_attribute("railtracks.node.output", str(result))
                span.set_attribute("railtracks.status", "completed")

calls = int(sys.argv[1])
started = time.perf_counter()
asyncio.run(flow(calls))
print((time.perf_counter() - started) / calls * 1e6)
provider.shutdown()
"""

FAULTS: dict[str, dict[str, Any] | None] = {
    "none (collector ok)": {"kind": "ok"},
    "slow (200 ms/request)": {"kind": "slow", "delay": 0.2},
    "503 for 3 s around exit": {"kind": "refuse", "status": 503, "retry_after": 1, "seconds": 3},
    "503 throughout": {"kind": "refuse", "status": 503, "retry_after": 1},
    "429 throughout": {"kind": "refuse", "status": 429, "retry_after": 2},
    "hang": {"kind": "hang"},
    "restart mid-run (2 s down)": {"kind": "restart", "after": 5, "down": 2.0},
    "closed port": None,
}


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """``(seconds from the session's end to the process's exit, stdout)``."""
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    fields = done.stdout.split()
    exit_seconds = ended - float(fields[1]) if len(fields) > 1 else 0.0
    return exit_seconds, fields[0]


def _outbox(cwd: Path) -> tuple[int, int]:
    root = cwd / ".railtracks" / "outbox"
    spans = size = 0
    for path in root.glob("*/*"):
        if path.name != "endpoint.json":
            spans += int(path.name.split("-")[3].split(".")[0])
            size += path.stat().st_size
    return spans, size


def faults(receiver: Receiver, calls: int, protocol: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="rt-faults-"))
    base_env = {"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    baseline = statistics.median(
        _run([sys.executable, "-c", SESSION, str(calls)], work, {"OTEL_TRACES_EXPORTER": "none"})[0]
        for _ in range(3)
    )
    print(
        f"{calls}-call session, exit right after it, {protocol}; "
        f"exit with export off: {baseline:.2f} s (session end to process end)"
    )
    header = ("fault", "received", "extra exit s", "outbox spans", "outbox KiB", "after send")
    print("{:<28} {:>9} {:>13} {:>13} {:>11} {:>11}".format(*header))
    for name, mode in FAULTS.items():
        cwd = work / name.split()[0]
        shutil.rmtree(cwd, ignore_errors=True)
        cwd.mkdir()
        receiver.reset()
        if mode is None:
            endpoint = f"http://127.0.0.1:{free_port()}"
        else:
            endpoint = receiver.endpoint(protocol)
            receiver.set(**mode)
        env = {**base_env, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        exit_seconds, _ = _run([sys.executable, "-c", SESSION, str(calls)], cwd, env)
        received = receiver.stats()[0]
        spans, size = _outbox(cwd)
        receiver.set("ok")
        after = "-"
        if spans and mode is not None:
            subprocess.run(
                [RAILTRACKS, "outbox", "send"], cwd=cwd, capture_output=True, check=False
            )
            distinct, total, _, _ = receiver.stats()
            after = f"{distinct}" + ("" if distinct == total else f" ({total - distinct} dup)")
        print(
            f"{name:<28} {received:>9} {exit_seconds - baseline:>13.2f} {spans:>13} "
            f"{size / 1024:>11.0f} {after:>11}"
        )
    shutil.rmtree(work, ignore_errors=True)


def per_call(receiver: Receiver, calls: int, protocol: str) -> None:
    receiver.reset()
    work = Path(tempfile.mkdtemp(prefix="rt-percall-"))
    endpoint = receiver.endpoint(protocol)
    env = {
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }
    module = "grpc" if protocol == "grpc" else "http"
    sdk_endpoint = endpoint if protocol == "grpc" else f"{endpoint}/v1/traces"
    rows: dict[str, list[float]] = {
        "rt.call, export on": [],
        "rt.call, export off": [],
        "SDK BSP(262144)+OTLP": [],
    }
    for _ in range(3):  # interleaved, so drift on a busy machine hits each the same
        rows["rt.call, export on"].append(
            float(_run([sys.executable, "-c", SESSION, str(calls)], work, env)[1])
        )
        rows["rt.call, export off"].append(
            float(
                _run(
                    [sys.executable, "-c", SESSION, str(calls)],
                    work,
                    {"OTEL_TRACES_EXPORTER": "none"},
                )[1]
            )
        )
        rows["SDK BSP(262144)+OTLP"].append(
            float(
                _run(
                    [sys.executable, "-c", SDK.format(module=module), str(calls), sdk_endpoint],
                    work,
                    {},
                )[1]
            )
        )
    sdk = min(rows["SDK BSP(262144)+OTLP"])
    print(f"\nper call, {calls} sequential calls, {protocol}, best of 3 (us/call):")
    for name, values in rows.items():
        print(f"  {name:<24} {min(values):8.1f}   {min(values) / sdk:5.2f}x of the SDK")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--protocol", default="http/protobuf", choices=["grpc", "http/protobuf"])
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with otlp_receiver_process() as receiver:
        faults(receiver, args.calls, args.protocol)
        per_call(receiver, args.calls, args.protocol)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
