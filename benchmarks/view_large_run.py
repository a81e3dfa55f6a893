"""The run viewer on large runs: server work, bytes on the wire, first paint in a browser.

Run:  .venv/bin/python benchmarks/view_large_run.py [--sizes 10000 100000]

For each size N, one real session makes N sequential node calls and saves its
state. Then, side by side:

* reading the state file into the viewer's run (``read``), and building the
  waterfall outline (``outline``), with the outline's JSON size;
* over HTTP from a ``ViewerServer`` on 127.0.0.1: the run's outline cold
  (file not parsed yet) and warm (cached), and one span's details;
* in Debian's chromium (when ``/usr/bin/chromium`` and Playwright are there):
  from navigation to the first waterfall rows on screen, with the state not
  yet parsed (cold) and parsed (the usual case: the viewer reads the state
  directory when it starts), and from pressing End (select the last of N
  rows) to its details shown.

Run on an otherwise idle machine: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path

import railtracks as rt
from railtracks.testing._procs import chromium_path, launch_chromium
from railtracks.view._saved import read_run
from railtracks.view._server import ViewerServer


@rt.function_node
async def step(i: int) -> dict[str, int]:
    return {"i": i, "square": i * i}


def make_state(directory: Path, calls: int) -> Path:
    rt.configure(state_dir=directory)

    @rt.session(name=f"big-{calls}", logging_setting="NONE")
    async def flow() -> int:
        for i in range(calls):
            await rt.call(step, i)
        return calls

    asyncio.run(flow())
    return directory / f"big-{calls}.json"


def fetch(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def browser_figures(url: str, last_name: str) -> tuple[float, float, float] | None:
    if not os.access(chromium_path(), os.X_OK):
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1440, "height": 860})
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(".row .name", timeout=120_000)
        first_paint = time.perf_counter() - started
        page.wait_for_selector(".details h2")
        started = time.perf_counter()
        page.keyboard.press("End")
        page.wait_for_selector(f".details h2:text-is('{last_name}')", timeout=60_000)
        to_last = time.perf_counter() - started
        # again in a fresh page, the run now parsed on the server (the usual case:
        # the viewer reads the state directory when it starts)
        page = browser.new_page(viewport={"width": 1440, "height": 860})
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(".row .name", timeout=120_000)
        warm_paint = time.perf_counter() - started
        browser.close()
    return first_paint, warm_paint, to_last


def measure(calls: int, directory: Path) -> dict[str, str]:
    path = make_state(directory, calls)
    started = time.perf_counter()
    run = read_run(path)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    outline = run.outline()
    outline_s = time.perf_counter() - started
    outline_bytes = len(json.dumps(outline, separators=(",", ":")).encode())
    server = ViewerServer("127.0.0.1", 0, directory)
    server.start_in_thread()
    try:
        api = f"{server.url}api/runs/saved/{path.stem}"
        cold_s, _ = fetch(api)
        warm_s, _ = fetch(api)
        last_id = outline["rows"][-1][0]
        detail_s, _ = fetch(f"{api}/spans/{last_id}")
        server.saved = type(server.saved)(directory)  # forget the parsed run: a cold page load
        shown = browser_figures(f"{server.url}#/run/saved/{path.stem}", "step")
    finally:
        server.shutdown()
        server.server_close()
    return {
        "state file": f"{path.stat().st_size / 1e6:.1f} MB",
        "read state": f"{read_s:.2f} s",
        "build outline": f"{outline_s:.2f} s",
        "outline JSON": f"{outline_bytes / 1e6:.1f} MB",
        "GET outline, cold": f"{cold_s:.2f} s",
        "GET outline, warm": f"{warm_s:.2f} s",
        "GET one span": f"{detail_s * 1000:.1f} ms",
        "browser: first rows, cold": f"{shown[0]:.2f} s" if shown else "no chromium",
        "browser: first rows, parsed": f"{shown[1]:.2f} s" if shown else "no chromium",
        "browser: End to details": f"{shown[2] * 1000:.0f} ms" if shown else "no chromium",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    sizes = parser.parse_args().sizes
    with tempfile.TemporaryDirectory() as tmp:
        results = {n: measure(n, Path(tmp)) for n in sizes}
    labels = list(next(iter(results.values())))
    width = max(map(len, labels))
    print(f"{'nodes':<{width}}  " + "  ".join(f"{n:>12,}" for n in sizes))
    for label in labels:
        print(f"{label:<{width}}  " + "  ".join(f"{results[n][label]:>12}" for n in sizes))


if __name__ == "__main__":
    main()
