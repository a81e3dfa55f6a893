"""How much of a 20,000-call session reaches a collector: stock batch processor vs railtracks'.

Run:  .venv/bin/python benchmarks/export_burst.py [--calls N]

Both processors run with their default settings and export over OTLP/HTTP to
the same local receiver (another process on 127.0.0.1), which counts the
spans it is sent. The session fans out N concurrent node calls; the figure is
how many of its N + 1 spans arrive after a flush.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import railtracks as rt
from railtracks._delivery.telemetry import TELEMETRY
from railtracks.testing._receiver import otlp_receiver_process


@rt.function_node
async def step(i: int) -> int:
    return i


def burst(calls: int) -> float:
    @rt.session(name="burst", logging_setting="NONE", save_state=False)
    async def flow() -> None:
        await asyncio.gather(*(rt.call(step, i) for i in range(calls)))

    started = time.perf_counter()
    asyncio.run(flow())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    expected = args.calls + 1
    rows = []
    with otlp_receiver_process(grpc=False) as sink:  # its own process: costs the run nothing
        # the stock processor, fed by the same provider railtracks uses
        rt.configure(console_stream=io.StringIO(), export=False)
        TELEMETRY.tracer()
        stock = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{sink.http_endpoint}/v1/traces"))
        TELEMETRY.fanout.add(stock)
        elapsed = burst(args.calls)
        stock.force_flush(60_000)
        time.sleep(0.5)
        rows.append(("SDK BatchSpanProcessor (defaults)", sink.stats().total, elapsed))
        TELEMETRY.fanout.remove(stock)
        stock.shutdown()
        sink.reset()
        # railtracks' own pipeline, configured like a user would
        rt.configure(
            console_stream=io.StringIO(), endpoint=sink.http_endpoint, protocol="http/protobuf"
        )
        elapsed = burst(args.calls)
        rt.flush(60)
        time.sleep(0.5)
        rows.append(("railtracks ReliableBatchSpanProcessor", sink.stats().total, elapsed))
    print(f"session of {args.calls} concurrent calls ({expected} spans), OTLP/HTTP to 127.0.0.1")
    print(f"{'processor':40}{'received':>10}{'lost':>8}{'run time':>11}")
    for name, received, elapsed in rows:
        lost = expected - received
        print(f"{name:40}{received:>10}{lost / expected:>8.1%}{elapsed:>10.2f}s")


if __name__ == "__main__":
    main()
