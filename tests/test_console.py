"""Console output for each logging_setting, compared exactly with times and ids masked (SPEC 4)."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest

import railtracks as rt
from railtracks._delivery.console import ConsoleSpanProcessor

from .conftest import run_python
from .test_seed import EXAMPLES, GREET, PREAMBLE

EXAMPLE_1 = (EXAMPLES / "example_1_decorator.py").read_text()


def _mask(text: str) -> str:
    text = re.sub(r"\b[0-9a-f]{32}\b", "<trace>", text)
    text = re.sub(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<id>", text)
    return re.sub(r"\b\d+\.\d+(ms|s|min)\b", "<t>", text)


def _stderr(script: str, cwd: Path, **env: str) -> str:
    done = run_python(PREAMBLE + script, cwd, env)
    assert done.returncode == 0, done.stderr
    return _mask(done.stderr)


EXPECTED = {
    "VERBOSE": """\
session started id=<id>
RT.Session : DEBUG - session <id> started (trace <trace>)
  greet started
    input: {"name":"Alice"}
  greet completed <t>
    output: "Hello, Alice!"
session completed <t>
  answer: "Hello, Alice!"
RT.Session : DEBUG - state saved to .railtracks/<id>.json
""",
    "REGULAR": """\
session started trace=<trace>
  greet completed <t> -> "Hello, Alice!"
session completed <t> -> "Hello, Alice!"
""",
    "QUIET": "",
    "NONE": "",
}


@pytest.mark.parametrize("setting", list(EXPECTED))
def test_seed_example_console_per_setting(setting: str, tmp_path: Path) -> None:
    assert _stderr(EXAMPLE_1, tmp_path, RAILTRACKS_LOGGING_SETTING=setting) == EXPECTED[setting]


@pytest.mark.parametrize(("alias", "setting"), [("debug", "VERBOSE"), ("info", "REGULAR")])
def test_aliases_print_like_their_setting(alias: str, setting: str, tmp_path: Path) -> None:
    assert _stderr(EXAMPLE_1, tmp_path, RAILTRACKS_LOGGING_SETTING=alias) == EXPECTED[setting]


def test_quiet_seed_examples_print_only_the_overwrite_warning(tmp_path: Path) -> None:
    script = GREET + (EXAMPLES / "example_2_configured.py").read_text()
    script += (EXAMPLES / "example_4_context_manager.py").read_text()
    warning = "File .railtracks/my-unique-run.json already exists, overwriting..."
    assert _stderr(script, tmp_path) == f"RT.Session : WARNING - {warning}\n"


FAILING = """
@rt.function_node
async def ok() -> int:
    return 1

@rt.function_node
async def broken() -> None:
    raise ValueError("bad input")

@rt.session(name="run", logging_setting=SETTING)
async def flow():
    await rt.call(ok)
    try:
        await rt.call(broken)
    except ValueError:
        pass
    await rt.call(broken)

for _ in range(2):
    try:
        asyncio.run(flow())
    except ValueError:
        pass
"""


def test_quiet_prints_failures_and_warnings_only(tmp_path: Path) -> None:
    assert (
        _stderr(FAILING.replace("SETTING", '"QUIET"'), tmp_path)
        == """\
  broken failed <t> ValueError: bad input
  broken failed <t> ValueError: bad input
session run failed <t> ValueError: bad input
  broken failed <t> ValueError: bad input
  broken failed <t> ValueError: bad input
session run failed <t> ValueError: bad input
RT.Session : WARNING - File .railtracks/run.json already exists, overwriting...
"""
    )


def test_regular_indents_by_depth_and_prints_failures(tmp_path: Path) -> None:
    assert (
        _stderr(FAILING.replace("SETTING", '"REGULAR"').replace("range(2)", "range(1)"), tmp_path)
        == """\
session run started trace=<trace>
  ok completed <t> -> 1
  broken failed <t> ValueError: bad input
  broken failed <t> ValueError: bad input
session run failed <t> ValueError: bad input
"""
    )


def test_none_prints_nothing_at_all(tmp_path: Path) -> None:
    assert _stderr(FAILING.replace("SETTING", '"NONE"'), tmp_path) == ""


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _printed(stream: io.StringIO) -> str:
    rt.configure(console_stream=stream)

    @rt.session(name="colours", save_state=False)
    async def flow() -> int:
        return await rt.call(lambda: 1)

    asyncio.run(flow())
    return stream.getvalue()


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = _printed(FakeTerminal())
    assert "\033[32mcompleted\033[0m" in coloured
    assert "\033[" not in _printed(io.StringIO()), "not a terminal: no colour"
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\033[" not in _printed(FakeTerminal()), "NO_COLOR wins"
    plain = re.sub(r"\033\[[0-9;]*m", "", coloured)
    assert _mask(plain) == _mask(_printed(io.StringIO()))


def test_any_text_stream_and_a_broken_one() -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    assert "session colours completed" in _printed(io.StringIO())
    assert _printed(Broken()) == ""


def test_nested_session_lines_are_indented_under_the_calling_node() -> None:
    stream = io.StringIO()
    rt.configure(console_stream=stream)

    @rt.session(name="inner", save_state=False)
    async def inner() -> int:
        return await rt.call(lambda: 2)

    @rt.function_node
    async def calls_inner() -> int:
        result, _ = await inner()
        return result

    @rt.session(name="outer", save_state=False)
    async def outer() -> int:
        return await rt.call(calls_inner)

    asyncio.run(outer())
    assert (
        _mask(stream.getvalue())
        == """\
session outer started trace=<trace>
    session inner started trace=<trace>
      <lambda> completed <t> -> 2
    session inner completed <t> -> 2
  calls_inner completed <t> -> 2
session outer completed <t> -> 2
"""
    )


def test_processor_ignores_spans_of_other_instrumentation() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    stream = io.StringIO()
    provider = TracerProvider()
    provider.add_span_processor(ConsoleSpanProcessor(lambda: stream))
    with provider.get_tracer("someone-else").start_as_current_span("GET /"):
        pass
    assert stream.getvalue() == ""
