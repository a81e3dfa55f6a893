"""An application whose global tracer provider is not the SDK's, with railtracks sessions in it.

Run by tests/test_host_provider.py as ``python foreign_provider_app.py KIND``:

* ``bare``: an API ``TracerProvider`` subclass whose tracers make only
  non-recording spans (and takes no processor);
* ``unhashable``: a dataclass proxy of an SDK provider (unhashable, ``==`` by
  fields), which keeps it under a name railtracks does not know;
* ``vendor``: an object that is no ``TracerProvider`` at all, hashes and
  compares with an error, takes span processors, and whose tracers are its own
  wrappers around an SDK provider it hides.

Prints one JSON report: the results, the saved state's tree, the span names
the host's exporter received.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import railtracks as rt

KIND = sys.argv[1]
exporter = InMemorySpanExporter()


class BareProvider(trace.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return trace.NoOpTracer()


@dataclasses.dataclass
class UnhashableProxy(trace.TracerProvider):
    target: SdkTracerProvider

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return self.target.get_tracer(*args, **kwargs)

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self.target.add_span_processor(processor)


class VendorTracer:
    """Not an SDK tracer: a wrapper, as vendors make."""

    def __init__(self, inner: trace.Tracer) -> None:
        self._inner = inner

    @contextmanager
    def start_as_current_span(self, name: str, **kwargs: Any) -> Iterator[trace.Span]:
        with self._inner.start_as_current_span(name, **kwargs) as span:
            yield span

    def start_span(self, name: str, **kwargs: Any) -> trace.Span:
        return self._inner.start_span(name, **kwargs)


class Vendor:
    __slots__ = ("_add", "_get")

    def __init__(self) -> None:
        hidden = SdkTracerProvider()
        hidden.add_span_processor(SimpleSpanProcessor(exporter))
        self._get = lambda *a, **k: VendorTracer(hidden.get_tracer(*a, **k))
        self._add = hidden.add_span_processor

    def get_tracer(self, *args: Any, **kwargs: Any) -> VendorTracer:
        return self._get(*args, **kwargs)  # type: ignore[no-any-return]

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self._add(processor)

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("a vendor object that cannot be compared")

    __hash__ = None  # type: ignore[assignment]


def install() -> object:
    if KIND == "bare":
        return BareProvider()
    if KIND == "unhashable":
        sdk = SdkTracerProvider()
        sdk.add_span_processor(SimpleSpanProcessor(exporter))
        return UnhashableProxy(sdk)
    return Vendor()


trace.set_tracer_provider(install())  # type: ignore[arg-type]  # whatever the host installs


@rt.function_node
async def child(x: int) -> int:
    return x + 1


@rt.function_node
async def parent(x: int) -> int:
    with trace.get_tracer("vendor.lib").start_as_current_span("vendor call"):
        return await rt.call(child, x) * 10


@rt.session(name="hosted", logging_setting="NONE")
async def flow(x: int) -> int:
    return await rt.call(parent, x)


def walk(nodes: list[dict[str, Any]]) -> list[Any]:
    return [[n["name"], walk(n["children"])] for n in nodes]


results = [asyncio.run(flow(x))[0] for x in (1, 2)]
_, session = asyncio.run(flow(3))
print(
    json.dumps(
        {
            "results": results,
            "status": session.status,
            "state_path": str(session.state_path),
            "state": walk(rt.load_state("hosted")["nodes"]),
            "host_spans": sorted(
                s.name
                for s in exporter.get_finished_spans()
                if format(s.context.trace_id, "032x") == session.trace_id  # type: ignore[union-attr]
            ),
        }
    )
)
