"""Every PromQL query of every dashboard, run against a live Prometheus.

The Prometheus (Debian's 2.42) scrapes, every second, a subprocess running real
railtracks sessions (feed_railtracks.py: several session names and nodes, one
failing session kind) through opentelemetry-exporter-prometheus. Each query,
with Grafana's variables filled in, must return data carrying the labels its
panel shows. A query that returns nothing fails.

The same series names and labels reach Prometheus through the Collector in the
compose stack: dashboards/README.md says why, test_collector_config.py checks
the Collector settings it relies on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from tests.stack._dashboards import PromQuery, dashboard_files, prometheus_queries, substitute
from tests.stack.conftest import (
    FEED_FAILING_NODE,
    FEED_FAILING_SESSION,
    FEED_NODES,
    FEED_SERVICE,
    FEED_SESSIONS,
    LivePrometheus,
)

pytestmark = pytest.mark.integration

QUERIES = [query for path in dashboard_files() for query in prometheus_queries(path)]

BUILTINS = {"__rate_interval": "10s", "__interval": "2s"}
# "all": every variable at All (Grafana sends the allValue ".*"), a range long
# enough that every series was born inside it (the counts-from-zero branch).
# "picked": one value each, the failing session and node, and a range of a few
# seconds, so the increase() branch of the in-range queries is the one used.
VARIANTS: dict[str, dict[str, str]] = {
    "all": {**BUILTINS, "__range": "10m", "service": ".*", "session": ".*", "node": ".*"},
    "picked": {
        **BUILTINS,
        "__range": "6s",
        "service": FEED_SERVICE,
        "session": FEED_FAILING_SESSION,
        "node": FEED_FAILING_NODE,
    },
}

# The bucket bounds of railtracks' duration histograms (seconds).
BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]


def _values(series: Mapping[str, Any]) -> list[float]:
    """The sample values of an instant ("value") or range ("values") result."""
    points = [series["value"]] if "value" in series else series["values"]
    return [float(point[1]) for point in points]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_dashboard_query_returns_data(
    live_prometheus: LivePrometheus, query: PromQuery, variant: str
) -> None:
    values = VARIANTS[variant]
    if query.is_variable:
        label = query.variable_label
        selector = substitute(query.expr, values) if query.expr else f'{{{label}!=""}}'
        found = {s.get(label) for s in live_prometheus.series(selector)} - {None}
        assert found, (
            f"{query.id} [{variant}]: no values for {query.variable_label} from {selector}"
        )
        return
    expr = substitute(query.expr, values)
    result = live_prometheus.query(expr) if query.instant else live_prometheus.query_range(expr)
    assert result, f"{query.id} [{variant}] returned nothing:\n{expr}"
    expected = query.expected_labels()
    for series in result:
        missing = expected - set(series["metric"])
        assert not missing, (
            f"{query.id} [{variant}]: series {series['metric']} lacks {sorted(missing)}"
        )
    finite = [v for s in result for v in _values(s) if math.isfinite(v)]
    assert finite, f"{query.id} [{variant}] returned only NaN/Inf:\n{expr}\n{result}"
    if variant == "picked":
        for series in result:
            labels = series["metric"]
            assert (
                labels.get("railtracks_session_name", FEED_FAILING_SESSION) == FEED_FAILING_SESSION
            )
            assert labels.get("railtracks_node_name", FEED_FAILING_NODE) == FEED_FAILING_NODE


def test_variables_list_what_the_run_recorded(live_prometheus: LivePrometheus) -> None:
    jobs = {s["job"] for s in live_prometheus.series("railtracks_sessions_total")}
    assert jobs == {FEED_SERVICE}
    sessions = {
        s["railtracks_session_name"] for s in live_prometheus.series("railtracks_sessions_total")
    }
    assert sessions == set(FEED_SESSIONS)
    nodes = {
        s["railtracks_node_name"] for s in live_prometheus.series("railtracks_node_calls_total")
    }
    assert nodes == set(FEED_NODES)


def test_failures_are_counted_for_the_failing_session_and_node(
    live_prometheus: LivePrometheus,
) -> None:
    failed_sessions = live_prometheus.query(
        'railtracks_sessions_total{railtracks_status!="completed"}'
    )
    assert {
        (s["metric"]["railtracks_session_name"], s["metric"]["railtracks_status"])
        for s in failed_sessions
    } == {(FEED_FAILING_SESSION, "failed")}
    failed_nodes = live_prometheus.query(
        'railtracks_node_calls_total{railtracks_status!="completed"}'
    )
    assert {
        (
            s["metric"]["railtracks_session_name"],
            s["metric"]["railtracks_node_name"],
            s["metric"]["railtracks_status"],
        )
        for s in failed_nodes
    } == {(FEED_FAILING_SESSION, FEED_FAILING_NODE, "failed")}


def test_exact_series_names_labels_and_buckets(live_prometheus: LivePrometheus) -> None:
    """The names and labels dashboards/README.md documents, and seconds-sized buckets."""
    session_labels = {"job", "instance", "railtracks_session_name", "railtracks_status"}
    node_labels = session_labels | {"railtracks_node_name"}
    expected = {
        "railtracks_sessions_total": session_labels,
        "railtracks_session_duration_seconds_bucket": session_labels | {"le"},
        "railtracks_session_duration_seconds_sum": session_labels,
        "railtracks_session_duration_seconds_count": session_labels,
        "railtracks_node_calls_total": node_labels,
        "railtracks_node_duration_seconds_bucket": node_labels | {"le"},
        "railtracks_node_duration_seconds_sum": node_labels,
        "railtracks_node_duration_seconds_count": node_labels,
        # model calls (SPEC 15): tokens by the node that made the calls, and by model
        "railtracks_tokens_total": node_labels - {"railtracks_status"}
        | {"railtracks_usage_model", "gen_ai_token_type"},
    }
    # otel_scope_* labels come from the exporter; nothing else may appear.
    allowed_extra = {"__name__", "otel_scope_name", "otel_scope_version", "otel_scope_schema_url"}
    for name, labels in expected.items():
        series = live_prometheus.series(name)
        assert series, name
        for s in series:
            assert labels <= set(s), (name, s)
            assert set(s) <= labels | allowed_extra, (name, s)
    names = {s["__name__"] for s in live_prometheus.series('{__name__=~"railtracks_.*"}')}
    assert names == set(expected)
    tokens = live_prometheus.query(
        "sum by (railtracks_usage_model, gen_ai_token_type) "
        '(railtracks_tokens_total{railtracks_node_name="charge_card"})'
    )
    models = {
        (s["metric"]["railtracks_usage_model"], s["metric"]["gen_ai_token_type"]) for s in tokens
    }
    assert models == {("gpt-4o-mini", "input"), ("gpt-4o-mini", "output")}
    calls = live_prometheus.series("gen_ai_client_token_usage_count")
    assert {(s["gen_ai_request_model"], s["gen_ai_token_type"]) for s in calls} == {
        (model, kind)
        for model in ("gpt-4o-mini", "claude-haiku-4-5")
        for kind in ("input", "output")
    }
    assert {s["gen_ai_operation_name"] for s in calls} == {"chat"}
    for name in (
        "railtracks_session_duration_seconds_bucket",
        "railtracks_node_duration_seconds_bucket",
    ):
        bounds = {s["le"] for s in live_prometheus.series(name)}
        assert sorted(float(b) for b in bounds - {"+Inf"}) == BUCKETS
        assert "+Inf" in bounds
