"""``railtracks import`` of a 100,000-span OTLP file, and ``railtracks diff`` of two such runs.

Run:  .venv/bin/python benchmarks/import_large.py [--nodes N] [--rounds R] [--base DIR ...]

A real session of N node calls (100 planners of N/100 calls each) saves its
state; its spans are written as OTLP/protobuf (the SDK's encoder, in the
export's batches of 512, concatenated: one request) and as OTLP/JSON in the
Collector's file-exporter shape (a request per line, hex ids). Each file is
imported by ``railtracks import`` in its own process (wall time, peak RSS from
``wait4``); then ``railtracks diff`` compares the imported run with the
original. ``json.load`` of the state is printed beside them as the floor.
With ``--base DIR`` (repeatable: another commit's tree, e.g. made with ``git
archive <commit> | tar -x -C DIR``) each import is also run by that tree's
code, interleaved round by round with this tree's; each row is the median of
R rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAILTRACKS = str(Path(sys.executable).with_name("railtracks"))


def record_run(directory: Path, nodes: int) -> Path:
    os.environ["RAILTRACKS_STATE_DIR"] = str(directory)
    import railtracks as rt

    @rt.function_node
    async def fetch(i: int) -> dict[str, int]:
        return {"i": i, "size": i % 97}

    @rt.function_node
    async def plan(block: int, size: int) -> int:
        for i in range(size):
            await rt.call(fetch, block * size + i)
        return block

    @rt.session(name="big", logging_setting="NONE")
    async def flow() -> None:
        per = nodes // 100 - 1
        await asyncio.gather(*(rt.call(plan, b, per) for b in range(100)))

    asyncio.run(flow())
    rt.flush()
    return directory / "big.json"


def write_files(state_path: Path, out: Path) -> tuple[Path, Path, int]:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from railtracks._runs.respan import spans_from_state
    from railtracks._runs.store import load_state

    spans = list(spans_from_state(load_state(state_path)))
    pb, js = out / "big.pb", out / "big.json"
    with pb.open("wb") as proto, js.open("w") as lines:
        for start in range(0, len(spans), 512):
            request = encode_spans(spans[start : start + 512])
            proto.write(request.SerializeToString())
            document = MessageToDict(request, use_integers_for_enums=True)
            for resource_spans in document["resourceSpans"]:
                for scope_spans in resource_spans["scopeSpans"]:
                    for span in scope_spans["spans"]:
                        for key in ("traceId", "spanId", "parentSpanId"):
                            if key in span:
                                span[key] = base64.b64decode(span[key]).hex()
            lines.write(json.dumps(document, separators=(",", ":")) + "\n")
    return pb, js, len(spans)


# Linux keeps a process's peak RSS across exec, so a child forked from this large
# process would report this one's: a small launcher forks the measured command.
_LAUNCHER = (
    "import os, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "print(time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status),"
    " file=sys.stderr)\n"
)


def timed(command: list[str], cwd: Path, tree: Path | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of a command in a process of its own (``tree``:
    with that tree's ``src`` first on the path)."""
    env = {k: v for k, v in os.environ.items() if k != "RAILTRACKS_STATE_DIR"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *command], cwd=cwd, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    seconds, peak_kib, code = done.stderr.split()[-3:]
    if int(code) not in (0, 1):
        raise SystemExit(f"{command} failed: {done.stderr}")
    return float(seconds), int(peak_kib) / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--base", type=Path, action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        state = record_run(root / "source", args.nodes)
        pb, js, spans = write_files(state, root)
        started = time.perf_counter()
        json.loads(state.read_bytes())
        floor = time.perf_counter() - started
        rows = [("json.load of the state (floor)", state.stat().st_size, floor, None)]
        trees: list[tuple[str, Path | None]] = [(str(b)[-20:], b) for b in args.base]
        trees.append(("this tree", None))
        for label, path in (("import OTLP/protobuf", pb), ("import OTLP/JSON lines", js)):
            measured: dict[str, list[tuple[float, float]]] = {shown: [] for shown, _ in trees}
            for round_ in range(args.rounds):
                for number, (shown, tree) in enumerate(trees):
                    target = root / f"into-{path.suffix[1:]}-{round_}-{number}"
                    target.mkdir()
                    command = [sys.executable, "-m", "railtracks", "import", str(path)]
                    seconds, peak, _ = timed(command, target, tree)
                    measured[shown].append((seconds, peak))
            for shown, _ in trees:
                seconds = statistics.median(m[0] for m in measured[shown])
                peak = max(m[1] for m in measured[shown])
                rows.append((f"{label}, {shown}", path.stat().st_size, seconds, peak))
        imported = root / f"into-pb-0-{len(trees) - 1}" / ".railtracks" / "big.json"
        seconds, peak, out = timed([RAILTRACKS, "diff", str(state), str(imported)], root)
        rows.append(("diff original vs imported", 2 * state.stat().st_size, seconds, peak))
        from railtracks._reuse.rundiff import diff_states
        from railtracks._runs.store import load_state

        started = time.perf_counter()
        states = [load_state(state), load_state(imported)]
        reading = time.perf_counter() - started
        started = time.perf_counter()
        diff_states(*states)
        aligning = time.perf_counter() - started
        rows.append(("  of which: reading both (strict)", 2 * state.stat().st_size, reading, None))
        rows.append(("  of which: aligning, comparing", 0, aligning, None))
        verdict = out.splitlines()[-1]
        print(f"{spans:,} spans ({args.nodes:,} nodes + session); diff says: {verdict}")
        print(f"{'step':<56}{'input MB':>10}{'seconds':>10}{'spans/s':>12}{'peak RSS MiB':>14}")
        for label, size, secs, rss in rows:
            rate = f"{spans / secs:,.0f}"
            shown = "-" if rss is None else f"{rss:,.0f}"
            print(f"{label:<56}{size / 1e6:>10.1f}{secs:>10.2f}{rate:>12}{shown:>14}")


if __name__ == "__main__":
    main()
