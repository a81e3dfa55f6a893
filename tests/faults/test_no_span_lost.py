"""No span lost, ever (SPEC 5, 7): a 20,000-call session that exits at once, against
a collector that is slow, refusing, hanging, restarting or not there.

Every case ends with exactly 20,001 distinct spans at the receiver, directly or
after ``railtracks outbox send``, and never a duplicate. One receiver process
serves the whole test session (tests/faults/conftest.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from railtracks.testing._procs import free_port
from railtracks.testing._receiver import Receiver, otlp_receiver_process
from tests.conftest import RAILTRACKS, run, run_python

CALLS = 20_000
SPANS = CALLS + 1

BURST = f"""
import asyncio, time
import railtracks as rt

@rt.function_node
async def work(i: int) -> int:
    return i

@rt.session(name="burst", logging_setting="QUIET", save_state=False)
async def flow():
    total = 0
    for i in range({CALLS}):
        total += await rt.call(work, i)
    return total

print(asyncio.run(flow())[0])
"""


def _env(endpoint: str, protocol: str, **extra: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_METRICS_EXPORTER": "none",
        **extra,
    }


def _burst(cwd: Path, env: dict[str, str]) -> tuple[float, Any]:
    started = time.monotonic()
    done = run_python(BURST, cwd, env, timeout=900)  # a bound on a hang, not on speed
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sum(range(CALLS)))
    assert "Traceback" not in done.stderr
    return elapsed, done


def _send_outbox(cwd: Path, protocol: str, *extra: str) -> Any:
    return run([RAILTRACKS, "outbox", "send", "--protocol", protocol, *extra], cwd, timeout=900)


FAULTS: dict[str, dict[str, Any]] = {
    "slow": {"kind": "slow", "delay": 0.05},
    "503-around-exit": {"kind": "refuse", "status": 503, "retry_after": 1, "seconds": 3},
    "503-throughout": {"kind": "refuse", "status": 503, "retry_after": 1},
    "429-throughout": {"kind": "refuse", "status": 429, "retry_after": 2},
    "hang": {"kind": "hang"},
    "restart": {"kind": "restart", "after": 5, "down": 2.0},
}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
@pytest.mark.parametrize("fault", [*FAULTS, "closed-port"])
def test_every_span_arrives_exactly_once_whatever_the_collector_does(
    fresh: Receiver, tmp_path: Path, fault: str, protocol: str
) -> None:
    if fault == "closed-port":
        endpoint = f"http://127.0.0.1:{free_port()}"
    else:
        endpoint = fresh.endpoint(protocol)
        fresh.set(**FAULTS[fault])
    _elapsed, done = _burst(tmp_path, _env(endpoint, protocol))
    distinct, total, _, _ = fresh.stats()
    warnings = [line for line in done.stderr.splitlines() if "RT.Telemetry" in line]
    if distinct < SPANS:
        # what did not arrive is in the outbox, and the warning says so with counts: once,
        # or (when the problem outlasted 5 s of the run) once then and once at exit
        assert 1 <= len(warnings) <= 2, done.stderr
        assert all("spooled" in w and "exported" in w and "dropped" in w for w in warnings)
        assert warnings[-1].endswith("delivers them"), done.stderr
        fresh.set("ok")
        if fault == "closed-port":
            sent = run([RAILTRACKS, "outbox", "send", "--endpoint", endpoint], tmp_path)
            assert sent.returncode == 1  # still nobody listening: everything stays
            listing = run([RAILTRACKS, "outbox"], tmp_path)
            assert str(SPANS) in listing.stdout
            port = int(endpoint.rsplit(":", 1)[1])
            ports = {"grpc_port": port} if protocol == "grpc" else {"http_port": port}
            with otlp_receiver_process(**ports) as later:  # the collector comes up at last
                sent = _send_outbox(tmp_path, protocol)
                assert sent.returncode == 0, sent.stdout + sent.stderr
                assert later.stats()[:2] == (SPANS, SPANS)
            assert run([RAILTRACKS, "outbox"], tmp_path).stdout.startswith("the outbox is empty")
            return
        sent = _send_outbox(tmp_path, protocol)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        if fault == "hang":  # what was on the wire at exit is in doubt; this collector
            # counts nothing it hangs on, so sending it anyway is exactly once
            assert "--in-doubt" in sent.stdout
            sent = _send_outbox(tmp_path, protocol, "--in-doubt")
            assert sent.returncode == 0, sent.stdout + sent.stderr
        distinct, total, _, _ = fresh.stats()
    assert (distinct, total) == (SPANS, SPANS)
    assert run([RAILTRACKS, "outbox"], tmp_path).stdout.startswith("the outbox is empty")
