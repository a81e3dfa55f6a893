"""A service's cost of saving states: many small concurrent sessions on one event loop (SPEC 6).

    python benchmarks/service.py [--sessions 400] [--concurrency 20] [--nodes 5] [--runs 20000]

Runs the same workload in one process, side by side: saving off, saving on
into an empty state directory, saving on into a directory already holding
``--runs`` runs, and the same with ``state_max_runs`` (retention) on. For each
it prints the session latency (median, p95; each node awaits 1 ms of I/O, so the
loop has the idle time a real service has), the longest event-loop stall (a
ticker task asking for 1 ms sleeps, measuring how late it wakes) and the mean
time the writer thread spends per state (off the loop). Targets (issue 20):
saving adds at most 25% to the median, no stall over 10 ms, and a save costs
the same (at most 1.5x) with 20,000 runs in the directory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import railtracks as rt
from railtracks._runs import writer as writer_module


@rt.function_node
async def step(i: int) -> int:
    await asyncio.sleep(0.001)  # a node waits on I/O (a database, a model) as a service's do
    return i * 2


class WriterClock:
    """Time spent by the writer thread in each state's write (build, write, sync, rename)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        real = writer_module.write_and_rename

        def timed(path: Path, data: Any, **options: Any) -> None:
            start = time.perf_counter()
            real(path, data, **options)
            self.seconds.append(time.perf_counter() - start)

        writer_module.write_and_rename = timed  # type: ignore[assignment]


async def ticker(stop: asyncio.Event, stalls: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        asked = loop.time()
        await asyncio.sleep(0.001)
        stalls.append(loop.time() - asked - 0.001)


async def workload(sessions: int, concurrency: int, nodes: int, save: bool) -> dict[str, float]:
    @rt.session(save_state=save, logging_setting="NONE")
    async def handler() -> int:
        return sum([await rt.call(step, i) for i in range(nodes)])

    limit = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one() -> None:
        async with limit:
            start = time.perf_counter()
            await handler()
            latencies.append(time.perf_counter() - start)

    stop = asyncio.Event()
    stalls: list[float] = []
    ticking = asyncio.create_task(ticker(stop, stalls))
    await asyncio.gather(*(one() for _ in range(sessions)))
    stop.set()
    await ticking
    latencies.sort()
    return {
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "stall_ms": max(stalls) * 1000,
    }


def fill(directory: Path, runs: int) -> None:
    """``runs`` small state files, fast: one real state copied (no fsync)."""
    rt.configure(state_dir=directory)

    @rt.session(name="template", logging_setting="NONE")
    async def template() -> int:
        return await rt.call(step, 1)

    asyncio.run(template())
    rt.flush()
    data = (directory / "template.json").read_bytes()
    for index in range(runs):
        (directory / f"old-{index:05d}.json").write_bytes(data)


def scenario(
    label: str,
    args: argparse.Namespace,
    directory: Path | None,
    keep: int | None,
    clock: WriterClock,
) -> dict[str, Any]:
    if directory is not None:
        rt.configure(state_dir=directory, state_max_runs=keep)
    # warm up (imports, the directory's one scan), then measure
    asyncio.run(workload(40, args.concurrency, args.nodes, directory is not None))
    rt.flush(120)
    clock.seconds.clear()
    figures = asyncio.run(
        workload(args.sessions, args.concurrency, args.nodes, directory is not None)
    )
    started = time.perf_counter()
    rt.flush(120)
    figures["drain_ms"] = (time.perf_counter() - started) * 1000
    figures["save_ms"] = statistics.mean(clock.seconds) * 1000 if clock.seconds else 0.0
    figures["label"] = label
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds, scenarios interleaved")
    args = parser.parse_args()
    clock = WriterClock()
    rounds: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as root:
        empty, full, kept = Path(root, "empty"), Path(root, "full"), Path(root, "kept")
        fill(full, args.runs)
        fill(kept, args.runs)
        for _ in range(args.rounds):
            rounds.append(
                [
                    scenario("saving off", args, None, None, clock),
                    scenario("on, empty dir", args, empty, None, clock),
                    scenario(f"on, {args.runs:,} runs", args, full, None, clock),
                    scenario(f"on, {args.runs:,} runs, max_runs", args, kept, args.runs, clock),
                ]
            )
    # the median of the rounds for each figure; the stall: the longest of any round
    rows = []
    for index in range(len(rounds[0])):
        row: dict[str, Any] = {"label": rounds[0][index]["label"]}
        for key in ("median_ms", "p95_ms", "save_ms"):
            row[key] = statistics.median(r[index][key] for r in rounds)
        row["stall_ms"] = max(r[index]["stall_ms"] for r in rounds)
        rows.append(row)
    print(
        f"{args.sessions} sessions x {args.nodes} nodes, {args.concurrency} at a time, one loop;"
        f" median of {args.rounds} interleaved rounds (stall: the longest of any round)"
    )
    header = f"{'':28} {'median ms':>10} {'p95 ms':>8} {'max stall ms':>13} {'save ms':>8}"
    print(header)
    for row in rows:
        print(
            f"{row['label']:28} {row['median_ms']:10.2f} {row['p95_ms']:8.2f}"
            f" {row['stall_ms']:13.2f} {row['save_ms']:8.2f}"
        )
    off, empty_row, full_row = rows[0], rows[1], rows[2]
    print(f"saving adds {empty_row['median_ms'] / off['median_ms'] - 1:+.0%} to the median")
    print(f"a save with {args.runs:,} runs costs {full_row['save_ms'] / empty_row['save_ms']:.2f}x")
    print(f"longest stall {max(row['stall_ms'] for row in rows):.2f} ms")


if __name__ == "__main__":
    main()
