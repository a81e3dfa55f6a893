"""Shared fixtures: every test runs in its own directory with railtracks' settings reset."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import railtracks as rt

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


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
