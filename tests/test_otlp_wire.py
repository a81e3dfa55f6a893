"""railtracks writes OTLP trace requests itself: byte for byte what the SDK's encoder writes."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState

import railtracks as rt
from railtracks._delivery.otlp.send import encode
from railtracks._delivery.otlp.sizing import Piece, Unreadable, count_spans, halves, split
from railtracks._delivery.otlp.wire import TraceRequestWriter
from railtracks.testing import capture_spans

_VALUES: dict[str, Any] = {
    "str": "text",
    "empty": "",
    "unicode": "é✓😀",
    "true": True,
    "false": False,
    "zero": 0,
    "negative": -(2**63),
    "large": 2**63 - 1,
    "float": 1.5,
    "nan": math.nan,
    "inf": -math.inf,
    "bytes": b"\x00\xff",
    "strings": ("a", "", "b"),
    "ints": (1, -2, 3),
    "floats": (0.5, -0.0),
    "bools": (True, False),
    "empty array": (),
}


def _sdk(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def _spans(provider: TracerProvider) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scope-a", "1.2", schema_url="https://schema/a")
    other = provider.get_tracer("scope-b", attributes={"scope.attr": "v"})
    remote = SpanContext(0xABC, 0xDEF, True, TraceFlags(1), TraceState([("vendor", "v1")]))
    with tracer.start_as_current_span("root", attributes=_VALUES, kind=SpanKind.SERVER) as root:
        root.add_event("")
        root.add_event("event", {"k": "v", "n": 3}, timestamp=123)
        with other.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(trace.Status(trace.StatusCode.ERROR, "it failed"))
        with tracer.start_as_current_span("ok") as ok:
            ok.set_status(trace.StatusCode.OK)
    with tracer.start_as_current_span(
        "remote child",
        context=trace.set_span_in_context(NonRecordingSpan(remote)),
        links=[Link(remote, {"link.attr": 1}), Link(root.get_span_context())],
        kind=SpanKind.PRODUCER,
    ):
        pass
    tracer.start_span("consumer", kind=SpanKind.CONSUMER, attributes={"": "empty key"}).end()
    return list(memory.get_finished_spans())


def test_every_kind_of_value_event_link_status_and_scope_is_written_as_the_sdk_writes_it() -> None:
    spans = _spans(TracerProvider(resource=Resource({"service.name": "s"}, "https://schema/r")))
    assert TraceRequestWriter().request(spans) == _sdk(spans)
    writer = TraceRequestWriter()
    writer.request(spans)
    assert writer.request(spans) == _sdk(spans)  # from its caches, the same bytes


def test_several_resources_and_dropped_counts() -> None:
    limited = TracerProvider(
        resource=Resource({"service.name": "limited"}),
        span_limits=SpanLimits(max_span_attributes=3, max_events=1, max_links=1,
                               max_event_attributes=1),
    )  # fmt: skip
    spans = _spans(TracerProvider(resource=Resource({"service.name": "one"}))) + _spans(limited)
    assert any(s.dropped_attributes for s in spans)
    assert any(s.dropped_events for s in spans)
    assert any(s.dropped_links for s in spans)
    assert any(e.dropped_attributes for s in spans for e in s.events)
    assert TraceRequestWriter().request(spans) == _sdk(spans)


def test_a_value_that_cannot_be_encoded_leaves_out_its_key_as_the_sdk_does() -> None:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("ok", 1)
        span._attributes._dict["lone"] = "\ud800"  # type: ignore[attr-defined]  # past the SDK's checks
        span._attributes._dict["huge"] = 2**64  # type: ignore[attr-defined]  # likewise
    spans = list(memory.get_finished_spans())
    request = ExportTraceServiceRequest.FromString(TraceRequestWriter().request(spans))
    kept = [kv.key for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes]
    assert kept == ["ok"]


def test_railtracks_spans_are_sent_as_the_sdk_would_send_them() -> None:
    @rt.function_node
    async def fails(x: int) -> int:
        raise ValueError(f"bad {x}")

    @rt.function_node
    async def works(x: int) -> dict[str, int]:
        return {"x": x}

    @rt.session(name="wire", context={"user": "u1"}, save_state=False)
    async def flow() -> None:
        await rt.call(works, 1)
        with pytest.raises(ValueError, match="bad 2"):
            await rt.call(fails, 2)

    with capture_spans() as captured:
        asyncio.run(flow())
    spans = list(captured.spans())
    assert len(spans) == 3
    assert encode(spans) == _sdk(spans)


# -- requests cut to a size limit (issue 19) ----------------------------------------------


def _decoded(data: bytes) -> list[tuple[Any, ...]]:
    """Every span with its resource, resource schema, scope and scope schema, in order."""
    request = ExportTraceServiceRequest.FromString(data)
    return [
        (
            resource_spans.resource.SerializeToString(),
            resource_spans.schema_url,
            scope_spans.scope.SerializeToString(),
            scope_spans.schema_url,
            span.SerializeToString(),
        )
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def test_a_request_over_the_limit_is_cut_into_requests_within_it_losing_nothing() -> None:
    spans = _spans(TracerProvider(resource=Resource({"service.name": "a"}, "https://schema/r")))
    spans += _spans(TracerProvider(resource=Resource({"service.name": "b"})))
    data = TraceRequestWriter().request(spans * 20)
    assert count_spans(data) == len(spans) * 20
    assert split(data, len(data)) == ([Piece(data, len(spans) * 20)], [])  # unchanged
    largest = max(len(TraceRequestWriter().request([span])) for span in spans)
    fits, too_large = split(data, largest + 10)
    assert too_large == []
    assert len(fits) > 1
    assert all(len(piece.data) <= largest + 10 for piece in fits)
    assert [count_spans(piece.data) for piece in fits] == [piece.spans for piece in fits]
    assert [row for piece in fits for row in _decoded(piece.data)] == _decoded(data)
    first, second = halves(data)
    assert _decoded(first.data) + _decoded(second.data) == _decoded(data)
    assert first.spans + second.spans == len(spans) * 20


def test_a_span_too_large_for_the_limit_comes_apart_and_garbage_is_unreadable() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    made = []
    for size in (10, 5000, 10):
        span = tracer.start_span("s", attributes={"blob": "x" * size})
        span.end()
        made.append(span)
    data = TraceRequestWriter().request(made)  # type: ignore[arg-type]
    fits, too_large = split(data, 1024)
    assert [piece.spans for piece in fits] == [2]
    assert [piece.spans for piece in too_large] == [1]
    assert _decoded(too_large[0].data)[0][4] == _decoded(data)[1][4]
    for bad in (b"\xff\xff", data[:-3], b"\x0b\x00", b"\x12\x00"):
        with pytest.raises(Unreadable):
            count_spans(bad)
