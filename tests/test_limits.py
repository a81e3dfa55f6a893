"""SPEC 3 "Limits never lose identity", SPEC 6 names in bytes and a full disk.

Whatever the number or size of context keys and events, every span keeps
railtracks' identity attributes, and what a bound cut is counted on the span
and in the state. A full disk (a small tmpfs when the test may mount one,
``/dev/full`` otherwise) never changes a run's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks.testing import SpanCapture

from .conftest import run_python


def test_many_context_keys_never_evict_identity(rt_spans: SpanCapture) -> None:
    rt.configure(console_stream=io.StringIO())
    context: dict[str, object] = {
        f"long{'x' * 1_000_000}": "big key",
        f"{'y' * 300}_password": "hidden-behind-a-long-key",  # cut to 256, still judged whole
    }
    context.update({f"key{i:03d}": i for i in range(500)})

    @rt.function_node
    async def node() -> str:
        for i in range(500):
            rt.context.put(f"change{i}", i)
        return "ok"

    @rt.session(name="wide", context=context)
    async def flow() -> str:
        return await rt.call(node)

    result, session = asyncio.run(flow())
    assert result == "ok"
    for span in rt_spans.spans(session):
        attributes = span.attributes or {}
        assert attributes[attr.SESSION_ID] == session.identifier
        assert attributes[attr.STATUS] == "completed"
        assert len(attributes) < 128
        assert span.dropped_attributes == 0  # the SDK never had to evict anything
        assert all(len(key) < 400 for key in attributes)
    (node_span,) = rt_spans.named("node")
    assert (node_span.attributes or {})[attr.NODE_NAME] == "node"
    assert (node_span.attributes or {})[attr.DROPPED_CONTEXT_KEYS] > 400
    assert (node_span.attributes or {})[attr.DROPPED_EVENTS] > 300
    state = session.state
    assert state is not None
    assert state["session"]["identifier"] == session.identifier
    assert all(len(key) <= 256 for key in state["session"]["context"])
    assert "big key" not in str(state)  # a key too long to judge is treated as sensitive
    assert "hidden-behind-a-long-key" not in str(state)
    assert state["session"]["dropped"]["context_keys"] == 502 - len(state["session"]["context"])
    recorded = len(state["nodes"][0]["context_changes"])
    assert state["nodes"][0]["dropped"]["events"] == 500 - recorded


def test_an_oversized_int_in_the_context_never_raises() -> None:
    rt.configure(console_stream=io.StringIO())

    @rt.session(name="huge-int", context={"n": 10**5000})
    async def flow() -> int:
        return await rt.call(lambda: 1)

    result, session = asyncio.run(flow())
    assert result == 1
    assert session.state is not None
    assert str(session.state["session"]["context"]["n"]).startswith("0x")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("é" * 125, True),  # 250 bytes: the longest that fits beside ".json"
        ("é" * 126, False),  # 126 characters, 252 bytes
        ("🚂" * 63, False),  # 63 characters, 252 bytes
        ("name-\udcff", False),  # not encodable: no file could be named after it
    ],
)
def test_names_are_checked_in_bytes(name: str, ok: bool) -> None:
    rt.configure(console_stream=io.StringIO())
    if not ok:
        with pytest.raises(rt.errors.ConfigurationError, match="name"):
            rt.Session(name=name)
        return

    async def flow() -> None:
        with rt.Session(name=name) as session:
            await rt.call(lambda: 1)
        assert session.state_path is not None
        assert await rt.flush_async(30)  # the writer thread has written the file then
        assert session.state_path.is_file()

    asyncio.run(flow())


@contextlib.contextmanager
def _full_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 64 KiB tmpfs, already full; skipped when mounting is not permitted."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); /dev/full covers")
    try:
        with contextlib.suppress(OSError), (mount / "filler").open("wb") as filler:
            while True:
                filler.write(b"x" * 4096)
                filler.flush()
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


_SCRIPT = """
import asyncio, railtracks as rt
@rt.function_node
async def work(x): return x * 2
@rt.session(name="full", log_file={log!r}, logging_setting="QUIET")
async def flow():
    return sum([await rt.call(work, i) for i in range(50)])
print(asyncio.run(flow())[0])
"""


def test_a_full_disk_for_the_state_and_the_log_file(tmp_path: Path) -> None:
    with _full_directory(tmp_path) as full:
        done = run_python(
            _SCRIPT.format(log=str(full / "run.log")),
            tmp_path,
            {"RAILTRACKS_STATE_DIR": str(full / "states")},
        )
        leftovers = sorted(p.name for p in full.rglob("*") if p.name != "filler")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sum(i * 2 for i in range(50)))
    errors = done.stderr.splitlines()
    assert "Traceback" not in done.stderr
    assert "Logging error" not in done.stderr
    assert any("could not save state" in line for line in errors), done.stderr
    assert len(errors) <= 3, done.stderr
    assert not [name for name in leftovers if name.endswith(".tmp")]


def test_log_file_on_dev_full_never_changes_the_outcome(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    done = run_python(_SCRIPT.format(log="/dev/full"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sum(i * 2 for i in range(50)))
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("RT.Session : ERROR - log file /dev/full:"), lines[0]
    assert "No space left on device" in lines[0]


def test_an_unwritable_state_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    done = run_python(
        _SCRIPT.format(log=str(tmp_path / f"{uuid.uuid4()}.log")),
        tmp_path,
        {"RAILTRACKS_STATE_DIR": str(blocker / "states")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sum(i * 2 for i in range(50)))
    assert done.stderr.count("RT.Session : ERROR - could not save state") == 1, done.stderr


def test_log_file_and_state_are_private(tmp_path: Path) -> None:
    rt.configure(console_stream=io.StringIO())
    log = tmp_path / "logs" / "run.log"

    @rt.session(name="private", log_file=log)
    async def flow() -> int:
        return await rt.call(lambda: 1)

    _, session = asyncio.run(flow())
    assert session.state_path is not None
    assert rt.flush(30)  # the writer thread has written the file then
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(session.state_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(session.state_path.parent.stat().st_mode) == 0o700
    assert "RT.Session" in log.read_text()
