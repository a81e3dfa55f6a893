"""Export and metrics configuration (SPEC 5, 8), without a backend: see tests/integration."""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import railtracks as rt
from railtracks._delivery.export import export_settings, metric_exporter, span_exporter
from railtracks._delivery.otlp.batch import ReliableBatchSpanProcessor
from railtracks._delivery.telemetry import TELEMETRY
from railtracks.errors import ConfigurationError
from railtracks.testing import SpanCapture
from railtracks.testing._procs import free_port

from .conftest import run_python

pytestmark = pytest.mark.usefixtures("quiet")


@rt.function_node
async def work(i: int) -> int:
    return i


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector"),
        ("OTEL_SDK_DISABLED", "yes"),
        ("OTEL_TRACES_EXPORTER", "jaeger-thrift"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-5"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
    ],
)
def test_invalid_otel_variables_warn_once_by_name_and_the_run_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    @rt.session(name="runs")
    async def flow() -> int:
        return await rt.call(work, 4)

    monkeypatch.setenv(variable, value)
    rt.testing.reset()  # the pipeline is rebuilt from the environment at the next session
    rt.set_config(logging_setting="QUIET")
    for _ in range(2):
        result, session = asyncio.run(flow())
        assert result == 4
        assert session.status == "completed"
    assert session.state is not None
    assert [n["name"] for n in session.state["nodes"]] == ["work"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if variable in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("RT.Telemetry : WARNING - ")


def test_configure_rejects_bad_values() -> None:
    with pytest.raises(ConfigurationError, match="protocol"):
        rt.configure(protocol="carrier-pigeon")
    with pytest.raises(ConfigurationError, match="redact_pattern"):
        rt.configure(redact_pattern="(")
    with pytest.raises(ConfigurationError, match="console_stream"):
        rt.configure(console_stream=42)  # type: ignore[arg-type]  # proving it is refused
    rt.configure(endpoint="collector:4317")  # checked when the pipeline is built

    @rt.session
    async def flow() -> None:
        return None

    with pytest.raises(ConfigurationError, match="endpoint"):
        asyncio.run(flow())


def test_every_span_is_handed_to_exporters_by_the_time_the_session_returns() -> None:
    exporter = InMemorySpanExporter()
    rt.configure(span_exporters=[exporter])

    @rt.session(name="handed")
    async def flow() -> int:
        return sum([await rt.call(work, i) for i in range(50)])

    _, session = asyncio.run(flow())
    assert rt.flush(5)
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("work") == 50
    assert names.count("session handed") == 1
    assert session.trace_id is not None


class SlowExporter(SpanExporter):
    """Accepts everything, a little slowly, like a real collector under load."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        time.sleep(0.002)
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def test_a_burst_beyond_the_stock_queue_size_is_not_dropped() -> None:
    exporter = SlowExporter()
    processor = ReliableBatchSpanProcessor(exporter, label="slow")
    TELEMETRY.tracer()
    TELEMETRY.fanout.add(processor)
    try:

        @rt.session(name="burst", save_state=False)
        async def flow() -> None:
            await asyncio.gather(*(rt.call(work, i) for i in range(20_000)))

        asyncio.run(flow())
        assert processor.force_flush(60_000)
    finally:
        TELEMETRY.fanout.remove(processor)
        processor.shutdown()
    assert (exporter.count, processor.dropped) == (20_001, 0)


def test_a_full_queue_drops_with_one_warning_not_silently(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gate = threading.Event()

    class Stuck(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            gate.wait(5)
            return SpanExportResult.SUCCESS

    processor = ReliableBatchSpanProcessor(Stuck(), label="stuck", max_queue_size=10)
    rt.set_config(logging_setting="QUIET")
    TELEMETRY.tracer()
    TELEMETRY.fanout.add(processor)
    try:

        @rt.session(name="overflow", save_state=False)
        async def flow() -> None:
            for i in range(100):
                await rt.call(work, i)

        asyncio.run(flow())
    finally:
        gate.set()
        TELEMETRY.fanout.remove(processor)
        processor.shutdown()
    assert processor.dropped > 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "export queue" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("RT.Telemetry : WARNING - export queue for stuck is full")


def test_metrics_from_spans_with_seconds_buckets() -> None:
    reader = InMemoryMetricReader()
    rt.configure(metric_readers=[reader])

    @rt.function_node
    async def fails() -> None:
        raise RuntimeError("x")

    @rt.session(name="metered")
    async def flow() -> None:
        await rt.call(work, 1)
        await rt.call(work, 2)
        await rt.call(fails)

    with pytest.raises(RuntimeError):
        asyncio.run(flow())
    data = reader.get_metrics_data()
    assert data is not None
    metrics = {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert set(metrics) == {
        "railtracks.session.duration",
        "railtracks.node.duration",
        "railtracks.sessions",
        "railtracks.node.calls",
    }
    calls = {
        (p.attributes["railtracks.node.name"], p.attributes["railtracks.status"]): p.value
        for p in metrics["railtracks.node.calls"].data.data_points  # type: ignore[union-attr]  # a Sum
    }
    assert calls == {("work", "completed"): 2, ("fails", "failed"): 1}
    (sessions,) = metrics["railtracks.sessions"].data.data_points  # type: ignore[union-attr]  # a Sum
    assert dict(sessions.attributes or {}) == {
        "railtracks.session.name": "metered",
        "railtracks.status": "failed",
    }
    duration = metrics["railtracks.session.duration"]
    assert duration.unit == "s"
    (point,) = duration.data.data_points  # type: ignore[union-attr]  # a Histogram
    assert tuple(point.explicit_bounds)[:3] == (0.001, 0.0025, 0.005)  # type: ignore[attr-defined]
    assert tuple(point.explicit_bounds)[-1] == 300.0  # type: ignore[attr-defined]
    assert 0 < point.sum < 1  # type: ignore[attr-defined]  # seconds, not milliseconds


DEAD_COLLECTOR_RUN = textwrap.dedent(
    """
    import asyncio
    import railtracks as rt

    @rt.function_node
    async def work(i: int) -> int:
        return i

    @rt.session(name="offline", logging_setting="QUIET")
    async def flow():
        return sum([await rt.call(work, i) for i in range(2000)])

    print(asyncio.run(flow())[0])
    """
)


def _timed_run(cwd: Path, **env: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = run_python(DEAD_COLLECTOR_RUN, cwd, env)
    return time.monotonic() - started, done


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_dead_collector_never_fails_or_stalls_a_run(tmp_path: Path, protocol: str) -> None:
    baseline, plain = _timed_run(tmp_path)
    assert plain.returncode == 0, plain.stderr
    elapsed, done = _timed_run(
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sum(range(2000)))
    telemetry_warnings = [line for line in done.stderr.splitlines() if "RT.Telemetry" in line]
    assert len(telemetry_warnings) == 1, done.stderr
    assert "Traceback" not in done.stderr
    # A stall would wait out the exporter's 10 s timeout; the ~2 s exit target itself is
    # measured by benchmarks/faults.py, not asserted against this machine's speed.
    assert elapsed - baseline < 8, (elapsed, baseline)


def test_sdk_disabled_turns_export_off_but_keeps_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rt_spans: SpanCapture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    rt.testing.reset()
    assert export_settings() is None
    result = asyncio.run(rt.call(work, 3))
    assert result == 3
    assert rt.load_state("work")["answer"] == 3
    assert rt_spans.tree() == "session work\n  work"


def test_each_signal_uses_its_own_protocol_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://127.0.0.1:4318/v1/metrics")
    settings = export_settings()
    assert settings is not None
    assert (settings.protocol, settings.traces_endpoint) == ("grpc", "http://127.0.0.1:4317")
    assert (settings.metrics_protocol, settings.metrics_endpoint) == (
        "http/protobuf",
        "http://127.0.0.1:4318/v1/metrics",
    )
    spans, metrics = span_exporter(settings), metric_exporter(settings)
    try:
        assert type(spans).__module__.endswith("proto.grpc.trace_exporter")
        assert type(metrics).__module__.endswith("proto.http.metric_exporter")
    finally:
        spans.shutdown()
        metrics.shutdown()
