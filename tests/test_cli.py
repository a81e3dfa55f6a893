"""The command line as a new user runs it: a subprocess, in an empty directory (SPEC 7)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from railtracks.testing._procs import free_port

from .conftest import PYTHON, RAILTRACKS, run


def railtracks(
    *args: str, cwd: Path, module: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    command = [PYTHON, "-m", "railtracks", *args] if module else [RAILTRACKS, *args]
    return run(command, cwd, env)


def test_demo_runs_prints_and_saves(tmp_path: Path) -> None:
    done = railtracks("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    result = json.loads("\n".join(lines[:-2]))
    assert result["reserved"] == ["reserved 2 x sku-espresso", "reserved 3 x sku-filters"]
    assert result["backordered"] == ["sku-grinder: wanted 1, 0 in stock"]
    assert re.fullmatch(r"session railtracks-demo completed: trace [0-9a-f]{32}", lines[-2])
    assert lines[-1] == "state saved to .railtracks/railtracks-demo.json"
    # console spans on stderr (REGULAR), including the handled failure
    assert "session railtracks-demo started trace=" in done.stderr
    assert "reserve failed" in done.stderr
    assert "OutOfStockError: sku-grinder" in done.stderr
    state = json.loads((tmp_path / ".railtracks" / "railtracks-demo.json").read_text())
    assert state["session"]["context"]["api_key"] == "[REDACTED]"
    assert (
        "sk-demo-not-a-secret"
        not in (tmp_path / ".railtracks" / "railtracks-demo.json").read_text()
    )
    second = railtracks("demo", cwd=tmp_path, module=True)
    assert second.returncode == 0
    warning = "File .railtracks/railtracks-demo.json already exists, overwriting..."
    assert f"RT.Session : WARNING - {warning}" in second.stderr


def test_runs_and_show(tmp_path: Path) -> None:
    empty = railtracks("runs", cwd=tmp_path)
    assert (empty.returncode, empty.stdout) == (0, "no saved runs in .railtracks/\n")
    assert railtracks("demo", cwd=tmp_path).returncode == 0
    (tmp_path / ".railtracks" / "broken.json").write_text("{")
    listed = railtracks("runs", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == [
        "NAME", "STATUS", "STARTED", "DURATION", "NODES", "FAILED", "TOKENS", "COST"
    ]  # fmt: skip
    demo_row = next(row.split() for row in rows if row.startswith("railtracks-demo"))
    assert demo_row[1] == "completed"
    assert demo_row[4:] == ["22", "1", "-", "-"]  # the demo calls no model
    assert any(row.split()[:2] == ["broken", "unreadable"] for row in rows)
    shown = railtracks("show", "railtracks-demo", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("session railtracks-demo  completed  ")
    assert "context: customer='acme-coffee', tier='gold', api_key='[REDACTED]'" in lines[1]
    assert lines[2] == (
        "  final context: customer='acme-coffee', tier='gold', api_key='[REDACTED]', backordered=1"
    )
    assert "  price_line  completed  " in lines[3]
    assert any(
        line.startswith("    reserve  failed  ") and "OutOfStockError" in line for line in lines
    )
    assert lines[-1].startswith('answer: {"reserved": ')
    by_path = railtracks("show", ".railtracks/railtracks-demo.json", cwd=tmp_path)
    assert by_path.stdout == shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("launch",), "invalid choice: 'launch'"),
        (("show",), "the following arguments are required: RUN"),
        (("show", "nope"), "no saved state 'nope'"),
        (("export", "nope"), "no saved state 'nope'"),
        (("runs", "--colour"), "unrecognized arguments: --colour"),
        (("export", "railtracks-demo"), "no endpoint: pass --endpoint URL"),
        (("export", "railtracks-demo", "--endpoint", "collector:4317"), "configure(endpoint=...)"),
        (("export", "railtracks-demo", "--protocol", "smoke"), "invalid choice: 'smoke'"),
        (("show", ".railtracks/broken.json"), "not a readable railtracks state"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    assert railtracks("demo", cwd=tmp_path).returncode == 0
    (tmp_path / ".railtracks" / "broken.json").write_text("{")
    done = railtracks(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("railtracks: error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_export_to_a_dead_endpoint_fails_in_one_line(tmp_path: Path) -> None:
    assert railtracks("demo", cwd=tmp_path).returncode == 0
    done = railtracks(
        "export",
        "railtracks-demo",
        "--endpoint",
        f"http://127.0.0.1:{free_port()}",
        "--protocol",
        "http/protobuf",
        cwd=tmp_path,
        OTEL_EXPORTER_OTLP_TIMEOUT="2",
    )
    assert done.returncode == 1
    assert done.stderr.startswith("railtracks: error: export to http://127.0.0.1:")
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_help_and_version(tmp_path: Path) -> None:
    done = railtracks("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("demo", "runs", "show", "export"):
        assert command in done.stdout
    version = railtracks("--version", cwd=tmp_path)
    assert version.stdout.startswith("railtracks ")
