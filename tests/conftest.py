"""Shared fixtures: every test runs in its own directory with railtracks' settings reset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import railtracks as rt

# A suite started in the background (nohup, `&` in a script, some CI runners)
# inherits SIGINT ignored, and so would every process a test starts: Python then
# never turns Ctrl-C into KeyboardInterrupt, and a test that stops a child with
# SIGINT (the run viewer's) would wait in vain. Handled here, SIGINT is back to
# its default in every child (exec resets a handled signal), as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RAILTRACKS = str(Path(sys.executable).with_name("railtracks"))


def run(
    command: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a command as a user would: its own process, this environment plus ``env``."""
    return subprocess.run(
        list(command),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def run_python(
    script: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with this interpreter in a fresh process."""
    return run([PYTHON, "-c", script], cwd, env, timeout)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory and no leftover configuration or environment."""
    for name in list(os.environ):
        if name.startswith(("RAILTRACKS_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    rt.testing.reset()
    yield tmp_path
    rt.testing.reset()


@pytest.fixture
def quiet() -> None:
    """Sessions print nothing unless a test asks for it."""
    rt.set_config(logging_setting="NONE")


def metric_points(reader: Any) -> dict[str, list[Any]]:
    """Every metric an ``InMemoryMetricReader`` holds, by name: its data points."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: list(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
