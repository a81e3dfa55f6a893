"""dashboards/: schema-valid Grafana dashboards whose queries name real railtracks metrics.

The live half (every PromQL query against a Prometheus fed by real railtracks
sessions) is in test_live_prometheus.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack._dashboards import (
    dashboard_files,
    iter_panels,
    load,
    prometheus_queries,
    substitute,
    tempo_targets,
)
from tests.stack.conftest import REPO_ROOT

DASHBOARDS = dashboard_files()
DASHBOARD_IDS = [path.name for path in DASHBOARDS]

# The Prometheus names of the railtracks metrics contract (dashboards/README.md
# tells how each OTel instrument maps to them, on both export paths).
RAILTRACKS_SERIES = {
    "railtracks_sessions_total",
    "railtracks_node_calls_total",
    "railtracks_session_duration_seconds_bucket",
    "railtracks_session_duration_seconds_sum",
    "railtracks_session_duration_seconds_count",
    "railtracks_node_duration_seconds_bucket",
    "railtracks_node_duration_seconds_sum",
    "railtracks_node_duration_seconds_count",
    # model calls (SPEC 15)
    "railtracks_tokens_total",
    "gen_ai_client_token_usage_bucket",
}
RAILTRACKS_LABELS = {
    "job",
    "le",
    "railtracks_session_name",
    "railtracks_node_name",
    "railtracks_status",
    "railtracks_usage_model",
    "gen_ai_token_type",
    "gen_ai_request_model",
    "otel_scope_name",  # the GenAI histogram: railtracks' own, not an instrumentation's
}
STATUSES = {"completed", "failed", "timeout", "cancelled"}
# Span and resource attributes of SPEC §3 that the Tempo (TraceQL) queries may use.
TRACE_ATTRIBUTES = {
    "resource.service.name",
    "span.railtracks.session.id",
    "span.railtracks.session.name",
    "span.railtracks.node.name",
    "span.gen_ai.operation.name",
}
# Values for every variable a dashboard query may contain (only to make them
# parse offline; the live test runs them with real values).
OFFLINE_VALUES = {
    "__rate_interval": "1m",
    "__range": "1h",
    "__interval": "15s",
    "service": ".*",
    "session": ".*",
    "node": ".*",
}

PROMQL_FUNCTIONS_AND_KEYWORDS = {
    "sum",
    "by",
    "rate",
    "increase",
    "last_over_time",
    "histogram_quantile",
    "topk",
    "offset",
    "unless",
    "or",
    "and",
}


def _compose_grafana_version() -> str:
    compose = yaml.safe_load((REPO_ROOT / "compose" / "compose.yaml").read_text())
    image = compose["services"]["grafana"]["image"]
    match = re.fullmatch(r"grafana/grafana:(\d+\.\d+\.\d+)", image)
    assert match, f"grafana image is not pinned to a version: {image}"
    return match.group(1)


def test_there_are_dashboards() -> None:
    names = {path.name for path in DASHBOARDS}
    assert {"railtracks-runs.json", "railtracks-session.json"} <= names


@pytest.mark.parametrize("path", DASHBOARDS, ids=DASHBOARD_IDS)
def test_dashboard_identity_and_layout(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["uid"] == path.stem, "uid must match the file name (links use /d/<uid>)"
    assert dashboard["title"].startswith("railtracks")
    assert dashboard.get("id") is None, "an exported id would clash on import"
    ids = [panel["id"] for panel in iter_panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for panel in iter_panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] not in {"row", "text"}:
            assert panel.get("description"), f"{panel['title']} has no description"


def test_dashboard_uids_are_unique() -> None:
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=DASHBOARD_IDS)
def test_variables_for_service_and_session(path: Path) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name, plugin in (("ds_prometheus", "prometheus"), ("ds_tempo", "tempo")):
        assert variables[name]["type"] == "datasource"
        assert variables[name]["query"] == plugin
        # The compose stack provisions the datasources with these uids.
        assert variables[name]["current"]["value"] == plugin
    service = variables["service"]
    assert service["type"] == "query"
    assert service["query"] == "label_values(railtracks_sessions_total, job)"
    if path.name == "railtracks-runs.json":
        session = variables["session"]
        assert session["query"].endswith(", railtracks_session_name)")
        assert {"service", "session", "node"} <= set(variables)
    if path.name == "railtracks-session.json":
        assert variables["session_id"]["type"] == "textbox"


def test_runs_dashboard_has_the_panels_the_spec_asks_for() -> None:
    dashboard = load(REPO_ROOT / "dashboards" / "railtracks-runs.json")
    titles = {panel["title"] for panel in iter_panels(dashboard)}
    assert {
        "Session rate by session and status",
        "Failed sessions",
        "Failed session rate",
        "Session duration p50 / p95 by session",
        "Node duration p50 / p95 by node",
        "Slowest nodes (p95 in range)",
        "Recent sessions",
    } <= titles
    exprs = " ".join(
        q.expr for q in prometheus_queries(REPO_ROOT / "dashboards" / "railtracks-runs.json")
    )
    for needle in (
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "topk(10,",
        'railtracks_status!="completed"',
    ):
        assert needle in exprs


@pytest.mark.parametrize("path", DASHBOARDS, ids=DASHBOARD_IDS)
def test_prometheus_queries_use_only_contract_names(path: Path) -> None:
    """Every metric and label a query names is one railtracks emits (no typo
    can hide behind an empty panel), and every panel query is scoped by the
    service variable."""
    queries = prometheus_queries(path)
    assert queries
    for query in queries:
        text = substitute(query.expr, OFFLINE_VALUES) if query.expr else ""
        without_strings = re.sub(r'"[^"]*"', '""', text)
        identifiers = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", without_strings))
        identifiers -= PROMQL_FUNCTIONS_AND_KEYWORDS
        # Durations like 1m / 15s leave their unit letter behind.
        identifiers -= {"m", "s", "h"}
        unknown = identifiers - RAILTRACKS_SERIES - RAILTRACKS_LABELS
        assert not unknown, f"{query.id}: unknown names {sorted(unknown)} in {query.expr}"
        if query.is_variable:
            assert query.variable_label in RAILTRACKS_LABELS
            continue
        assert 'job=~"$service"' in query.expr, f"{query.id} ignores the service variable"
        for status in re.findall(r'railtracks_status[!=]~?"([^"]*)"', query.expr):
            assert set(status.split("|")) <= STATUSES, query.id


@pytest.mark.parametrize("path", DASHBOARDS, ids=DASHBOARD_IDS)
def test_tempo_queries_name_real_span_attributes(path: Path) -> None:
    for where, target in tempo_targets(path):
        assert target["queryType"] == "traceql", where
        query = target["query"]
        assert query.count("{") == query.count("}"), where
        assert query.count('"') % 2 == 0, where
        attributes = set(re.findall(r"\b(?:span|resource)\.[A-Za-z0-9_.]+", query))
        assert attributes, where
        assert attributes <= TRACE_ATTRIBUTES, f"{where}: {sorted(attributes - TRACE_ATTRIBUTES)}"
        assert target["tableType"] in {"traces", "spans"}, where


def test_a_session_can_be_picked_by_its_identifier() -> None:
    """The session dashboard filters Tempo on railtracks.session.id, and the
    recent-sessions table links there with the clicked identifier."""
    session = REPO_ROOT / "dashboards" / "railtracks-session.json"
    queries = [target["query"] for _, target in tempo_targets(session)]
    assert queries
    assert all('span.railtracks.session.id = "${session_id}"' in q for q in queries)
    runs = load(REPO_ROOT / "dashboards" / "railtracks-runs.json")
    recent = next(p for p in iter_panels(runs) if p["title"] == "Recent sessions")
    links = [
        link["url"]
        for override in recent["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert any(
        url.startswith("/d/railtracks-session/") and "var-session_id=${__value.raw}" in url
        for url in links
    )


# --- against the Grafana dashboard JSON Schema ---------------------------------


def _validator(schema_path: Path) -> Any:
    import jsonschema

    schema = json.loads(schema_path.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: Any, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    ]


@pytest.mark.integration
def test_schemas_come_from_the_grafana_version_compose_runs(grafana_schemas: Path) -> None:
    versions = json.loads((grafana_schemas / "versions.json").read_text())
    package = json.loads(
        (REPO_ROOT / "tests" / "stack" / "grafana_schema" / "package.json").read_text()
    )
    grafana = _compose_grafana_version()
    assert package["dependencies"]["@grafana/schema"] == grafana
    assert versions["@grafana/schema"] == grafana, (
        f"the generated schemas are from @grafana/schema {versions['@grafana/schema']}, "
        f"compose runs Grafana {grafana}: rerun bash tests/backends/install_stack.sh"
    )


@pytest.mark.integration
@pytest.mark.parametrize("path", DASHBOARDS, ids=DASHBOARD_IDS)
def test_dashboard_matches_grafana_schema(path: Path, grafana_schemas: Path) -> None:
    dashboard = load(path)
    assert not _errors(_validator(grafana_schemas / "dashboard.schema.json"), dashboard)


@pytest.mark.integration
@pytest.mark.parametrize("path", DASHBOARDS, ids=DASHBOARD_IDS)
def test_panel_options_and_tempo_queries_match_their_schemas(
    path: Path, grafana_schemas: Path
) -> None:
    dashboard = load(path)
    problems = []
    for panel in iter_panels(dashboard):
        if panel["type"] == "row":
            continue
        schema = grafana_schemas / f"panel.{panel['type']}.options.schema.json"
        assert schema.is_file(), (
            f"no options schema for panel type {panel['type']}: add it to install_stack.sh"
        )
        problems += [
            f"{panel['title']}: {e}" for e in _errors(_validator(schema), panel["options"])
        ]
    tempo = _validator(grafana_schemas / "tempo.query.schema.json")
    for where, target in tempo_targets(path):
        problems += [f"{where}: {e}" for e in _errors(tempo, target)]
    assert not problems, "\n".join(problems)


@pytest.mark.integration
def test_schema_validation_catches_mistakes(grafana_schemas: Path) -> None:
    """The checks above are worth something: a typo'd key, a wrong type and
    bad enum values are all rejected."""
    validator = _validator(grafana_schemas / "dashboard.schema.json")
    good = load(REPO_ROOT / "dashboards" / "railtracks-runs.json")
    assert not _errors(validator, good)
    mistakes: list[tuple[tuple[str | int, ...], str, object]] = [
        (("panels", 1), "titel", "a typo'd key"),
        (("panels", 1, "gridPos"), "w", "a string for a number"),
        (("templating", "list", 2), "refresh", 7),  # not a VariableRefresh value
        ((), "graphTooltip", 3),  # not a DashboardCursorSync value
    ]
    for where, key, value in mistakes:
        bad = json.loads(json.dumps(good))
        node = bad
        for step in where:
            node = node[step]
        node[key] = value
        assert _errors(validator, bad), (where, key, value)


@pytest.mark.integration
def test_every_promql_expression_passes_promtool(promtool: str, tmp_path: Path) -> None:
    """promtool parses each expression (as a recording rule) offline."""
    rules: list[dict[str, str]] = []
    for path in DASHBOARDS:
        for query in prometheus_queries(path):
            expr = (
                substitute(query.expr, OFFLINE_VALUES)
                if query.expr
                else "railtracks_sessions_total"
            )
            rules.append({"record": f"railtracks:dashboard_check_{len(rules)}", "expr": expr})
    rules_file = tmp_path / "dashboard-queries.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
