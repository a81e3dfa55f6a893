"""The viewer's memory for received runs, and keep-alive latency, over real sockets.

Run:  .venv/bin/python benchmarks/view_memory.py [--bodies 3] [--requests 200]
      [--before /work/main/.venv/bin/python]

Starts ``railtracks view --no-browser`` as its own process (with this
interpreter, and with ``--before``'s for a side-by-side figure), then posts
16 MiB OTLP protobuf bodies of minimal spans (ids only, 40 traces a body) and
prints the process's RSS growth after the first body and after all of them,
with each answer's status and time; then the median and 95th percentile of
``GET /api/runs`` on one kept-alive connection.

Run on an otherwise idle machine: the times are wall-clock.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BODY = 16 * 1024 * 1024 - 1024


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def minimal_spans(size: int, salt: int, traces: int = 40) -> bytes:
    """An ExportTraceServiceRequest of about ``size`` bytes of spans with ids only."""
    spans = []
    total = index = 0
    while total < size - 64:
        trace = (salt << 64 | index % traces + 1).to_bytes(16, "big")
        span = _field(2, _field(1, trace) + _field(2, (index + 1).to_bytes(8, "big")))
        spans.append(span)
        total += len(span)
        index += 1
    return _field(1, _field(2, b"".join(spans)))


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def measure(python: str, bodies: int, requests: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as states:
        env = {**os.environ, "RAILTRACKS_STATE_DIR": states, "PYTHONUNBUFFERED": "1"}
        command = [python, "-m", "railtracks", "view", "--no-browser", "--port", "0"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert process.stdout is not None
            port = int(re.search(r":(\d+)/", process.stdout.readline()).group(1))  # type: ignore[union-attr]
            headers = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/x-protobuf"}
            start = rss_mb(process.pid)
            after: list[float] = []
            answers = []
            for salt in range(1, bodies + 1):
                body = minimal_spans(BODY, salt)
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                began = time.perf_counter()
                try:
                    connection.request("POST", "/v1/traces", body=body, headers=headers)
                    status = str(connection.getresponse().status)
                except OSError as exc:  # the old viewer may drop the connection
                    status = type(exc).__name__
                answers.append(f"{status} in {time.perf_counter() - began:.1f}s")
                connection.close()
                after.append(rss_mb(process.pid))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                connection.request("GET", "/api/runs", headers={"Host": headers["Host"]})
                connection.getresponse().read()
                times.append((time.perf_counter() - began) * 1000)
            connection.close()
        finally:
            process.terminate()
            process.wait(30)
    times.sort()
    return {
        "rss_start_mb": start,
        "growth_first_mb": after[0] - start,
        "growth_all_mb": after[-1] - start,
        "answers": answers,
        "keepalive_median_ms": statistics.median(times),
        "keepalive_p95_ms": times[int(len(times) * 0.95) - 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--before", help="another interpreter (an older railtracks) to compare")
    args = parser.parse_args()
    rows = [("after (this tree)", sys.executable)]
    if args.before:
        rows.insert(0, ("before", args.before))
    for label, python in rows:
        result = measure(python, args.bodies, args.requests)
        print(f"{label}: {python}")
        print(f"  RSS at start            {result['rss_start_mb']:8.1f} MB")
        print(f"  growth, 1 body of 16 MiB {result['growth_first_mb']:7.1f} MB")
        print(f"  growth, {args.bodies} bodies          {result['growth_all_mb']:7.1f} MB")
        print(f"  answers                 {', '.join(result['answers'])}")  # type: ignore[arg-type]
        print(
            f"  keep-alive GET /api/runs median {result['keepalive_median_ms']:.2f} ms, "
            f"p95 {result['keepalive_p95_ms']:.2f} ms ({args.requests} requests)"
        )


if __name__ == "__main__":
    main()
