"""railtracks' records print once on the terminal in each common set-up (SPEC 4).

Each set-up runs as a user's script in its own process; the lines on stderr
are counted. Host file sinks (loguru and stdlib) receive the records, under one
logger name, with the session's trace id.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .conftest import run_python

SETUPS = {
    "nothing configured": "",
    "loguru's default handler": """
        from loguru import logger
        logger.info("host says hi")
    """,
    "loguru's default handler and a file sink": """
        from loguru import logger
        logger.configure(extra={"trace_id": "-"})
        logger.add("app.log", format="{name} {level} {extra[trace_id]} {message}")
        logger.info("host says hi")
    """,
    "logging.basicConfig": """
        import logging
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("app").info("host says hi")
    """,
    "loguru and stdlib both configured": """
        import logging, sys
        from loguru import logger
        logger.remove()
        logger.configure(extra={"trace_id": "-"})
        logger.add(sys.stderr, format="HOST {level} {message}")
        logger.add("app.log", format="{name} {level} {extra[trace_id]} {message}")

        class Ids(logging.Filter):
            def filter(self, record):
                record.trace_id = getattr(record, "trace_id", "-")
                return True

        to_file = logging.FileHandler("std.log")
        to_file.addFilter(Ids())
        to_file.setFormatter(logging.Formatter("%(name)s %(levelname)s %(trace_id)s %(message)s"))
        logging.basicConfig(level=logging.DEBUG, handlers=[logging.StreamHandler(), to_file])
        logging.getLogger("app").info("host says hi")
    """,
}

FLOW = textwrap.dedent(
    """
    import asyncio, json
    import railtracks as rt

    def callback(message):
        raise ConnectionError("ui gone")

    @rt.session(name="twice", logging_setting="QUIET", broadcast_callback=callback)
    async def flow():
        await rt.broadcast("hello")
        return 1

    traces = [asyncio.run(flow())[1].trace_id for _ in range(2)]
    print(json.dumps(traces))
    """
)

OVERWRITE = "RT.Session : WARNING - File .railtracks/twice.json already exists, overwriting..."
BROADCAST = "RT.Session : ERROR - broadcast_callback failed: ConnectionError: ui gone"


@pytest.mark.parametrize("setup", list(SETUPS))
def test_records_print_once_on_stderr_and_reach_host_files(tmp_path: Path, setup: str) -> None:
    done = run_python(textwrap.dedent(SETUPS[setup]) + FLOW, tmp_path)
    assert done.returncode == 0, done.stderr
    traces = json.loads(done.stdout)
    lines = done.stderr.splitlines()
    assert lines.count(OVERWRITE) == 1, done.stderr
    assert lines.count(BROADCAST) == 2, done.stderr
    assert done.stderr.count("already exists, overwriting") == 1, done.stderr
    assert done.stderr.count("broadcast_callback failed") == 2, done.stderr
    if "hi" in SETUPS[setup]:
        assert done.stderr.count("host says hi") == 1, "the host's own records are untouched"
    files = {
        "loguru's default handler and a file sink": ["app.log"],
        "loguru and stdlib both configured": ["app.log", "std.log"],
    }.get(setup, [])
    for name in files:
        text = (tmp_path / name).read_text().splitlines()
        overwrite = [line for line in text if "already exists, overwriting" in line]
        # one logger name in loguru and stdlib; the session's trace id, never zeros
        assert overwrite == [
            f"railtracks.session WARNING {traces[1]} File .railtracks/twice.json"
            " already exists, overwriting..."
        ], text
        assert sum("broadcast_callback failed" in line for line in text) == 2, text
        failed = [line for line in text if "broadcast_callback failed" in line]
        assert [line.split()[2] for line in failed] != ["0" * 32] * 2
