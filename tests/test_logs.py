"""railtracks' records through loguru: printed once, the host's handlers untouched (SPEC 4)."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks.testing import SpanCapture

from .conftest import run_python

OVERWRITE = "File .railtracks/twice.json already exists, overwriting..."

HOST_APP = textwrap.dedent(
    """
    import asyncio, sys
    from loguru import logger
    import railtracks as rt

    logger.remove()
    seen = []
    logger.add(seen.append, format="{level}|{message}|{extra}")
    logger.add(sys.stdout, format="HOST {level} {message}")

    @rt.session(name="twice", logging_setting="QUIET")
    async def flow():
        logger.info("host inside the session")
        return await rt.call(lambda: 1)

    logger.info("host before")
    for _ in range(2):
        asyncio.run(flow())
    logger.warning("host after")
    for line in seen:
        print("SEEN", line.split("|{")[0].strip())
    """
)


def test_host_loguru_handlers_see_their_records_unchanged_and_ours_once(tmp_path: Path) -> None:
    done = run_python(HOST_APP, tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert [line for line in out if line.startswith("HOST")] == [
        "HOST INFO host before",
        "HOST INFO host inside the session",
        "HOST INFO host inside the session",
        f"HOST WARNING {OVERWRITE}",
        "HOST WARNING host after",
    ]
    assert [line for line in out if line.startswith("SEEN")] == [
        "SEEN INFO|host before",
        "SEEN INFO|host inside the session",
        "SEEN INFO|host inside the session",
        f"SEEN WARNING|{OVERWRITE}",
        "SEEN WARNING|host after",
    ]
    # railtracks' own console line, exactly once, in its own format
    assert done.stderr == f"RT.Session : WARNING - {OVERWRITE}\n"


def test_untouched_loguru_prints_our_records_once(tmp_path: Path) -> None:
    script = HOST_APP.replace("logger.remove()", "").replace(
        'logger.add(sys.stdout, format="HOST {level} {message}")', ""
    )
    script = script.replace('logger.add(seen.append, format="{level}|{message}|{extra}")', "")
    done = run_python(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(OVERWRITE) == 1, done.stderr
    assert f"RT.Session : WARNING - {OVERWRITE}" in done.stderr.splitlines()
    assert done.stderr.count("host before") == 1, "the host's own records still print"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def stdlib_records() -> Any:
    handler = Collect()
    logger = logging.getLogger("railtracks")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)


def test_stdlib_logging_receives_railtracks_records(
    stdlib_records: list[logging.LogRecord],
) -> None:
    @rt.session(name="twice", logging_setting="QUIET")
    async def flow() -> None:
        return None

    asyncio.run(flow())
    asyncio.run(flow())
    warnings = [r for r in stdlib_records if r.levelno == logging.WARNING]
    assert [(r.name, r.getMessage()) for r in warnings] == [("railtracks.session", OVERWRITE)]


def test_records_inside_a_node_carry_its_trace_and_span_ids(
    stdlib_records: list[logging.LogRecord], rt_spans: SpanCapture
) -> None:
    @rt.function_node
    async def remember() -> None:
        rt.context.put("plan", "gold")

    @rt.session(name="ids", logging_setting="VERBOSE", save_state=False)
    async def flow() -> None:
        await rt.call(remember)

    asyncio.run(flow())
    (record,) = [r for r in stdlib_records if r.getMessage() == "put: plan"]
    (span,) = rt_spans.named("remember")
    assert record.trace_id == format(span.context.trace_id, "032x")  # type: ignore[attr-defined]  # set by railtracks
    assert record.span_id == format(span.context.span_id, "016x")  # type: ignore[attr-defined]  # set by railtracks


def test_warnings_and_worse_become_span_events(rt_spans: SpanCapture) -> None:
    def broken(message: Any) -> None:
        raise ConnectionError("ui gone")

    @rt.function_node
    async def notify() -> None:
        await rt.broadcast("hello")

    @rt.session(name="events", broadcast_callback=broken, logging_setting="NONE")
    async def flow() -> None:
        await rt.call(notify)

    asyncio.run(flow())
    (span,) = rt_spans.named("notify")
    logs = [dict(e.attributes or {}) for e in span.events if e.name == attr.EVENT_LOG]
    assert logs == [
        {
            attr.LOG_LEVEL: "ERROR",
            attr.LOG_MESSAGE: "broadcast_callback failed: ConnectionError: ui gone",
            attr.LOG_COMPONENT: "Session",
        }
    ]


def test_logging_setting_sets_the_level_of_library_logs(
    stdlib_records: list[logging.LogRecord],
) -> None:
    async def flow(setting: str) -> None:
        with rt.Session(name="levels", logging_setting=setting):
            await rt.call(lambda: 1)

    asyncio.run(flow("NONE"))  # from now on, each run overwrites and warns
    rt.flush()
    for setting in ("VERBOSE", "REGULAR", "QUIET", "NONE"):
        stdlib_records.clear()
        asyncio.run(flow(setting))
        rt.flush()  # the state writer's "state saved" belongs to this run
        levels = {r.levelname for r in stdlib_records}
        if setting == "VERBOSE":
            assert levels == {"DEBUG", "WARNING"}
        elif setting in ("REGULAR", "QUIET"):
            assert levels == {"WARNING"}, setting
        else:
            assert levels == set()


def test_log_file_gets_the_sessions_records(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "run.log"

    @rt.function_node
    async def step() -> None:
        rt.context.put("k", 1)

    @rt.session(name="filed", log_file=log_file, logging_setting="QUIET")
    async def flow() -> None:
        await rt.call(step)

    asyncio.run(flow())
    asyncio.run(flow())
    text = log_file.read_text()
    assert text.count("RT.Context : DEBUG - put: k") == 2
    assert text.count("RT.Session : WARNING - File .railtracks/filed.json already exists") == 1
    assert "trace_id=" in text


def test_an_unwritable_log_file_does_not_break_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")

    @rt.session(log_file=blocker / "sub" / "run.log", logging_setting="NONE")
    async def flow() -> int:
        return 5

    result, session = asyncio.run(flow())
    assert (result, session.status) == (5, "completed")
