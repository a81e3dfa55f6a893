"""What resume and replay cost (SPEC 14), side by side.

Run:  .venv/bin/python benchmarks/resume_overhead.py [--calls N] [--rounds R] [--nodes M]
          [--base DIR ...]

Rows, each the median of R interleaved rounds:

* ``rt.call`` per call at ``NONE``, ``save_state=False``, when not resuming, in
  this tree and, with ``--base DIR`` (repeatable: a checkout of another commit,
  e.g. the one before resume, made with ``git archive <commit> | tar -x -C
  DIR``), in that tree: each round in a fresh child process, alternating, so
  all see the same machine;
* a replayed call against a live call of the same trivial node, in one
  session of N calls (the replayed session resumes the live one), in each tree;
* resuming a run of M nodes of which 99% completed, in each tree: seconds from
  entering the session to the first live call, and its split: reading and
  validating the earlier run (``load_state``), indexing it (``RecordedRun``),
  and replaying the 99% before it; ``--nodes 0`` skips it.

Each round runs every tree once, in a fresh child process, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import asyncio, sys, time
import railtracks as rt

@rt.function_node
async def trivial(x: int) -> int:
    return x

async def main(n):
    async with rt.Session(name="bench", logging_setting="NONE", save_state=False):
        for i in range(100):
            await rt.call(trivial, i)
        start = time.perf_counter()
        for i in range(n):
            await rt.call(trivial, i)
        return (time.perf_counter() - start) / n

print(asyncio.run(main(int(sys.argv[1]))) * 1e6)
"""


def per_call_in(tree: Path | None, calls: int) -> float:
    """Microseconds per ``rt.call`` in a fresh process running ``tree`` (None: this one)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(calls)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return float(done.stdout.strip())


REUSE_CHILD = """
import asyncio, json, os, sys, tempfile, time
os.environ["RAILTRACKS_STATE_DIR"] = tempfile.mkdtemp()
import railtracks as rt
from railtracks._runtime import resume

split = {}

def timed(name, func):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            split[name] = split.get(name, 0.0) + time.perf_counter() - start
    return wrapper

resume.load_state = timed("read", resume.load_state)
resume.RecordedRun = timed("index", resume.RecordedRun)

@rt.function_node
async def trivial(x: int) -> int:
    return x

@rt.function_node
async def last(x: int) -> int:
    return x

async def session(name, calls, **options):
    async with rt.Session(name=name, logging_setting="NONE", **options) as s:
        start = time.perf_counter()
        for i in range(calls):
            await rt.call(trivial, i)
        elapsed = (time.perf_counter() - start) / calls
    return elapsed, s

async def partial(nodes, fail_at, resuming):
    first = entered_at = 0.0
    entered = time.perf_counter()
    async with rt.Session(name="resume-bench", logging_setting="NONE", resume=resuming):
        entered_at = time.perf_counter() - entered
        for i in range(nodes):
            if i == fail_at:
                first = time.perf_counter() - entered
                if not resuming:
                    break
            await rt.call(last if i == fail_at else trivial, i)
    return first, entered_at

calls, nodes = int(sys.argv[1]), int(sys.argv[2])
out = {}
if calls:
    live, _ = asyncio.run(session("replay-bench", calls))
    assert rt.flush(60)
    replayed, s = asyncio.run(session("replay-bench", calls, resume=True))
    assert s.replayed_calls == calls, s.replayed_calls
    out.update(live=live * 1e6, replayed=replayed * 1e6)
if nodes:
    fail_at = nodes * 99 // 100
    asyncio.run(partial(nodes, fail_at, False))
    assert rt.flush(300)
    split.clear()
    first, entered_at = asyncio.run(partial(nodes, fail_at, True))
    out.update(first=first, read=split["read"], index=split["index"],
               calls=first - entered_at)
print(json.dumps(out))
"""


def reuse_in(tree: Path | None, calls: int, nodes: int) -> dict[str, float]:
    """Replayed vs live call (us) and the resume split (s), in a fresh process of ``tree``."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    done = subprocess.run(
        [sys.executable, "-c", REUSE_CHILD, str(calls), str(nodes)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    found: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _label(tree: Path | None) -> str:
    return "this tree" if tree is None else str(tree)[-28:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--base", type=Path, action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as states:
        os.environ["RAILTRACKS_STATE_DIR"] = states
        here: list[float] = []
        bases: list[list[float]] = [[] for _ in args.base]
        for _ in range(args.rounds):
            here.append(per_call_in(None, args.calls))
            for tree, times in zip(args.base, bases, strict=True):
                times.append(per_call_in(tree, args.calls))
        rounds = f"median of {args.rounds} rounds"
        print(f"\n{args.calls} sequential calls, NONE, save_state=False, not resuming, {rounds}")
        baseline = statistics.median(bases[0]) if bases else None
        for tree, times in zip(args.base, bases, strict=True):
            b = statistics.median(times)
            ratio = f"{b / baseline:.2f}x" if baseline else ""
            print(f"  rt.call, {str(tree)[-28:]:<28}  {b:8.2f} us    {ratio}")
        h = statistics.median(here)
        ratio = f"{h / baseline:.2f}x" if baseline else ""
        print(f"  rt.call, this tree                     {h:8.2f} us    {ratio}")

        trees: list[Path | None] = [*args.base, None]
        runs: list[list[dict[str, float]]] = [[] for _ in trees]
        for _ in range(args.rounds):
            for tree, found in zip(trees, runs, strict=True):
                found.append(reuse_in(tree, args.calls, args.nodes))
        print(f"\none session of {args.calls} calls, then resumed, {rounds}")
        for tree, found in zip(trees, runs, strict=True):
            live = statistics.median(r["live"] for r in found)
            replayed = statistics.median(r["replayed"] for r in found)
            print(
                f"  {_label(tree):<28}  live {live:7.2f} us  replayed {replayed:7.2f} us"
                f"  {replayed / live:.2f}x"
            )
        if args.nodes > 0:
            print(f"\nresume of a {args.nodes}-node run, 99% completed: seconds, {rounds}")
            print(f"  {'':<28}  {'first live':>10} {'read':>7} {'index':>7} {'replayed':>9}")
            for tree, found in zip(trees, runs, strict=True):
                m = {k: statistics.median(r[k] for r in found) for k in found[0] if k != "live"}
                print(
                    f"  {_label(tree):<28}  {m['first']:10.2f} {m['read']:7.2f}"
                    f" {m['index']:7.2f} {m['calls']:9.2f}"
                )


if __name__ == "__main__":
    main()
