"""Run metrics: recorded off the hot path, exact when a reader collects."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import railtracks as rt
from railtracks._delivery import metrics as _metrics
from railtracks._delivery.telemetry import TELEMETRY

from .conftest import metric_points, run_python


@rt.function_node
async def work(i: int) -> int:
    return i


def _flow(calls: int) -> None:
    @rt.session(name="counted", logging_setting="NONE", save_state=False)
    async def flow() -> None:
        for i in range(calls):
            await rt.call(work, i)

    asyncio.run(flow())


def test_counts_and_histograms_agree_after_many_calls() -> None:
    reader = InMemoryMetricReader()
    rt.configure(metric_readers=[reader])
    _flow(250)
    points = metric_points(reader)
    (calls,) = points["railtracks.node.calls"]
    (durations,) = points["railtracks.node.duration"]
    assert calls.value == 250
    assert durations.count == 250
    assert sum(durations.bucket_counts) == 250
    (sessions,) = points["railtracks.sessions"]
    assert sessions.value == 1
    # a second collection sees cumulative totals, not the queue twice
    _flow(10)
    points = metric_points(reader)
    assert points["railtracks.node.calls"][0].value == 260
    assert points["railtracks.node.duration"][0].count == 260


def test_nothing_is_recorded_on_the_instruments_until_a_reader_collects() -> None:
    reader = InMemoryMetricReader()
    rt.configure(metric_readers=[reader])
    _flow(5)
    (processor,) = [
        p for p in TELEMETRY.fanout.processors if isinstance(p, _metrics.MetricsSpanProcessor)
    ]
    assert len(processor._metrics.pending) == 6  # five nodes and the session, queued
    metric_points(reader)
    assert len(processor._metrics.pending) == 0


def test_the_queue_is_bounded_when_no_reader_ever_collects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_metrics, "MAX_PENDING", 20)
    reader = InMemoryMetricReader()
    rt.configure(metric_readers=[reader])
    _flow(100)
    assert all(len(m.pending) <= 20 for m in _metrics.RUN_METRICS)
    assert metric_points(reader)["railtracks.node.calls"][0].value == 100


HOST_METER = textwrap.dedent(
    """
    import asyncio
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    import railtracks as rt

    @rt.function_node
    async def work() -> int:
        return 1

    @rt.session(name="hosted", logging_setting="NONE", save_state=False)
    async def flow():
        await rt.call(work)

    asyncio.run(flow())
    rt.configure(value_limit=100)  # the pipeline is rebuilt on the same host meter
    asyncio.run(flow())
    data = reader.get_metrics_data()
    values = {
        m.name: sum(getattr(p, "value", getattr(p, "count", 0)) for p in m.data.data_points)
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    print(sorted(values.items()))
    """
)


def test_a_host_meter_provider_counts_across_pipeline_rebuilds(tmp_path: Path) -> None:
    done = run_python(HOST_METER, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(
        [
            ("railtracks.node.calls", 2),
            ("railtracks.node.duration", 2),
            ("railtracks.session.duration", 2),
            ("railtracks.sessions", 2),
        ]
    )


def test_two_readers_each_see_every_measurement() -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    rt.configure(metric_readers=[first, second])
    _flow(7)
    assert metric_points(first)["railtracks.node.duration"][0].count == 7
    assert metric_points(second)["railtracks.node.duration"][0].count == 7
    assert metric_points(second)["railtracks.node.calls"][0].value == 7
