"""Building and writing the saved state of a large session: time, file size, peak memory.

Run:  .venv/bin/python benchmarks/state_size.py [--sizes 10000 100000]

For each size N, one session makes N sequential node calls (``logging_setting
="NONE"``, no exporter). Reported, in one process:

* the per-call cost of ``rt.call`` in that session (the run itself);
* the time to build the state from the collected spans, and per node;
* the time to write it (atomically and durably) and the file's size;
* the time to load it back with ``rt.load_state`` (parse plus schema validation);
* the peak memory (tracemalloc, in a separate pass) of building plus writing,
  beyond the spans themselves.

Growth is linear when the per-node figures stay flat from 10,000 to 100,000.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import tempfile
import time
import tracemalloc
from pathlib import Path

import railtracks as rt
from railtracks._runs.state import build_state
from railtracks._runs.store import write_atomically


@rt.function_node
async def step(i: int) -> dict[str, int]:
    return {"i": i, "square": i * i}


def run_session(calls: int) -> tuple[rt.Session, float]:
    @rt.session(name="big", logging_setting="NONE", save_state=False)
    async def flow() -> int:
        for i in range(calls):
            await rt.call(step, i)
        return calls

    started = time.perf_counter()
    _, session = asyncio.run(flow())
    return session, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    rt.configure(console_stream=io.StringIO(), export=False)
    print(
        f"{'nodes':>8}{'rt.call':>11}{'build':>9}{'per node':>10}{'share':>7}"
        f"{'write':>9}{'file':>10}{'load':>9}{'peak mem':>10}"
    )
    for size in args.sizes:
        session, run_seconds = run_session(size)
        spans = session.spans
        gc.collect()
        started = time.perf_counter()
        state = build_state(spans)
        built = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "big.json"
            started = time.perf_counter()
            write_atomically(path, state)
            written = time.perf_counter() - started
            size_mb = path.stat().st_size / 1e6
            started = time.perf_counter()
            rt.load_state(path)
            loaded = time.perf_counter() - started
            del state
            gc.collect()
            # memory in a second pass: tracemalloc slows everything it watches
            tracemalloc.start()
            write_atomically(path, build_state(spans))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        call_us = run_seconds / size * 1e6
        per_node_us = built / size * 1e6
        print(
            f"{size:>8}{call_us:>9.1f}us{built:>8.2f}s{per_node_us:>8.1f}us"
            f"{per_node_us / call_us:>7.0%}{written:>8.2f}s{size_mb:>8.1f}MB{loaded:>8.2f}s"
            f"{peak / 1e6:>8.0f}MB"
        )
        del spans, session
        gc.collect()


if __name__ == "__main__":
    main()
