"""The run journal (SPEC 13): memory, per-call cost, assembly and reading, side by side.

Run:  .venv/bin/python benchmarks/journal.py [--sizes 1000 100000 500000 1000000] [--no-read]

Per session size N (each in a fresh child process, after a 100-call warm-up
session): one ``async with rt.Session`` of N sequential ``rt.call``s with its
state saved. Columns:

* per call: the session's calls, timed while the journal thread writes
  (compare ``benchmarks/floor.py``'s rows);
* peak RSS+: the child's peak RSS (VmHWM) above its baseline after the warm-up
  (target <= 100 MB at 500,000 nodes), and held: RSS above it after the save;
* assembly: from the session's end to ``rt.flush()`` (the state assembled from
  the journal and written);
* load_state / json.load: reading the state back in a fresh process each
  (target <= 1.5x), and the state's size;
* show: a fresh ``railtracks show big`` until its first line of output and
  until its first screen (the default ``--limit``), in wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import asyncio, json, os, sys, time
import railtracks as rt

calls = int(sys.argv[1])
rt.configure(console_stream=open(os.devnull, "w"), state_dir=sys.argv[2], export=False)

@rt.function_node
async def step(i: int) -> dict:
    return {"i": i}

def peak_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024 / 1e6

def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

async def main() -> dict:
    async with rt.Session(name="warm-up", logging_setting="NONE", save_state=False):
        for i in range(100):
            await rt.call(step, i)
    baseline = rss_mb()
    started = time.perf_counter()
    async with rt.Session(name="big", logging_setting="NONE"):
        for i in range(calls):
            await rt.call(step, i)
        ran = time.perf_counter() - started
    ended = time.perf_counter()
    assert rt.flush(timeout=7200)  # rt.flush() gives up after 30 s by default
    assembled = time.perf_counter() - ended
    return {"per_call_us": ran / calls * 1e6, "assembly_s": assembled,
            "peak_above_mb": peak_mb() - baseline, "held_mb": rss_mb() - baseline}

print(json.dumps(asyncio.run(main())))
"""

_READ = r"""
import json, sys, time
which, path = sys.argv[1], sys.argv[2]
if which == "json":
    started = time.perf_counter()
    with open(path, "rb") as f:
        json.load(f)
else:
    import railtracks as rt
    started = time.perf_counter()
    rt.load_state(path)
print(time.perf_counter() - started)
"""


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, check=True, timeout=7200, env=env,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def _show(directory: Path) -> tuple[float, float]:
    """Seconds until ``railtracks show big`` prints its first line, and until it exits."""
    railtracks = str(Path(sys.executable).with_name("railtracks"))
    env = {**os.environ, "RAILTRACKS_STATE_DIR": str(directory)}
    started = time.perf_counter()
    with subprocess.Popen([railtracks, "show", "big"], stdout=subprocess.PIPE, env=env) as process:
        assert process.stdout is not None
        process.stdout.readline()
        first = time.perf_counter() - started
        process.stdout.read()
    return first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = [1_000, 100_000, 500_000, 1_000_000]
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    parser.add_argument("--no-read", action="store_true", help="skip the readers' columns")
    parser.add_argument(
        "--read-max", type=int, default=500_000,
        help="above this size, skip load_state and json.load (json.load of 1M nodes takes ~6 GB)",
    )  # fmt: skip
    args = parser.parse_args()
    print(
        f"  {'N':>9}{'per call':>11}{'peak RSS+':>11}{'held':>8}{'assembly':>10}{'state':>9}"
        f"{'load_state':>12}{'json.load':>11}{'ratio':>7}{'show 1st':>10}{'show all':>10}"
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as name:
            directory = Path(name)
            figures = json.loads(_child(_CHILD, str(size), name))
            state = directory / "big.json"
            row = (
                f"  {size:>9}{figures['per_call_us']:>9.2f}us{figures['peak_above_mb']:>9.0f}MB"
                f"{figures['held_mb']:>6.0f}MB{figures['assembly_s']:>9.2f}s"
                f"{state.stat().st_size / 1e6:>7.0f}MB"
            )
            if not args.no_read and size <= args.read_max:
                loaded = float(_child(_READ, "state", str(state)))
                parsed = float(_child(_READ, "json", str(state)))
                row += f"{loaded:>11.2f}s{parsed:>10.2f}s{loaded / parsed:>6.2f}x"
            elif not args.no_read:
                row += f"{'-':>12}{'-':>11}{'-':>7}"
            if not args.no_read:
                first, whole = _show(directory)
                row += f"{first:>9.2f}s{whole:>9.2f}s"
            print(row, flush=True)


if __name__ == "__main__":
    main()
