"""What ``import railtracks`` loads: the heavy parts wait until a run needs them (issue 11).

protobuf and the OTLP messages load with the first export, the export chain
(the batch processor, the outbox, ``http.client``) when spans are exported, the
metrics SDK when metrics go somewhere, loguru with the first record printed or
written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_HEAVY = (
    "loguru",
    "opentelemetry.sdk.metrics",
    "google.protobuf",
    "railtracks._delivery.otlp.batch",
    "railtracks._delivery.otlp.outbox",
    "http.client",
)

_PROBE = textwrap.dedent(
    """
    import asyncio, io, json, sys
    loaded = lambda: [m for m in {heavy!r} if m in sys.modules]
    import railtracks as rt
    after_import = loaded()
    rt.configure(console_stream=io.StringIO(), export=False)

    @rt.function_node
    async def step(x: int) -> int:
        return x

    async def main() -> None:
        async with rt.Session(logging_setting="NONE", save_state=False):
            await rt.call(step, 1)

    asyncio.run(main())
    after_run = loaded()
    print(json.dumps({{"after_import": after_import, "after_run": after_run}}))
    """
).format(heavy=_HEAVY)


def test_a_quiet_run_without_export_loads_no_heavy_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"after_import": [], "after_run": []}


def test_a_printed_record_loads_loguru() -> None:
    probe = (
        "import sys, railtracks._logs.log as log; "
        "log.emit('WARNING', 'Test', 'hello', setting=None); "
        "print('loguru' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "True"
    assert "hello" in out.stderr
