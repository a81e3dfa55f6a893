"""SPEC 7: nothing a run or a file holds can drive the terminal.

An escape matrix: hostile control sequences in node names, exception messages,
context keys and values, outputs and crafted state files, through the console
printer (colour on), ``railtracks show`` and ``railtracks runs`` run as
subprocesses. Only railtracks' own colour codes may reach the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from pathlib import Path

import pytest

import railtracks as rt
from railtracks._logs.terminal import inert

from .conftest import RAILTRACKS, run

HOSTILE = {
    "clear screen": "\x1b[2J\x1b[H",
    "window title": "\x1b]0;pwned\x07",
    "hyperlink": "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "bell": "\x07",
    "carriage return": "fake ok\r",
    "C1 CSI": "\x9b31m",
    "backspace": "abc\x08\x08",
    "bidi override": "\u202eevil",
    "NUL": "a\x00b",
    "newline": "line1\nRT.Session : ERROR - forged",
}
# What may reach a terminal: printable text, newlines ending lines, our own SGR colours.
_OURS = re.compile(r"\x1b\[(?:0|1|2|31|32|33)m")
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _assert_inert(output: str) -> None:
    bad = _CONTROL.findall(_OURS.sub("", output))
    assert bad == [], (bad, output[:2000])
    assert "\nRT.Session : ERROR - forged" not in output  # no forged line either


@pytest.mark.parametrize("name", list(HOSTILE))
def test_inert_makes_every_control_visible(name: str) -> None:
    text = HOSTILE[name]
    shown = inert(text)
    assert _CONTROL.search(shown) is None
    assert "\n" not in shown
    assert shown != text


def test_inert_leaves_printable_text_alone() -> None:
    for text in ["plain", "naïve café — 東京", "emoji 🚂", ""]:
        assert inert(text) is text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _hostile_run(tmp_path: Path, setting: str) -> rt.Session:
    payload = "".join(HOSTILE.values())

    @rt.function_node(name=f"node{HOSTILE['clear screen']}{HOSTILE['C1 CSI']}")
    async def node(value: str) -> str:
        return value

    @rt.function_node(name=f"fails{HOSTILE['window title']}")
    async def fails() -> None:
        raise RuntimeError(payload)

    @rt.session(
        name="escapes",
        logging_setting=setting,
        context={f"key{HOSTILE['hyperlink']}": payload, "plain": payload},
    )
    async def flow() -> str:
        await rt.call(node, payload)
        rt.context.put(f"k{HOSTILE['bell']}", payload)
        with contextlib.suppress(RuntimeError):
            await rt.call(fails)
        return payload

    _, session = asyncio.run(flow())
    return session


@pytest.mark.parametrize("setting", ["VERBOSE", "REGULAR", "QUIET"])
def test_console_prints_hostile_strings_inert(
    tmp_path: Path, setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR")
    terminal = _Terminal()
    rt.configure(console_stream=terminal)
    _hostile_run(tmp_path, setting)
    output = terminal.getvalue()
    assert output
    if setting != "QUIET":
        assert _OURS.search(output)  # colours are still ours to use
    _assert_inert(output)
    assert "\\x1b[2J" in output or setting == "QUIET"  # shown, not obeyed


def test_show_and_runs_print_a_hostile_run_inert(tmp_path: Path) -> None:
    rt.configure(console_stream=io.StringIO())
    session = _hostile_run(tmp_path, "NONE")
    assert session.state_path is not None
    shown = run([RAILTRACKS, "show", "escapes"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "fails" in shown.stdout
    _assert_inert(shown.stdout)
    listed = run([RAILTRACKS, "runs"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    _assert_inert(listed.stdout)


def test_show_and_runs_on_a_crafted_state(tmp_path: Path) -> None:
    rt.configure(console_stream=io.StringIO())
    session = _hostile_run(tmp_path, "NONE")
    assert session.state_path is not None
    assert rt.flush(30)  # the state file is complete once flush returns
    state = json.loads(session.state_path.read_text())
    evil = "".join(HOSTILE.values())
    state["session"]["name"] = evil
    state["session"]["span_name"] = evil
    state["session"]["started_at"] = evil
    state["session"]["trace_id"] = "0" * 32
    state["nodes"][0]["name"] = evil
    state["nodes"][0]["output"] = {evil: evil}
    directory = tmp_path / ".railtracks"
    (directory / "crafted.json").write_text(json.dumps(state))
    (directory / f"file{HOSTILE['clear screen']}.json").write_text("{")  # a hostile file name
    shown = run([RAILTRACKS, "show", str(directory / "crafted.json")], tmp_path)
    assert shown.returncode == 0, shown.stderr
    _assert_inert(shown.stdout)
    listed = run([RAILTRACKS, "runs"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    _assert_inert(listed.stdout)
    assert "unreadable" in listed.stdout
    missing = run([RAILTRACKS, "show", f"nope{HOSTILE['window title']}"], tmp_path)
    assert missing.returncode == 2
    _assert_inert(missing.stderr)


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    directory = tmp_path / ".railtracks"
    directory.mkdir()
    rt.configure(console_stream=io.StringIO(), state_dir=directory)

    @rt.function_node
    async def step(i: int) -> int:
        return i

    @rt.session(name="long")
    async def flow() -> None:
        for i in range(3000):
            await rt.call(step, i)

    asyncio.run(flow())
    done = run(
        ["bash", "-c", f"'{RAILTRACKS}' show long --all | head -n 2; exit ${{PIPESTATUS[0]}}"],
        tmp_path,
    )
    assert len(done.stdout.splitlines()) == 2
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
    assert done.stderr == ""
    assert done.returncode in (0, 141)
