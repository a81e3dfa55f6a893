"""Cost of secret redaction and scrubbing in value encoding (issue 9).

Run:  .venv/bin/python benchmarks/scrubbing.py [--rounds R]

Encodes typical node payloads with the default rules and with
``rt.configure(redact=False)``'s encoder, side by side, in microseconds per
value (best of R rounds). The payloads: a small argument dict, a dict with a
nested credential, a 4 KB string, a 1 MB string (cut to the limit first) and
a 100,000-item list (the walk stops at the limit's budget).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from railtracks._recording.encoding import ValueEncoder

PAYLOADS: dict[str, Any] = {
    "small dict (3 args)": {"user": "alice", "count": 3, "tags": ["a", "b"]},
    "nested credential": {"db": {"url": "postgres://u:pw@h/x", "password": "p"}, "n": 1},
    "4 KB text": "lorem ipsum dolor sit amet " * 150,
    "1 MB text": "x" * 1_000_000,
    "100,000-int list": list(range(100_000)),
}


def _best(function: Callable[[], object], rounds: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    on, off = ValueEncoder(), ValueEncoder(redact=False)
    print(f"{'payload':<22}{'scrubbed µs':>14}{'redact=False µs':>18}{'ratio':>8}")
    for name, value in PAYLOADS.items():
        repeat = 20 if "100,000" in name or "1 MB" in name else 500
        with_rules = _best(lambda v=value: on.json(v), args.rounds, repeat)
        without = _best(lambda v=value: off.json(v), args.rounds, repeat)
        print(f"{name:<22}{with_rules:>14.1f}{without:>18.1f}{with_rules / without:>8.2f}x")


if __name__ == "__main__":
    main()
