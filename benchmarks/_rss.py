"""The start of the benchmarks' child scripts: one session of N calls, and its memory.

A child script is this text followed by its own: it reads ``calls`` and the
state directory from its arguments, defines the ``step`` node the session
calls, and ``peak_mb()`` / ``rss_mb()``: the process's peak RSS (VmHWM, this
address space's own peak: ``ru_maxrss`` would carry over the parent's peak
through fork and exec) and its current RSS, in MB.
"""

from __future__ import annotations

CHILD_PRELUDE = r"""
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
"""
