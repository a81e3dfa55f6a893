"""The run journal (SPEC 13): memory, per-call cost, assembly and reading, side by side.

Run:  .venv/bin/python benchmarks/journal.py [--sizes 1000 100000 500000 1000000] [--no-read]
      .venv/bin/python benchmarks/journal.py --per-call [--sizes 1000 100000] [--rounds 5]

``--per-call``: the per-call cost of the same session with its journal
disabled (its state built from memory, as before the journal) and enabled,
each in a fresh process, rounds interleaved, medians side by side (target:
within 10%), and the time from the session's end to ``rt.flush()``: its
state built from memory, or assembled from its journal.

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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _rss import CHILD_PRELUDE  # benchmarks/_rss.py

_CHILD = (
    CHILD_PRELUDE
    + r"""
if sys.argv[3] == "off":  # the same session with no journal: its state built from memory
    import railtracks._runtime.session as _session
    _session.open_journal = lambda *args: None

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
)

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


def per_call(sizes: list[int], rounds: int) -> None:
    """The same session with its journal off and on, in fresh processes, rounds interleaved."""
    print(
        f"per call, one session of N sequential calls, state saved, median of {rounds} rounds"
        f"\n  {'N':>9}{'no journal':>13}{'journal':>11}{'ratio':>8}"
        f"{'state from memory':>20}{'from journal':>14}{'ratio':>7}"
    )
    for size in sizes:
        samples: dict[str, list[float]] = {"off": [], "on": []}
        built: dict[str, list[float]] = {"off": [], "on": []}
        for round_ in range(rounds):
            for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                with tempfile.TemporaryDirectory() as name:
                    figures = json.loads(_child(_CHILD, str(size), name, mode))
                    samples[mode].append(figures["per_call_us"])
                    built[mode].append(figures["assembly_s"])
        off, on = (statistics.median(samples[mode]) for mode in ("off", "on"))
        memory, journal = (statistics.median(built[mode]) for mode in ("off", "on"))
        print(
            f"  {size:>9}{off:>11.2f}us{on:>9.2f}us{on / off:>7.2f}x"
            f"{memory:>19.2f}s{journal:>13.2f}s{journal / memory:>6.2f}x  target <= 1.10x per call",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = [1_000, 100_000, 500_000, 1_000_000]
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    parser.add_argument("--no-read", action="store_true", help="skip the readers' columns")
    parser.add_argument(
        "--read-max", type=int, default=500_000,
        help="above this size, skip load_state and json.load (json.load of 1M nodes takes ~6 GB)",
    )  # fmt: skip
    parser.add_argument(
        "--per-call", action="store_true",
        help="only the per-call cost with the journal off and on (default sizes 1000 100000)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --per-call")
    args = parser.parse_args()
    if args.per_call:
        given = "--sizes" in sys.argv
        per_call(args.sizes if given else [1_000, 100_000], args.rounds)
        return
    print(
        f"  {'N':>9}{'per call':>11}{'peak RSS+':>11}{'held':>8}{'assembly':>10}{'state':>9}"
        f"{'load_state':>12}{'json.load':>11}{'ratio':>7}{'show 1st':>10}{'show all':>10}"
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as name:
            directory = Path(name)
            figures = json.loads(_child(_CHILD, str(size), name, "on"))
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
