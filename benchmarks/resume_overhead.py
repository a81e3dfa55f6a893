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
  session of N calls (the replayed session resumes the live one);
* resuming a run of M nodes of which 99% completed: seconds from entering the
  session to the first live call (reading, validating and indexing the
  earlier run, then replaying the 99% before it); ``--nodes 0`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import railtracks as rt

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


@rt.function_node
async def trivial(x: int) -> int:
    return x


@rt.function_node
async def last(x: int) -> int:
    return x


async def _session(name: str, calls: int, **options: object) -> tuple[float, rt.Session]:
    async with rt.Session(name=name, logging_setting="NONE", **options) as session:  # type: ignore[arg-type]
        start = time.perf_counter()
        for i in range(calls):
            await rt.call(trivial, i)
        elapsed = (time.perf_counter() - start) / calls
    return elapsed, session


def replay_vs_live(calls: int) -> tuple[float, float]:
    live, _ = asyncio.run(_session("replay-bench", calls))
    assert rt.flush(60)
    replayed, session = asyncio.run(_session("replay-bench", calls, resume=True))
    assert session.replayed_calls == calls, session.replayed_calls
    return live * 1e6, replayed * 1e6


async def _partial(nodes: int, fail_at: int, resume: bool) -> float:
    """The first run stops before call ``fail_at``; the resumed one times reaching it."""
    first_live = 0.0
    entered = time.perf_counter()
    async with rt.Session(name="resume-bench", logging_setting="NONE", resume=resume):
        for i in range(nodes):
            if i == fail_at:
                first_live = time.perf_counter() - entered
                if not resume:
                    break
            await rt.call(last if i == fail_at else trivial, i)
    return first_live


def time_to_first_live_call(nodes: int) -> float:
    fail_at = nodes * 99 // 100
    asyncio.run(_partial(nodes, fail_at, resume=False))
    assert rt.flush(120)
    return asyncio.run(_partial(nodes, fail_at, resume=True))


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

        pairs = [replay_vs_live(args.calls) for _ in range(args.rounds)]
        live = statistics.median(p[0] for p in pairs)
        replayed = statistics.median(p[1] for p in pairs)
        print(f"\none session of {args.calls} calls, then resumed, median of {args.rounds} rounds")
        print(f"  live call (state saved)                {live:8.2f} us    1.00x")
        ratio = f"{replayed / live:.2f}x"
        print(f"  replayed call                          {replayed:8.2f} us    {ratio}")

        if args.nodes > 0:
            first = time_to_first_live_call(args.nodes)
            print(f"\nresume of a {args.nodes}-node run, 99% completed")
            print(f"  time to the first live call            {first:8.2f} s")


if __name__ == "__main__":
    main()
