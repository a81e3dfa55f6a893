"""Encoding OTLP trace requests: the SDK's protobuf objects against railtracks' direct writer.

Run:  .venv/bin/python benchmarks/otlp_encoding.py [--spans 512] [--rounds 20]

Batches of finished SDK spans, as the batch processor hands them over: one
with the six attributes of floor.py's baseline span, one with the sixteen a
railtracks node span carries. Prints microseconds per span, best of the
rounds, and checks both encoders write the same bytes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from railtracks._delivery.otlp.wire import TraceRequestWriter

try:
    from floor import ATTRIBUTES, NODE_ATTRIBUTES
except ImportError:  # run as a module
    from benchmarks.floor import ATTRIBUTES, NODE_ATTRIBUTES


def batch(count: int, start: Mapping[str, Any], end: Mapping[str, Any]) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("railtracks", "0.1.0")
    for i in range(count):
        span = tracer.start_span("trivial", attributes={**start, "railtracks.node.input": str(i)})
        span.set_attributes(end)
        span.end()
    return list(memory.get_finished_spans())


def best(job: Callable[[], bytes], spans: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return min(times) / spans * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    output = {"railtracks.node.output": "1", "output.value": "1"}
    batches = {
        "6 attributes (floor.py's baseline span)": batch(
            args.spans, ATTRIBUTES, {"railtracks.node.output": "1"}
        ),
        "16 attributes (a railtracks node span)": batch(
            args.spans,
            NODE_ATTRIBUTES,
            {**output, "output.mime_type": "application/json", "railtracks.status": "completed"},
        ),
    }
    print(f"batches of {args.spans} spans, best of {args.rounds} rounds, microseconds per span")
    print(f"  {'':42}{'SDK encoder':>13}{'railtracks':>12}")
    for name, spans in batches.items():
        writer = TraceRequestWriter()
        assert writer.request(spans) == encode_spans(spans).SerializeToString()
        sdk = best(lambda: encode_spans(spans).SerializeToString(), len(spans), args.rounds)  # noqa: B023  # called in this iteration
        ours = best(lambda: writer.request(spans), len(spans), args.rounds)  # noqa: B023  # likewise
        print(f"  {name:42}{sdk:>11.2f}us{ours:>10.2f}us   ({sdk / ours:.1f}x)")


if __name__ == "__main__":
    main()
