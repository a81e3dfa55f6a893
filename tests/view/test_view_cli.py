"""``railtracks view`` as a user runs it: a subprocess, its printed URL, its errors."""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..conftest import RAILTRACKS, run
from .conftest import EXIT_S, Viewer, wait_for
from .states import big_state


def test_serves_on_loopback_and_stops_on_ctrl_c(state_dir: Path) -> None:
    big_state(state_dir / "tiny.json", parents=2, children=2)
    viewer = Viewer(state_dir)
    try:
        assert viewer.port > 0
        with urllib.request.urlopen(viewer.url, timeout=60) as response:
            assert response.status == 200
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            page = response.read().decode()
        assert '<script src="/static/viewer.js">' in page
        assert "http" not in page.replace(viewer.url, "")  # nothing loads from elsewhere
        with urllib.request.urlopen(viewer.url + "api/runs", timeout=60) as response:
            runs = json.loads(response.read())["runs"]
        assert [(r["name"], r["status"], r["nodes"]) for r in runs] == [("tiny", "completed", 6)]
        viewer.process.send_signal(signal.SIGINT)
        assert viewer.process.wait(EXIT_S) == 0
        assert "Traceback" not in viewer.stderr()
    finally:
        viewer.stop()


def test_opening_one_run_prints_its_url(state_dir: Path) -> None:
    big_state(state_dir / "one run.json", parents=1, children=1)
    viewer = Viewer(state_dir, "one run")
    try:
        assert viewer.fragment == "#/run/saved/one%20run"
    finally:
        viewer.stop()


def test_the_browser_is_opened_on_the_run(state_dir: Path, tmp_path: Path) -> None:
    big_state(state_dir / "shown.json", parents=1, children=1)
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
    browser.chmod(0o755)
    viewer = Viewer(state_dir, "shown", browser=True, env={"BROWSER": f"{browser} %s"})
    try:
        assert wait_for(opened.exists)
        assert wait_for(lambda: opened.read_text() == f"{viewer.url}#/run/saved/shown")
    finally:
        viewer.stop()
    # no display and no BROWSER: never a console browser in this terminal, one line instead
    quiet = {"BROWSER": "", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    viewer = Viewer(state_dir, browser=True, env=quiet)
    try:
        assert viewer.process.stdout is not None
        for line in iter(viewer.process.stdout.readline, ""):
            if "press Ctrl-C" in line:  # the browser is tried before this last line
                break
        viewer.process.send_signal(signal.SIGINT)
        assert viewer.process.wait(EXIT_S) == 0
        assert viewer.stderr() == "railtracks view: no browser to open here; open the URL above\n"
    finally:
        viewer.stop()


def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, state_dir: Path) -> None:
    env = {"RAILTRACKS_STATE_DIR": str(state_dir)}
    (state_dir / "bad.json").write_text("[]")
    big_state(state_dir / "ok.json", parents=1, children=1)
    cases = [
        ["view", "--port", "99999", "--no-browser"],
        ["view", "--port", "x", "--no-browser"],
        ["view", "missing", "--no-browser"],
        ["view", "missing\x1b[31m", "--html", "x.html"],
        ["view", "--html", "x.html"],
        ["view", "bad", "--html", "x.html"],
        ["view", "ok", "--html", str(tmp_path / "no" / "such" / "dir.html")],
    ]
    for args in cases:
        done = run([RAILTRACKS, *args], tmp_path, env)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert "\x1b" not in done.stderr
    assert not (tmp_path / "x.html").exists()


def test_busy_port_is_one_line(state_dir: Path, tmp_path: Path) -> None:
    viewer = Viewer(state_dir)
    try:
        done = run(
            [RAILTRACKS, "view", "--no-browser", "--port", str(viewer.port)],
            tmp_path,
            {"RAILTRACKS_STATE_DIR": str(state_dir)},
        )
        assert done.returncode == 2
        assert done.stderr.startswith("railtracks: error: cannot listen on 127.0.0.1:")
    finally:
        viewer.stop()


def test_a_client_leaving_mid_response_prints_nothing(state_dir: Path) -> None:
    big_state(state_dir / "wide.json", parents=20, children=999)
    viewer = Viewer(state_dir)
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", viewer.port), timeout=60) as client:
                host = f"Host: 127.0.0.1:{viewer.port}"
                client.sendall(f"GET /api/runs/saved/wide HTTP/1.1\r\n{host}\r\n\r\n".encode())
                assert client.recv(64).startswith(b"HTTP/1.1 200")
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with urllib.request.urlopen(viewer.url + "api/runs", timeout=60) as response:
            assert response.status == 200  # still serving
        viewer.process.send_signal(signal.SIGINT)
        assert viewer.process.wait(EXIT_S) == 0
        assert viewer.stderr() == ""
    finally:
        viewer.stop()


def test_browser_tests_skip_locally_and_fail_under_ci_without_chromium(tmp_path: Path) -> None:
    from ..conftest import REPO

    test = "tests/view/test_view_browser.py::test_html_file_opens_offline"
    command = [sys.executable, "-m", "pytest", test, "-q", "-rs", "-p", "no:cacheprovider"]
    missing = {"RAILTRACKS_TEST_CHROMIUM": str(tmp_path / "no-chromium")}
    # both runs at once: each is mostly an interpreter and pytest starting
    with ThreadPoolExecutor(2) as both:
        local_run = both.submit(run, command, REPO, {**missing, "CI": ""})
        ci_run = both.submit(run, command, REPO, {**missing, "CI": "true"})
        local, ci = local_run.result(), ci_run.result()
    assert local.returncode == 0, local.stdout
    assert "1 skipped" in local.stdout
    assert "bash tests/backends/install_browser.sh" in local.stdout
    assert ci.returncode == 1, ci.stdout
    assert "browser tests cannot run under CI=true" in ci.stdout
