"""railtracks' own spans (``_recording.fastspan``) match ``tracer.start_span``'s, to the letter.

Every test runs one workflow twice, once with railtracks' spans and once with
the SDK tracer's, and compares everything a processor or exporter can read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

import railtracks as rt
from railtracks._delivery.telemetry import TELEMETRY
from railtracks._recording import fastspan as _fastspan
from railtracks._recording.fastspan import RailtracksSpan

pytestmark = pytest.mark.usefixtures("quiet")

TRACE_STATE = TraceState([("vendor", "value")])


@rt.function_node
async def leaf(x: int) -> dict[str, Any]:
    return {"x": x, "items": [1, 2, 3]}


@rt.function_node
async def tagged(x: int) -> int:
    """Writes on its own span the ways instrumented code does."""
    span = trace.get_current_span()
    span.set_attribute("openinference.span.kind", "LLM")
    span.set_attribute("numbers", [1, 2, 3])  # a list: the SDK stores a tuple
    span.set_attribute("not.allowed", {"a": 1})  # type: ignore[arg-type]  # refused by the SDK
    span.set_attributes({"model": "m", "mixed": [1, "a"]})  # type: ignore[list-item]  # refused
    span.add_event("thinking", {"step": 1, "tags": ["a", "b"]})
    span.add_event("again")
    span.add_link(SpanContext(0xABC, 0xDEF, False), {"why": "because"})
    span.update_name("tagged-renamed")
    with trace.get_tracer("other.library").start_as_current_span("http GET") as child:
        child.set_attribute("http.status_code", 200)
    rt.context.put("seen", x)
    return x * 2


@rt.function_node
async def failing() -> None:
    raise ValueError("no good")


async def flow() -> None:
    async with rt.Session(
        name="fast", context={"user": "u1", "n": 3}, save_state=False, logging_setting="NONE"
    ):
        await rt.call(leaf, 1)
        await asyncio.gather(rt.call(tagged, 2), rt.call(leaf, 3))
        with pytest.raises(ValueError, match="no good"):
            await rt.call(failing)


def _shape(spans: tuple[ReadableSpan, ...], session_id: str) -> list[tuple[Any, ...]]:
    """Everything a processor can read, minus ids and times (parents by name)."""
    by_id = {span.context.span_id: span for span in spans if span.context}

    def clean(value: Any) -> Any:
        return "<session>" if value == session_id else value

    out = []
    for span in spans:
        assert span.context is not None
        parent = by_id.get(span.parent.span_id) if span.parent else None
        attributes = {k: clean(v) for k, v in (span.attributes or {}).items()}
        events = [
            (
                e.name,
                {k: v for k, v in (e.attributes or {}).items() if k != "exception.stacktrace"},
            )
            for e in span.events
        ]
        out.append(
            (
                span.name,
                span.kind,
                None if parent is None else parent.name,
                span.parent is not None and parent is None,  # a parent outside the capture
                attributes,
                events,
                [
                    (link.context.trace_id, link.context.span_id, dict(link.attributes or {}))
                    for link in span.links
                ],
                (span.status.status_code, span.status.description),
                int(span.context.trace_flags),
                span.context.trace_state.to_header(),
                span.context.is_remote,
                dict(span.resource.attributes),
                span.instrumentation_scope,
                (span.dropped_attributes, span.dropped_events, span.dropped_links),
                span.start_time is not None and span.end_time is not None,
                type(span.to_json()),
            )
        )
    return sorted(out, key=repr)


class _Every(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def _run(parent: SpanContext | None = None) -> tuple[list[tuple[Any, ...]], set[type]]:
    token = None
    if parent is not None:
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    every = _Every()
    TELEMETRY.fanout.add(every)  # sampled or not (rt.testing's capture exports the sampled)
    try:
        asyncio.run(flow())
    finally:
        TELEMETRY.fanout.remove(every)
        if token is not None:
            otel_context.detach(token)
    spans = tuple(every.ended)
    session_id = next(
        str(s.attributes["railtracks.session.id"])
        for s in spans
        if s.attributes and "railtracks.session.id" in s.attributes
    )
    return _shape(spans, session_id), {
        type(s)
        for s in spans
        if s.instrumentation_scope and s.instrumentation_scope.name == "railtracks"
    }


@pytest.fixture
def sdk_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """From here on, railtracks starts its spans with ``tracer.start_span``."""
    monkeypatch.setattr(_fastspan, "_eligible", lambda tracer: False)
    monkeypatch.setattr(_fastspan, "_last", (None, None))
    yield
    _fastspan._last = (None, None)


PARENTS = {
    "root": None,
    "sampled remote parent with trace state": SpanContext(
        0x1234, 0x5678, True, TraceFlags(TraceFlags.SAMPLED), TRACE_STATE
    ),
    "unsampled remote parent": SpanContext(0x1234, 0x5678, True, TraceFlags(0), TRACE_STATE),
}


@pytest.mark.parametrize(
    "env",
    [
        {},
        # node spans start over the count limit; events and links past theirs
        {
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "12",
            "OTEL_SPAN_EVENT_COUNT_LIMIT": "1",
            "OTEL_SPAN_LINK_COUNT_LIMIT": "0",
            "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT": "1",
        },
    ],
    ids=["default limits", "tight limits"],
)
@pytest.mark.parametrize("parent", list(PARENTS.values()), ids=list(PARENTS))
def test_railtracks_spans_are_what_the_sdk_tracer_makes(
    env: dict[str, str],
    parent: SpanContext | None,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rt.testing.reset()
    fast, fast_types = _run(parent)
    assert fast_types == {RailtracksSpan}
    request.getfixturevalue("sdk_path")
    rt.testing.reset()
    slow, slow_types = _run(parent)
    assert RailtracksSpan not in slow_types
    for a, b in zip(fast, slow, strict=True):
        assert a == b
    # the workflow did reach every path compared above
    names = {shape[0] for shape in fast}
    assert {"session fast", "leaf", "tagged-renamed", "failing", "http GET"} <= names


def test_an_attribute_length_limit_leaves_spans_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    rt.testing.reset()
    with rt.testing.capture_spans() as capture:
        asyncio.run(flow())
    ours = [s for s in capture.spans() if s.name == "leaf"]
    assert ours
    assert all(type(s) is not RailtracksSpan for s in ours)
    assert all(len(str(s.attributes["railtracks.node.input"])) <= 4 for s in ours)  # type: ignore[index]


def test_an_application_provider_gets_the_sdk_tracers_spans() -> None:
    provider = TracerProvider()
    trace._TRACER_PROVIDER = provider  # what set_tracer_provider does, repeatably in one process
    try:
        seen: list[object] = []

        @rt.function_node
        async def look() -> None:
            seen.append(trace.get_current_span())

        asyncio.run(rt.call(look))
        assert seen
        assert type(seen[0]) is not RailtracksSpan
        assert isinstance(seen[0], SdkSpan)
    finally:
        trace._TRACER_PROVIDER = None


def test_an_ended_span_refuses_changes_like_the_sdks(caplog: pytest.LogCaptureFixture) -> None:
    kept: list[trace.Span] = []

    @rt.function_node
    async def keep() -> None:
        kept.append(trace.get_current_span())

    with rt.testing.capture_spans() as capture:
        asyncio.run(rt.call(keep))
    span = kept[0]
    assert type(span) is RailtracksSpan
    assert isinstance(span, SdkSpan)
    assert not span.is_recording()
    before = capture.named("keep")[0].to_json()
    with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.trace"):
        span.set_attribute("late", 1)
        span.set_attributes({"late": 2})
        span.add_event("late")
        span.add_link(SpanContext(1, 2, False))
        span.update_name("late")
        span.end()
    assert capture.named("keep")[0].to_json() == before
    assert len(caplog.records) == 6


def test_an_sdk_tracer_built_otherwise_gets_its_own_start_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A future SDK without the fields railtracks reads: its spans, and the run unchanged."""

    def missing_field(tracer: object) -> None:
        raise AttributeError("'Tracer' object has no attribute '_span_limits'")

    monkeypatch.setattr(_fastspan, "_Plan", missing_field)
    monkeypatch.setattr(_fastspan, "_last", (None, None))
    seen: list[object] = []

    @rt.function_node
    async def look() -> int:
        seen.append(trace.get_current_span())
        return 7

    assert asyncio.run(rt.call(look)) == 7
    assert isinstance(seen[0], SdkSpan)
    assert type(seen[0]) is not RailtracksSpan
    _fastspan._last = (None, None)
