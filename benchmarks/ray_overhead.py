"""A remote node call through railtracks against a bare Ray task doing the same work.

Run:  .venv/bin/python benchmarks/ray_overhead.py [--calls N] [--rounds R] [--fan F]

Starts a local Ray instance (2 CPUs, 150 MB object store) and measures, in
this one run:

* per-call latency, sequential: ``await work.remote(x)`` (a bare Ray task)
  against ``await rt.call(work_node, x)`` in a session whose ``executor`` is a
  ``RayExecutor`` (``logging_setting="NONE"``, no state file, no export); the
  work is the same function (a sum over 20,000 integers). Best of R rounds of
  N calls each, rounds interleaved; the ratio is railtracks over bare Ray;
* throughput: one session fanning F calls over the cluster with
  ``asyncio.gather``, against F bare Ray tasks gathered the same way, in
  calls per second (and the railtracks session's spans counted, to show
  none is lost).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import railtracks as rt
from railtracks.ray import RayExecutor

WORK = 20_000


def work(x: int) -> int:
    return sum(range(WORK)) + x


work_node = rt.function_node(work, name="work")


async def bare_sequential(remote: Any, calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        await remote.remote(i)
    return (time.perf_counter() - started) / calls


async def railtracks_sequential(executor: RayExecutor, calls: int) -> float:
    async with rt.Session(executor=executor, logging_setting="NONE", save_state=False):
        started = time.perf_counter()
        for i in range(calls):
            await rt.call(work_node, i)
        return (time.perf_counter() - started) / calls


async def bare_fan(remote: Any, calls: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(remote.remote(i) for i in range(calls)))
    return calls / (time.perf_counter() - started)


async def railtracks_fan(executor: RayExecutor, calls: int) -> tuple[float, int]:
    async with rt.Session(executor=executor, logging_setting="NONE", save_state=False) as session:
        started = time.perf_counter()
        await asyncio.gather(*(rt.call(work_node, i) for i in range(calls)))
        rate = calls / (time.perf_counter() - started)
    return rate, len(session.spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--fan", type=int, default=10_000)
    args = parser.parse_args()

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # every Ray address on 127.0.0.1, not the machine's network address
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(
        num_cpus=2,
        object_store_memory=150 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",  # local traffic stays on the loopback interface
    )
    remote = ray.remote(max_retries=0)(work)
    executor = RayExecutor()

    async def run() -> None:
        # warm up: workers started, functions exported, both paths once
        for _ in range(20):
            await remote.remote(0)
        await railtracks_sequential(executor, 20)
        bare_best, rt_best = float("inf"), float("inf")
        for _ in range(args.rounds):
            bare_best = min(bare_best, await bare_sequential(remote, args.calls))
            rt_best = min(rt_best, await railtracks_sequential(executor, args.calls))
        print(f"per call, sequential (best of {args.rounds} x {args.calls}):")
        print(f"  bare Ray task            {bare_best * 1e3:8.3f} ms")
        print(f"  rt.call on RayExecutor   {rt_best * 1e3:8.3f} ms")
        print(f"  ratio                    {rt_best / bare_best:8.2f} x   (aim <= 1.2 x)")
        bare_rate = await bare_fan(remote, args.fan)
        rt_rate, spans = await railtracks_fan(executor, args.fan)
        print(f"fan-out of {args.fan} calls over the cluster:")
        print(f"  bare Ray tasks           {bare_rate:8.0f} calls/s")
        print(f"  one railtracks session   {rt_rate:8.0f} calls/s   ({spans} spans collected)")

    asyncio.run(run())
    ray.shutdown()


if __name__ == "__main__":
    main()
