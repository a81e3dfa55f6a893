"""Assembling a state's call tree: what cutting parent loops costs on ordinary trees.

Run:  .venv/bin/python benchmarks/tree_shapes.py [--sizes 100000 500000]
      [--baseline SRC]   # the same figures with another checkout's src/ side by side

For each size N and shape, the nodes' call tree is assembled and counted the
way the state writer does it (``_runs.tree.children_of``, ``_runs.head.tree_counts``,
then the whole ``_runs.tree.walk``), best of three, in milliseconds:

* ``flat``: N top-level nodes (sequential calls);
* ``binary``: a complete binary tree (N/2 nodes have children);
* ``chain``: N nodes each under the previous one (deep nesting);
* ``loops``: a binary tree where one node in 1,000 is its own parent and one
  pair in 1,000 are each other's (what a hostile reply could try); a
  checkout without loop cutting never ends on it, so the baseline skips it.

With ``--baseline``, the script runs itself again with ``PYTHONPATH=SRC``
(e.g. a ``git archive`` of an earlier commit) and prints both columns.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

from railtracks._recording.compact import FinishedSpan, Record, record
from railtracks._runs.head import tree_counts
from railtracks._runs.tree import children_of, walk

SHAPES = ("flat", "binary", "chain", "loops")
_SPAN_ID, _PARENT, _START = 2, 5, 7  # fields of a compact record (_recording.compact)


def _template() -> Record:
    span = ReadableSpan(
        name="step",
        context=SpanContext(1, 1, False),
        parent=SpanContext(1, 1, False),
        attributes={"railtracks.node.name": "step", "railtracks.status": "completed"},
        start_time=1,
        end_time=2,
        instrumentation_scope=InstrumentationScope("railtracks"),
    )
    return record(span)


def _parent(shape: str, index: int) -> int:
    """The parent span id of node ``index`` (ids are index + 2; 1 is the session span)."""
    if shape == "flat" or index == 0:
        return 1
    if shape == "chain":
        return index + 1
    if shape == "loops" and index % 1000 == 500:
        return index + 2  # its own parent
    if shape == "loops" and index % 1000 in (700, 701):
        return index + 3 if index % 1000 == 700 else index + 1  # each other's
    return (index - 1) // 2 + 2


def nodes_of(shape: str, size: int) -> list[FinishedSpan]:
    base = list(_template())
    nodes = []
    for index in range(size):
        base[_SPAN_ID], base[_PARENT], base[_START] = index + 2, _parent(shape, index), index
        nodes.append(FinishedSpan.view(tuple(base)))
    return nodes


def assemble(nodes: list[FinishedSpan]) -> int:
    children = children_of(list(nodes))
    counted = tree_counts(children)["nodes"]
    walked = sum(1 for item in walk(children, lambda span: {}) if item is not None)
    assert counted == walked, (counted, walked)
    return walked


def best_ms(action: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def measure(sizes: list[int], shapes: tuple[str, ...]) -> dict[str, float]:
    figures: dict[str, float] = {}
    for size in sizes:
        for shape in shapes:
            nodes = nodes_of(shape, size)
            assert assemble(nodes) == size, f"{shape}: nodes lost"
            figures[f"{shape} {size}"] = best_ms(lambda nodes=nodes: assemble(nodes))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 500_000])
    parser.add_argument("--baseline", help="another checkout's src/ directory")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    figures = measure(args.sizes, tuple(args.shapes))
    if args.json:
        print(json.dumps(figures))
        return
    baseline: dict[str, float] = {}
    if args.baseline:
        command = [sys.executable, __file__, "--json", "--sizes", *map(str, args.sizes)]
        command += ["--shapes", *[shape for shape in SHAPES if shape != "loops"]]
        env = {**os.environ, "PYTHONPATH": args.baseline}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        baseline = json.loads(done.stdout)
    print(f"{'shape and size':<18}{'this checkout':>15}{'baseline':>12}   (ms, best of 3)")
    for key, value in figures.items():
        other = f"{baseline[key]:.1f}" if key in baseline else "-"
        print(f"{key:<18}{value:>15.1f}{other:>12}")


if __name__ == "__main__":
    main()
