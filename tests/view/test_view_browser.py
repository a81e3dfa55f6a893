"""The run viewer end to end: ``railtracks view`` as a subprocess, a real headless chromium.

Every test here drives the page as a user would (clicks, keys, URLs) and
checks what is on screen; screenshots are saved (see conftest) to be looked at.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..conftest import RAILTRACKS, run
from .conftest import Page, Viewer, wait_for
from .states import SECRET, WORKFLOW, XSS, XSS_CONTEXT, big_state


def workflow(name: str, cwd: Path, env: dict[str, str]) -> None:
    done = run([sys.executable, "-c", WORKFLOW, name], cwd, env)
    assert done.returncode == 0, done.stderr


def rows(page: Page) -> list[str]:
    return page.page.locator(".row:not([hidden]) .name").all_inner_texts()


def only_loopback(page: Page, origin: str) -> None:
    outside = [url for url in page.requests if not url.startswith(origin)]
    assert outside == [], outside


def test_runs_list_run_page_and_span_selection(
    page: Page, viewer: Viewer, state_dir: Path, tmp_path: Path
) -> None:
    env = {"RAILTRACKS_STATE_DIR": str(state_dir), "RAILTRACKS_LOGGING_SETTING": "NONE"}
    workflow("checkout", tmp_path, env)
    workflow("nightly-report", tmp_path, env)
    (state_dir / "broken.json").write_text("{ not a state")
    p = page.page
    p.goto(viewer.url)
    p.wait_for_selector("table.runs tbody tr[data-key='checkout']")
    names = p.locator("table.runs tbody .run-name").all_inner_texts()
    # newest first; an unreadable file has no start: its modification time places it
    assert names == ["broken", "nightly-report", "checkout"]
    checkout = p.locator("tr[data-key='checkout']")
    assert checkout.locator(".pill").inner_text() == "completed"
    # 3 fetch, enrich and its 2 fetch, broken
    assert checkout.locator("td.num").nth(1).inner_text() == "7"
    assert p.locator("tr[data-key='broken'] .pill").inner_text() == "unreadable"
    page.screenshot("runs-list")

    # filter by name, then by status
    p.fill("input.search", "night")
    p.wait_for_function("document.querySelectorAll('table.runs tbody tr').length === 1")
    assert p.locator("table.runs tbody .run-name").all_inner_texts() == ["nightly-report"]
    p.fill("input.search", "")
    p.click("button.chip[data-status='unreadable']")
    assert p.locator("table.runs tbody .run-name").all_inner_texts() == ["broken"]
    p.click("button.chip[data-status='all']")

    # open a run: the waterfall lists the call tree, nested, in start order
    p.click("a.run-name:text('checkout')")
    p.wait_for_selector(".row .name")
    assert p.url.startswith(viewer.url + "#/run/saved/checkout")
    tree = rows(page)
    assert tree[0] == "session checkout"
    assert sorted(tree[1:4]) == ["fetch", "fetch", "fetch"]
    assert tree[4:] == ["enrich", "fetch", "fetch", "broken"]
    assert p.locator(".run-head .pill").inner_text() == "completed"
    assert p.locator(".row.failed, .row .dot.failed").count() >= 1

    # select the failed node: its error, input and context are in the details pane
    p.locator(".row", has_text="broken").click()
    p.wait_for_selector(".details h2:text('broken')")
    details = p.locator(".details")
    assert "ValueError" in details.locator(".error-box").first.inner_text()
    assert '"x": 1' in details.locator("[data-section='input'] pre").inner_text()
    assert "api_key" in details.locator("[data-section='context at call']").inner_text()
    assert "[REDACTED]" in details.locator("[data-section='context at call']").inner_text()
    broken_url = p.url
    assert "/span/" in broken_url
    page.screenshot("run-page-failed-span")

    # keyboard: up selects the previous row, left goes to the parent
    p.keyboard.press("ArrowUp")
    p.wait_for_selector(".details h2:text('fetch')")
    p.keyboard.press("ArrowLeft")
    p.wait_for_selector(".details h2:text('enrich')")
    p.keyboard.press("ArrowLeft")  # folds enrich
    assert rows(page)[4:] == ["enrich", "broken"]
    p.keyboard.press("ArrowRight")
    assert rows(page)[4:] == ["enrich", "fetch", "fetch", "broken"]
    # zoom in twice around the middle, then back to the whole run
    whole = p.locator(".ticks .tick").all_inner_texts()
    p.keyboard.press("+")
    p.keyboard.press("+")
    zoomed = p.locator(".ticks .tick").all_inner_texts()
    assert zoomed != whole
    assert zoomed[0] != "0ns"  # the window no longer starts at the run's start
    p.keyboard.press("0")
    assert p.locator(".ticks .tick").all_inner_texts() == whole

    # a deep link opens the same span in a fresh page
    fresh = page.context.new_page()
    fresh.goto(broken_url)
    fresh.wait_for_selector(".details h2:text('broken')")
    assert fresh.locator(".row.sel .name").inner_text() == "broken"
    fresh.close()
    assert SECRET not in p.content()
    assert page.errors == []
    only_loopback(page, viewer.url)


def test_markup_in_outputs_and_context_is_shown_as_text(
    page: Page, viewer: Viewer, state_dir: Path, tmp_path: Path
) -> None:
    workflow("xss", tmp_path, {"RAILTRACKS_STATE_DIR": str(state_dir)})
    p = page.page
    p.goto(f"{viewer.url}#/run/saved/xss")
    p.wait_for_selector(".row .name")
    p.locator(".row", has_text="fetch").first.click()
    p.wait_for_selector(".details h2:text('fetch')")
    output = p.locator(".details [data-section='output'] pre").inner_text()
    assert XSS in output.replace('\\"', '"')
    assert '"password": "[REDACTED]"' in output
    context = p.locator(".details [data-section='context at call']").inner_text()
    assert XSS_CONTEXT in context
    # the error message carries the payload too
    p.locator(".row", has_text="broken").click()
    p.wait_for_selector(".details h2:text('broken')")
    assert XSS in p.locator(".details .error-box").first.inner_text()
    p.locator(".row", has_text="session xss").click()
    p.wait_for_selector(".details h2:text('session xss')")
    changes = p.locator(".details [data-section='context changes']").inner_text()
    assert "railtracks.context.change" in changes
    # the context the session ended with: what was put in, secrets still redacted
    ended = p.locator(".details [data-section='context at end']").inner_text()
    assert "step" in ended
    assert XSS_CONTEXT in ended
    assert "[REDACTED]" in ended
    page.screenshot("xss-as-text")
    # nothing of it became markup, nothing ran
    assert p.locator("#app img, #app script, #app svg").count() == 0
    assert p.locator("#app b:text-is('bold?'), #app b:text-is('x')").count() == 0
    assert p.evaluate("window.__xss") is None
    assert page.dialogs == []
    only_loopback(page, viewer.url)


def test_live_runs_arrive_over_otlp_while_they_run(
    page: Page, viewer: Viewer, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": viewer.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "RAILTRACKS_SAVE_STATE": "0",
        "RAILTRACKS_LOGGING_SETTING": "NONE",
    }
    p = page.page
    p.goto(viewer.url)
    p.wait_for_selector("text=No runs yet")
    program = subprocess.Popen(
        [sys.executable, "-c", WORKFLOW, "live-checkout", str(release)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the run shows up, running, from the nodes that already ended
        live_row = p.locator("table.runs tbody tr", has_text="live")
        live_row.wait_for()
        assert live_row.locator(".pill").inner_text() == "running"
        live_row.locator(".run-name").click()
        p.wait_for_selector(".row .name:text('broken')")
        assert p.locator(".run-head .pill").inner_text() == "running"
        # the session has not ended: it stands as a running placeholder over its nodes
        assert rows(page)[0] == "running…"
        assert p.locator(".row.pending").count() == 1
        page.screenshot("live-running")
        release.touch()
        assert program.wait(120) == 0, program.stderr.read() if program.stderr else ""
        # the page updates by itself when the session span arrives
        p.wait_for_selector(".run-head .pill:text('completed')")
        assert rows(page)[0] == "session live-checkout"
        assert p.locator(".row.pending").count() == 0
        assert p.locator(".run-head h1").inner_text() == "live-checkout"
        assert len(rows(page)) == 8
        p.locator(".row", has_text="session live-checkout").click()
        p.wait_for_selector(".details h2:text-is('session live-checkout')")
        context = p.locator(".details [data-section='context at call']")
        context.wait_for()
        assert "[REDACTED]" in context.inner_text()
        assert SECRET not in p.content()
        page.screenshot("live-completed")
    finally:
        if program.poll() is None:
            program.kill()
            program.wait(10)
        if program.stderr is not None:
            program.stderr.close()
    only_loopback(page, viewer.url)


def test_html_file_opens_offline(page: Page, state_dir: Path, tmp_path: Path) -> None:
    env = {"RAILTRACKS_STATE_DIR": str(state_dir), "RAILTRACKS_LOGGING_SETTING": "NONE"}
    workflow("report", tmp_path, env)
    out = tmp_path / "report.html"
    done = run([RAILTRACKS, "view", "report", "--html", str(out)], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out} (")
    blocked: list[str] = []

    def block(route: Any) -> None:
        blocked.append(route.request.url)
        route.abort()

    page.context.route("http://**/*", block)
    page.context.route("https://**/*", block)
    p = page.page
    p.goto(out.as_uri())
    p.wait_for_selector(".row .name")
    assert rows(page)[0] == "session report"
    assert p.locator(".run-head h1").inner_text() == "report"
    p.locator(".row", has_text="broken").click()
    p.wait_for_selector(".details h2:text('broken')")
    assert "ValueError" in p.locator(".details .error-box").first.inner_text()
    p.locator(".row", has_text="fetch").first.click()
    p.wait_for_selector(".details h2:text('fetch')")
    assert XSS in p.locator(".details [data-section='output'] pre").inner_text().replace('\\"', '"')
    page.screenshot("html-file-offline")
    assert blocked == []
    assert [url for url in page.requests if not url.startswith("file://")] == []
    assert page.errors == []
    assert p.evaluate("window.__xss") is None
    assert SECRET not in out.read_text()


def test_a_100000_node_run_stays_responsive(page: Page, viewer: Viewer, state_dir: Path) -> None:
    count = big_state(state_dir / "huge.json")
    assert count == 100_000
    p = page.page
    started = time.monotonic()
    p.goto(f"{viewer.url}#/run/saved/huge")
    p.wait_for_selector(".row .name:text('session huge')")
    print(f"100,000-node run: first rows on screen after {time.monotonic() - started:.2f}s")
    # only what is visible is in the DOM
    assert p.locator(".row").count() < 200
    assert p.locator(".row.foreign .badge.foreign:visible").count() >= 1
    assert p.locator(".wf-title .n").text_content() == "100,001 spans"
    page.screenshot("huge-run")
    p.locator(".row .name:text-is('item_0_3')").click()
    p.wait_for_selector(".details h2:text('item_0_3')")
    p.keyboard.press("End")
    p.wait_for_selector(".details h2:text('item_99_998')")
    assert p.locator(".row.sel .name").inner_text() == "item_99_998"
    # fold the first batch: the rows after it move up
    p.keyboard.press("Home")
    p.keyboard.press("ArrowDown")
    p.keyboard.press("ArrowLeft")
    assert rows(page)[:3] == ["session huge", "batch_0", "batch_1"]
    # find a span by name: the match is unfolded, scrolled to and selected
    p.keyboard.press("f")
    p.keyboard.type("item_42_7")
    p.keyboard.press("Enter")
    p.wait_for_selector(".details h2:text-is('item_42_7')")
    assert p.locator(".find-count").inner_text() == "1 of 111"  # _7, _70.._79, _700.._799
    p.keyboard.press("Enter")
    p.wait_for_selector(".details h2:text-is('item_42_70')")
    assert p.locator(".row.sel .name").inner_text() == "item_42_70"
    # a deep link into the middle of the run
    p.goto(f"{viewer.url}#/run/saved/huge/span/{50_000:016x}")
    p.reload()
    p.wait_for_selector(".row.sel")
    selected = p.locator(".row.sel .name").inner_text()
    assert selected.startswith("item_")
    wait_for(lambda: p.locator(".details h2").count() == 1)
    assert p.locator(".details h2").inner_text() == selected
    page.screenshot("huge-run-deep-link")
    assert page.errors == []
