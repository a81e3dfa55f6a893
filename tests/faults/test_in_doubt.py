"""At most once against slow collectors (SPEC 5, 7; issue 19): a request that timed out
may have been processed, so its batch waits *in doubt* and is sent again only with
``railtracks outbox send --in-doubt``.

The receiver's ``late`` mode processes and counts a request at once, then answers
only after a delay longer than the client's OTLP timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from railtracks.testing._receiver import Receiver
from tests.conftest import RAILTRACKS, run, run_python

CALLS = 300
SPANS = CALLS + 1

SESSION = f"""
import asyncio
import railtracks as rt

@rt.function_node
async def work(i: int) -> int:
    return i

@rt.session(name="late", logging_setting="QUIET", save_state=False)
async def flow():
    for i in range({CALLS}):
        await rt.call(work, i)
    return "done"

print(asyncio.run(flow())[0])
"""


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_batch_answered_after_the_timeout_is_in_doubt_and_never_duplicated(
    fresh: Receiver, tmp_path: Path, protocol: str
) -> None:
    fresh.set("late", delay=60)  # cut short by the next mode
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": fresh.endpoint(protocol),
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        "OTEL_METRICS_EXPORTER": "none",
    }
    done = run_python(SESSION, tmp_path, env, timeout=300)  # a bound on a hang only
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    # no request was answered in time; what the exit could not send at all
    # (a loaded machine) is spooled as ordinary batches and sent below
    live = fresh.stats().distinct
    assert 0 < live <= SPANS
    warnings = [line for line in done.stderr.splitlines() if "RT.Telemetry" in line]
    assert any("in doubt" in w and "--in-doubt" in w for w in warnings), done.stderr
    fresh.set("ok")
    listing = run([RAILTRACKS, "outbox"], tmp_path).stdout.splitlines()
    in_doubt = int(listing[1].split()[-2])  # IN DOUBT, then SET ASIDE
    assert in_doubt > 0
    sent = run([RAILTRACKS, "outbox", "send"], tmp_path)
    assert sent.returncode == 0, sent.stdout + sent.stderr  # nothing deliverable left
    assert "in doubt" in sent.stdout
    assert "--in-doubt" in sent.stdout
    distinct, total, _, _ = fresh.stats()
    assert (distinct, total) == (SPANS, SPANS)  # no duplicate span ids
    # asked explicitly: sent again (the collector had them: duplicates by request)
    again = run([RAILTRACKS, "outbox", "send", "--in-doubt"], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert fresh.stats().total == SPANS + in_doubt
    assert run([RAILTRACKS, "outbox"], tmp_path).stdout.startswith("the outbox is empty")
