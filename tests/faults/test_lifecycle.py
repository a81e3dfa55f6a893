"""SIGTERM, fork, a second process, a crash mid-delivery, flush and metric failures (SPEC 5).

Each case runs as a user would (its own process, real sockets on 127.0.0.1)
against one fault-injecting receiver shared by the test session.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

import railtracks as rt
from railtracks.testing._procs import free_port, wait_for_progress
from railtracks.testing._receiver import Receiver
from tests.conftest import PYTHON, RAILTRACKS, run, run_python


def _env(endpoint: str, protocol: str = "http/protobuf", metrics: bool = False) -> dict[str, str]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    if not metrics:
        env["OTEL_METRICS_EXPORTER"] = "none"
    return env


def _span_ids(receiver: Receiver) -> set[str]:
    return {span_id.hex() for _, span_id in receiver.ids()}


def _largest_trace(receiver: Receiver) -> int:
    """The spans received of the trace with the most."""
    return max(collections.Counter(trace for trace, _ in receiver.ids()).values(), default=0)


def _popen(script: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(script)],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- SIGTERM ---------------------------------------------------------------------------

TERMINATED = """
import asyncio
import railtracks as rt

@rt.function_node
async def step(i: int) -> int:
    if i >= 500:
        if i == 502:
            print("ready", flush=True)
        await asyncio.sleep(60)
    return i

@rt.session(name="term", logging_setting="QUIET")
async def flow():
    for i in range(500):
        await rt.call(step, i)
    await asyncio.gather(*(rt.call(step, 500 + i) for i in range(3)))

asyncio.run(flow())
"""


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_sigterm_ends_the_session_like_ctrl_c_and_delivers_every_span(
    fresh: Receiver, tmp_path: Path, protocol: str
) -> None:
    process = _popen(TERMINATED, tmp_path, _env(fresh.endpoint(protocol), protocol))
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    took = time.monotonic() - sent
    # SPEC: within ~2 s (benchmarks/faults.py measures it); here only a bound that a
    # loaded machine never reaches and a session that ignored SIGTERM (60 s) always does
    assert took < 20, took
    assert process.returncode != 0  # it was terminated, not finished
    state = json.loads((tmp_path / ".railtracks" / "term.json").read_text())
    assert state["session"]["status"] == "cancelled", stderr
    statuses = [node["status"] for node in state["nodes"]]
    assert statuses.count("completed") == 500
    assert statuses.count("cancelled") == 3
    fresh.wait_for(504)
    received = _span_ids(fresh)
    assert state["session"]["span_id"] in received  # the root is there: no orphans
    assert {node["span_id"] for node in state["nodes"]} <= received
    assert fresh.stats()[:2] == (504, 504)


def test_an_applications_own_sigterm_handler_is_kept(fresh: Receiver, tmp_path: Path) -> None:
    script = """
    import asyncio, signal, sys
    import railtracks as rt

    def mine(signum, frame):
        print("app handler", flush=True)
        sys.exit(7)

    signal.signal(signal.SIGTERM, mine)

    @rt.function_node
    async def wait() -> None:
        await asyncio.sleep(60)

    @rt.session(name="app", logging_setting="QUIET")
    async def flow():
        print("ready", signal.getsignal(signal.SIGTERM) is mine, flush=True)
        await rt.call(wait)

    asyncio.run(flow())
    """
    process = _popen(script, tmp_path, _env(fresh.endpoint("http/protobuf")))
    assert process.stdout is not None
    assert process.stdout.readline().split() == ["ready", "True"]
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert "app handler" in stdout
    assert process.returncode == 7, stderr
    state = json.loads((tmp_path / ".railtracks" / "app.json").read_text())
    fresh.wait_for(1)
    assert state["session"]["span_id"] in _span_ids(fresh), stderr


# -- fork ------------------------------------------------------------------------------

FORKING = """
import asyncio, multiprocessing, os, sys
import railtracks as rt

@rt.function_node
async def work(i: int) -> int:
    return i

def run(name: str, calls: int) -> None:
    @rt.session(name=name, logging_setting="QUIET", save_state=False)
    async def flow():
        for i in range(calls):
            await rt.call(work, i)
    asyncio.run(flow())

run("parent", 300)
pid = os.fork()
if pid == 0:
    run("forked", 200)
    sys.exit(0)
os.waitpid(pid, 0)
child = multiprocessing.get_context("fork").Process(target=run, args=("mp", 100))
child.start()
child.join()
print(child.exitcode)
"""


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_forked_children_export_their_spans_and_never_the_parents(
    fresh: Receiver, tmp_path: Path, protocol: str
) -> None:
    done = run_python(FORKING, tmp_path, _env(fresh.endpoint(protocol), protocol))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
    assert "Traceback" not in done.stderr
    fresh.wait_for(603)
    assert fresh.stats()[:2] == (301 + 201 + 101, 301 + 201 + 101)


# -- the outbox across processes -------------------------------------------------------

SMALL = """
import asyncio, sys, time
import railtracks as rt

@rt.function_node
async def work(i: int) -> int:
    return i

@rt.session(name="small", logging_setting="QUIET", save_state=False)
async def flow():
    for i in range(int(sys.argv[1])):
        await rt.call(work, i)

started = time.perf_counter()
asyncio.run(flow())
print(f"{time.perf_counter() - started:.3f}", flush=True)
time.sleep(float(sys.argv[2]))
"""


LINGER = "time.sleep(float(sys.argv[2]))"
DELAY = 2.0


def _small(cwd: Path, env: dict[str, str], calls: int, linger: float) -> str:
    done = run([PYTHON, "-c", SMALL, str(calls), str(linger)], cwd, env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_next_process_delivers_the_outbox_in_the_background(
    fresh: Receiver, tmp_path: Path
) -> None:
    env = _env(fresh.endpoint("http/protobuf"))
    fresh.set("refuse", status=503, retry_after=1)
    _small(tmp_path, env, 2000, 0)
    assert fresh.stats()[0] == 0
    assert "2001" in run([RAILTRACKS, "outbox"], tmp_path).stdout
    # every request now takes DELAY s: a backlog delivered before the run would make
    # the run take at least that long; beside it, 10 calls take milliseconds
    fresh.set("slow", delay=DELAY)
    process = subprocess.Popen(
        [PYTHON, "-c", SMALL.replace(LINGER, "sys.stdin.read()"), "10", "0"],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    took = float(process.stdout.readline())
    fresh.set("ok")
    # the process lives (until its stdin closes) while the backlog, a trace of its own,
    # arrives in the background; it exports its own 11 spans at exit at the latest
    arrived = wait_for_progress(lambda: _largest_trace(fresh), 2001)
    _, stderr = process.communicate("", timeout=600)
    assert process.returncode == 0, stderr
    assert arrived == 2001, stderr
    assert took < DELAY, took  # the backlog is delivered beside the run, not before it
    assert fresh.stats()[:2] == (2001 + 11, 2001 + 11)
    assert run([RAILTRACKS, "outbox"], tmp_path).stdout.startswith("the outbox is empty")


def test_a_crash_during_outbox_send_never_duplicates_a_span(
    fresh: Receiver, tmp_path: Path
) -> None:
    env = _env(fresh.endpoint("http/protobuf"))
    fresh.set("refuse", status=503, retry_after=1)
    _small(tmp_path, env, 5000, 0)
    fresh.set("slow", delay=0.3)
    sender = subprocess.Popen(
        [RAILTRACKS, "outbox", "send"], cwd=tmp_path, stdout=subprocess.DEVNULL
    )
    # two batches delivered (each takes 0.3 s): the third is in flight, or about to be
    assert wait_for_progress(lambda: fresh.stats().requests, 2, poll_max=0.02) >= 2
    time.sleep(0.1)  # most likely mid-request; either way the assertions below hold
    sender.kill()
    sender.wait(10)
    fresh.set("ok")
    again = run([RAILTRACKS, "outbox", "send"], tmp_path)
    listing = run([RAILTRACKS, "outbox"], tmp_path).stdout
    distinct, total, _, _ = fresh.stats()
    assert distinct == total  # at most once
    if again.returncode == 0:
        assert distinct == 5001
    else:  # the batch in flight when it died is kept, in doubt, not re-sent
        assert "in doubt" in again.stdout
        assert listing.splitlines()[1].split()[-1] != "0"
        assert distinct >= 5001 - 512


# -- flush and metrics -------------------------------------------------------------------


@rt.function_node
async def _work(i: int) -> int:
    return i


def test_flush_never_raises_and_keeps_its_timeout(
    fresh: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh.set("hang")
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", fresh.endpoint("http/protobuf") + "/v1/traces"
    )
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"http://127.0.0.1:{free_port()}/v1/metrics"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    rt.set_config(logging_setting="QUIET", save_state=False)

    @rt.session(name="flushing")
    async def flow() -> None:
        for i in range(600):
            await rt.call(_work, i)

    asyncio.run(flow())
    started = time.monotonic()
    assert rt.flush(1.0) is False
    # keeps its timeout: not the hung collector's 60 s (a bound a loaded machine never
    # reaches; the flush's own precision is the benchmark's business)
    assert time.monotonic() - started < 10

    async def ticking() -> tuple[bool, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        flushed = await rt.flush_async(0.5)
        ticker.cancel()
        return flushed, ticks

    flushed, ticks = asyncio.run(ticking())
    assert flushed is False
    assert ticks > 5  # the loop ran while the flush waited (a blocked loop: 0 or 1 tick)
    fresh.set("ok")


def test_metric_export_failures_are_one_warning_not_a_traceback(
    fresh: Receiver, tmp_path: Path
) -> None:
    fresh.set("ok", metrics_status=400)
    script = """
    import asyncio
    import railtracks as rt

    @rt.function_node
    async def work(i: int) -> int:
        return i

    @rt.session(name="metered", logging_setting="QUIET", save_state=False)
    async def flow():
        for i in range(10):
            await rt.call(work, i)

    asyncio.run(flow())
    print(rt.flush(5))
    """
    done = run_python(
        textwrap.dedent(script), tmp_path, _env(fresh.endpoint("http/protobuf"), metrics=True)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    warnings = [line for line in done.stderr.splitlines() if "exporting metrics" in line]
    assert len(warnings) == 1, done.stderr
    assert "1 failed" in warnings[0]
    assert "Traceback" not in done.stderr
    fresh.set("ok")


def test_spans_over_the_memory_bound_go_to_the_outbox(fresh: Receiver, tmp_path: Path) -> None:
    fresh.set("hang")
    env = {**_env(fresh.endpoint("http/protobuf")), "OTEL_BSP_MAX_QUEUE_SIZE": "1000"}
    script = SMALL.replace(LINGER, "print(rt.flush(0.1))")
    done = run([PYTHON, "-c", script, "5000", "0"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    listing = run([RAILTRACKS, "outbox"], tmp_path).stdout
    assert "5001" in listing  # spilled while the collector hung, the rest spooled at exit
    fresh.set("ok")
    # what was on the wire at exit is in doubt; the hung collector counted none of it
    assert run([RAILTRACKS, "outbox", "send", "--in-doubt"], tmp_path).returncode == 0
    assert fresh.stats()[:2] == (5001, 5001)


def test_export_counts_are_metrics_too(fresh: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    fresh.set("refuse", status=503, retry_after=1)
    reader = InMemoryMetricReader()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    rt.configure(endpoint=fresh.endpoint("http/protobuf"), metric_readers=[reader])
    rt.set_config(logging_setting="QUIET", save_state=False)

    @rt.session(name="counted")
    async def flow() -> None:
        for i in range(99):
            await rt.call(_work, i)

    asyncio.run(flow())
    assert rt.flush(10)
    data = reader.get_metrics_data()
    assert data is not None
    values = {
        metric.name: sum(point.value for point in metric.data.data_points)  # type: ignore[attr-defined]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name.startswith("railtracks.spans.")
    }
    assert values == {
        "railtracks.spans.exported": 0,
        "railtracks.spans.spooled": 100,
        "railtracks.spans.dropped": 0,
    }
    fresh.set("ok")


def test_sigterm_cancels_a_sync_session_too(fresh: Receiver, tmp_path: Path) -> None:
    script = """
    import time
    import railtracks as rt

    with rt.Session(name="sync", logging_setting="QUIET"):  # no event loop: plain code
        print("ready", flush=True)
        time.sleep(60)
    """
    process = _popen(script, tmp_path, _env(fresh.endpoint("http/protobuf")))
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0
    state = json.loads((tmp_path / ".railtracks" / "sync.json").read_text())
    assert state["session"]["status"] == "cancelled", stderr
    fresh.wait_for(1)
    assert state["session"]["span_id"] in _span_ids(fresh)
