"""The viewer's compare page in headless chromium: two saved runs chosen from the list (SPEC 14)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..diffruns import record_run
from .conftest import Page, Viewer


def _record(name: str, mode: str, cwd: Path, state_dir: Path) -> None:
    record_run(cwd, mode, name, {"RAILTRACKS_STATE_DIR": str(state_dir)})


def test_compare_two_runs_from_the_list(
    page: Page, viewer: Viewer, state_dir: Path, tmp_path: Path
) -> None:
    _record("before", "same", tmp_path, state_dir)
    _record("after", "both", tmp_path, state_dir)
    p = page.page
    p.goto(viewer.url)
    p.wait_for_selector("tr[data-key='after'] input.compare-pick")
    assert p.locator("button.compare-go").is_disabled()
    p.locator("tr[data-key='before'] input.compare-pick").check()
    p.locator("tr[data-key='after'] input.compare-pick").check()
    assert "#/run" not in p.url  # ticking a box never opens the run
    p.click("button.compare-go")
    p.wait_for_selector("main.compare table.changes")
    assert p.url.endswith("#/compare/before/after")
    assert p.locator(".verdict").inner_text() == "Different"
    kinds = p.locator("table.changes tr.change").evaluate_all(
        "rows => rows.map(r => [r.dataset.kind, r.querySelectorAll('td')[2].textContent])"
    )
    assert ["status", "plan/fetch[2]"] in kinds
    assert ["output", "plan/fetch"] in kinds
    assert ["output", "plan"] not in kinds  # plan returns 0 both times
    # run strings are shown as text: the markup in the error and output never runs
    page_text = p.locator("main.compare").inner_text()
    assert "<img src=x onerror=alert(1)>" in page_text
    assert "<script>alert(2)</script>" in page_text
    assert p.locator("main.compare img, main.compare script").count() == 0
    assert page.dialogs == []
    assert page.errors == []
    page.screenshot("compare")
    # a call links to its span in run B
    p.locator("tr.change[data-kind='status'] a").click()
    p.wait_for_selector(".details h2:text('fetch')")
    assert "#/run/saved/after/span/" in p.url


def test_compare_api_same_and_bad_keys(viewer: Viewer, state_dir: Path, tmp_path: Path) -> None:
    _record("one", "same", tmp_path, state_dir)
    _record("two", "same", tmp_path, state_dir)
    with urllib.request.urlopen(viewer.url + "api/compare/one/two", timeout=60) as response:
        result = json.loads(response.read())
    assert (result["same"], result["aligned"]) == (True, 4)
    (state_dir / "broken.json").write_text("{")
    for path in ("api/compare/one/missing", "api/compare/one/broken", "api/compare/..%2Fx/one"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(viewer.url + path, timeout=60)
        assert refused.value.code == 404
        assert json.loads(refused.value.read())["error"]
