"""Sampling decides what is exported, never what railtracks records (SPEC 5), and
an application's own provider is followed whether it comes before or after the
first session."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import railtracks as rt

from .conftest import run_python


@rt.function_node
async def leaf(x: int) -> int:
    return x * 2


@rt.function_node
async def branch(x: int) -> int:
    return await rt.call(leaf, x) + await rt.call(leaf, x + 1)


def _flow(setting: str) -> rt.Session:
    @rt.session(name="sampled", logging_setting=setting)
    async def flow() -> int:
        return await rt.call(branch, 1)

    result, session = asyncio.run(flow())
    assert result == 6
    return session


def _names(nodes: list[dict[str, object]]) -> list[object]:
    return [(n["name"], _names(n["children"])) for n in nodes]  # type: ignore[arg-type]


COMPLETE = [("branch", [("leaf", []), ("leaf", [])])]


@pytest.mark.parametrize("setting", ["NONE", "QUIET"])
def test_always_off_still_records_a_complete_state_and_prints_per_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setting: str
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exported = InMemorySpanExporter()
    rt.configure(span_exporters=[exported])
    session = _flow(setting)
    assert rt.flush(5)
    state = json.loads(Path(".railtracks/sampled.json").read_text())
    assert state["session"]["identifier"] == session.identifier
    assert state["session"]["status"] == "completed"
    assert state["session"]["sampled"] is False
    assert state["session"]["context"] == {}
    assert state["answer"] == 6
    assert _names(state["nodes"]) == COMPLETE
    assert state["nodes"][0]["input"] == {"x": 1}
    assert exported.get_finished_spans() == ()  # the sampler decides the export
    assert capsys.readouterr().err == ""


def test_ratio_sampling_keeps_every_state_complete_and_exports_whole_traces(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    exported = InMemorySpanExporter()
    rt.configure(span_exporters=[exported])
    sampled: dict[str, bool] = {}
    for _ in range(16):
        session = _flow("QUIET")
        state = session.state
        assert state is not None
        assert state["session"]["status"] == "completed"
        assert _names(state["nodes"]) == COMPLETE
        assert rt.flush(30)  # the state file is complete once flush returns
        assert Path(".railtracks/sampled.json").exists()
        assert session.trace_id is not None
        sampled[session.trace_id] = state["session"]["sampled"]
    assert rt.flush(5)
    assert set(sampled.values()) == {True, False}, "16 runs at 0.5: both outcomes expected"
    by_trace: dict[str, int] = {}
    for span in exported.get_finished_spans():
        assert span.context is not None
        trace_id = format(span.context.trace_id, "032x")
        by_trace[trace_id] = by_trace.get(trace_id, 0) + 1
    assert by_trace == {trace: 4 for trace, kept in sampled.items() if kept}
    # QUIET: nothing for a completed run but the overwrite warning, sampled or not
    assert (
        capsys.readouterr().err.splitlines()
        == ["RT.Session : WARNING - File .railtracks/sampled.json already exists, overwriting..."]
        * 15
    )


HOST_DROPS = textwrap.dedent(
    """
    import asyncio, json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
    trace.set_tracer_provider(TracerProvider(sampler=ALWAYS_OFF))
    import railtracks as rt

    @rt.function_node
    async def work(x: int) -> int:
        return x + 1

    @rt.session(name="dropped", context={"tenant": "acme"}, logging_setting="NONE")
    async def flow():
        return await rt.call(work, 1)

    result, session = asyncio.run(flow())
    print(json.dumps({"result": result, "id": session.identifier, "trace": session.trace_id}))
    """
)


def test_a_host_sampler_drop_writes_a_state_that_says_not_sampled(tmp_path: Path) -> None:
    done = run_python(HOST_DROPS, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["result"] == 2
    state = json.loads((tmp_path / ".railtracks" / "dropped.json").read_text())
    session = state["session"]
    assert session is not None, "never an empty state"
    assert session["sampled"] is False
    assert session["identifier"] == report["id"]
    assert session["trace_id"] == report["trace"]
    assert session["status"] == "completed"
    assert session["context"] == {"tenant": "acme"}
    assert state["answer"] == 2
    assert rt.load_state(tmp_path / ".railtracks" / "dropped.json")["session"]["name"] == "dropped"


APP_PROVIDER = textwrap.dedent(
    """
    import asyncio, json, sys, warnings
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import railtracks as rt

    app_exporter = InMemorySpanExporter()

    def install():
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(app_exporter))
        trace.set_tracer_provider(provider)
        return provider

    early = trace.get_tracer("app.early")  # taken before any provider exists

    @rt.function_node
    async def work(x: int) -> int:
        with early.start_as_current_span("early span"):
            with trace.get_tracer("app.late").start_as_current_span("late span"):
                return x + 1

    @rt.session(name="app", logging_setting="NONE")
    async def flow():
        return await rt.call(work, 1)

    if sys.argv[1] == "before":
        provider = install()
    asyncio.run(flow())
    if sys.argv[1] == "after":
        provider = install()
    app_exporter.clear()
    result, session = asyncio.run(flow())
    assert trace.get_tracer_provider() is provider, "the application's provider is global"
    spans = app_exporter.get_finished_spans()
    state = rt.load_state("app")

    def walk(nodes):
        return [[n["name"], walk(n["children"])] for n in nodes]

    print(json.dumps({
        "app": sorted(s.name for s in spans if s.context.trace_id == int(session.trace_id, 16)),
        "state": walk(state["nodes"]),
    }))
    """
)


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_application_provider_set_before_or_after_the_first_session_gets_every_span(
    tmp_path: Path, when: str
) -> None:
    done = run_python(APP_PROVIDER.replace("sys.argv[1]", repr(when)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Overriding of current TracerProvider is not allowed" not in done.stderr
    report = json.loads(done.stdout)
    assert report["app"] == ["early span", "late span", "session app", "work"]
    assert report["state"] == [["work", [["early span", [["late span", []]]]]]]


@pytest.mark.parametrize("flags", [0, 1])
@pytest.mark.parametrize("remote", [False, True])
@pytest.mark.parametrize("state", [None, "vendor=value"])
def test_the_default_samplers_shortcut_decides_like_the_sdk(
    flags: int, remote: bool, state: str | None
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, ParentBased
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
    from opentelemetry.trace.span import TraceState

    from railtracks._delivery.telemetry import RecordLocallySampler

    parent = SpanContext(
        0xABC, 0xDEF, remote, TraceFlags(flags), TraceState.from_header([state]) if state else None
    )
    contexts = [None, trace.set_span_in_context(NonRecordingSpan(parent))]
    attributes = {"railtracks.node.name": "n"}
    for context in contexts:
        fast = RecordLocallySampler(DEFAULT_ON).should_sample(context, 0xABC, "n", None, attributes)
        # an equal sampler that is not the SDK's own default object takes the SDK's path
        slow = RecordLocallySampler(ParentBased(ALWAYS_ON)).should_sample(
            context, 0xABC, "n", None, attributes
        )
        assert fast.decision is slow.decision
        assert dict(fast.attributes) == dict(slow.attributes) == attributes
        assert fast.trace_state == slow.trace_state
