"""``railtracks runs`` over a directory holding a 1,000,000-node state (target <= 1 s).

Run:  .venv/bin/python benchmarks/runs_large.py [--nodes 1000000] [--small 1000] [--repeat 5]

The state is written by railtracks' own writer (``_runs.state.state_parts`` +
``_runs.store.encode_state_chunks`` + ``write_bytes_atomically``, as a session
end does) from synthetic spans: the spans of a real 12-call session are the
templates, cloned to N nodes with fresh ids and times (groups of one node and
nine children; one child in a thousand failed). Making N real calls would
measure ``rt.call`` instead (``benchmarks/floor.py --big`` does that whole path).

Printed, each the median of ``--repeat`` runs of the command as a subprocess:

* ``railtracks runs`` over an empty directory (the command's own start-up);
* over the directory holding the N-node state;
* over the same directory plus ``--small`` copies of a 20-node state written
  the same way (many files);
* the same N-node state rewritten as schema_version 1 (no counts in the head:
  ``runs`` must parse it whole), with ``--v1`` (slow: the old cost).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from opentelemetry.trace import StatusCode

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks._recording.compact import FinishedSpan, compact
from railtracks._runs.state import gc_paused, state_parts
from railtracks._runs.store import encode_state_chunks, write_bytes_atomically

RAILTRACKS = str(Path(sys.executable).with_name("railtracks"))


@rt.function_node
async def step(i: int) -> dict[str, int]:
    if i == 3:
        raise ValueError("three")
    return {"i": i, "square": i * i}


def _templates() -> tuple[FinishedSpan, FinishedSpan, FinishedSpan]:
    """(session span, a completed node span, a failed node span) of a real session."""

    @rt.session(name="big", logging_setting="NONE", save_state=False)
    async def flow() -> None:
        for i in range(12):
            with contextlib.suppress(ValueError):
                await rt.call(step, i)

    _, session = asyncio.run(flow())
    spans = compact(session.spans)
    root = next(
        s for s in spans if attr.SESSION_ID in s.attributes and attr.NODE_NAME not in s.attributes
    )
    nodes = [s for s in spans if s is not root]
    done = next(s for s in nodes if s.status_code is not StatusCode.ERROR)
    failed = next(s for s in nodes if s.status_code is StatusCode.ERROR)
    return root, done, failed


def _clone(template: FinishedSpan, span_id: int, parent: int, start: int) -> FinishedSpan:
    span = FinishedSpan.__new__(FinishedSpan)
    for name in FinishedSpan.__slots__:
        setattr(span, name, getattr(template, name))
    span.span_id, span.parent_id = span_id, parent
    span.start_time, span.end_time = start, start + 40_000
    return span


def synthetic_spans(count: int) -> list[FinishedSpan]:
    root, done, failed = _templates()
    spans = [root]
    start = root.start_time or 0
    group = 0
    for index in range(count):
        span_id = 0x1000_0000_0000 + index
        if index % 10 == 0:
            group = span_id
            spans.append(_clone(done, span_id, root.span_id, start + index * 50_000))
        else:
            template = failed if index % 1000 == 999 else done
            spans.append(_clone(template, span_id, group, start + index * 50_000))
    return spans


def write_state(path: Path, count: int) -> float:
    spans = synthetic_spans(count)
    started = time.perf_counter()
    with gc_paused():
        write_bytes_atomically(path, encode_state_chunks(*state_parts(spans)))
    return time.perf_counter() - started


def time_runs(directory: Path, repeat: int) -> tuple[float, str]:
    times = []
    out = ""
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(
            [RAILTRACKS, "runs"],
            env={**os.environ, "RAILTRACKS_STATE_DIR": str(directory)},
            capture_output=True, text=True, check=True, timeout=900,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
        out = done.stdout
    return statistics.median(times), out


@contextlib.contextmanager
def _directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def _as_version_1(source: Path, target: Path) -> None:
    """The same file as railtracks wrote it before the counts (streamed, byte for byte else)."""
    with source.open("rb") as reader, target.open("wb") as writer:
        head = reader.read(1 << 16)
        cut = head.index(b'"session":')
        start = head.index(b'"counts":')
        writer.write(head[:start].replace(b'"schema_version":2', b'"schema_version":1'))
        writer.write(head[cut:])
        shutil.copyfileobj(reader, writer, 1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--v1", action="store_true", help="also time a version 1 copy")
    args = parser.parse_args()
    rt.configure(console_stream=io.StringIO(), export=False)
    with _directory() as empty, _directory() as big, _directory() as many:
        floor, _ = time_runs(empty, args.repeat)
        print(f"railtracks runs, empty directory (start-up):   {floor:7.3f} s")
        path = big / "big.json"
        wrote = write_state(path, args.nodes)
        size = path.stat().st_size / 1e6
        print(f"state written: {args.nodes:,} nodes, {size:,.0f} MB in {wrote:.1f} s (real writer)")
        took, out = time_runs(big, args.repeat)
        row = out.splitlines()[1].split()
        shown = " ".join(row)
        print(f"railtracks runs, the {args.nodes:,}-node state: {took:7.3f} s   row: {shown}")
        assert row[4:] == [str(args.nodes), str(args.nodes // 1000)], row
        shutil.copy(path, many / "big.json")
        small = many / "small-0.json"
        write_state(small, 20)
        for index in range(1, args.small):
            shutil.copy(small, many / f"small-{index}.json")
        took, out = time_runs(many, args.repeat)
        rows = len(out.splitlines()) - 1
        print(f"railtracks runs, + {args.small:,} small states ({rows:,} rows): {took:7.3f} s")
        if args.v1:
            old = big / "big-v1.json"
            _as_version_1(path, old)
            path.unlink()
            took, out = time_runs(big, 1)
            print(f"railtracks runs, the same state as version 1:  {took:7.3f} s (parsed whole)")
    print("target: <= 1 s for the directory holding the 1,000,000-node state")


if __name__ == "__main__":
    main()
