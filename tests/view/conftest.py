"""Fixtures for the run viewer's tests: a real ``railtracks view`` process and a real browser.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``, installed by
``bash tests/backends/install_browser.sh``) driven by Playwright's bundled
driver: no browser is ever downloaded. One browser serves the whole test run;
each test gets a fresh context (no shared storage). Without chromium or
Playwright the browser tests skip, saying how to install them; with
``CI=true`` they fail instead.

Screenshots go to ``.artifacts/view/`` at the repository root (gitignored),
or to ``$RAILTRACKS_VIEW_ARTIFACTS``; each path is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from railtracks.testing._procs import chromium_path, launch_chromium, stop_process

from ..conftest import REPO

INSTALL_HINT = (
    "needs Debian's chromium and Playwright: bash tests/backends/install_browser.sh "
    "and pip install -e '.[test]' (or run bash tests/run.sh)"
)
# A generous bound on a wait for the viewer or the page: it ends as soon as what it
# waits for shows.
WAIT_S = 120.0
# A bound on a local process's exit after Ctrl-C (it takes well under a second):
# generous, yet short, as a viewer that never exits is a hang, not slowness.
EXIT_S = 30.0
ARTIFACTS = Path(os.environ.get("RAILTRACKS_VIEW_ARTIFACTS") or REPO / ".artifacts" / "view")


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {reason}; {INSTALL_HINT}")
    pytest.skip(f"{reason}: {INSTALL_HINT}")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless chromium for the viewer's tests.

    Package-scoped: while Playwright's sync API runs, the main thread has a
    running event loop, and any later test's ``asyncio.run`` would fail.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed")
    # Debian's package; RAILTRACKS_TEST_CHROMIUM overrides it only so that the skip/fail
    # rule can itself be tested
    if not os.access(chromium_path(), os.X_OK):
        _missing(f"{chromium_path()} not found")
    with sync_playwright() as playwright:
        instance = launch_chromium(playwright)
        try:
            yield instance
        finally:
            instance.close()


class Page:
    """A browser page that records every request, dialog and script error."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.page = context.new_page()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 860})
    # every wait on the page ends when its element shows; this only bounds a wait
    # that never would (Playwright's own default, 30 s, is a guess of a loaded
    # machine's speed)
    context.set_default_timeout(WAIT_S * 1000)
    try:
        yield Page(context)
    finally:
        context.close()


class Viewer:
    """A ``railtracks view --no-browser --port 0`` subprocess and the URL it printed."""

    def __init__(
        self, state_dir: Path, *args: str, browser: bool = False, env: dict[str, str] | None = None
    ) -> None:
        flags = [] if browser else ["--no-browser"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "railtracks", "view", *flags, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RAILTRACKS_STATE_DIR": str(state_dir), **(env or {})},
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        match = re.match(r"railtracks view: (http://127\.0\.0\.1:(\d+)/)(\S*)$", first.strip())
        if match is None:
            self.stop()
            raise AssertionError(f"unexpected first line {first!r}; stderr: {self.stderr()}")
        self.url, self.port, self.fragment = match.group(1), int(match.group(2)), match.group(3)
        self.endpoint = self.url.rstrip("/")

    def stderr(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def stop(self) -> None:
        stop_process(self.process, WAIT_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "states"
    directory.mkdir()
    return directory


@pytest.fixture
def viewer(state_dir: Path) -> Iterator[Viewer]:
    server = Viewer(state_dir)
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate: Any, timeout: float = WAIT_S, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it is true (its value) or ``timeout`` passes (its last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
