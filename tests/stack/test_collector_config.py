"""otel/collector.yaml: every component exists in the pinned distribution, the
pipelines are wired, and the Prometheus exporter names series as the dashboards expect.

The component list is the OpenTelemetry Collector Builder manifest of the
otelcol-contrib version compose runs, committed in tests/stack/data/ (its header
names the source). A component's config name (its ``type``) is not always its
module's name (``memory_limiter`` is ``memorylimiterprocessor``), so the types
this configuration may use are mapped to modules below, each as declared in the
``type:`` field of that module's metadata.yaml.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.conftest import REPO_ROOT

COLLECTOR_CONFIG = REPO_ROOT / "otel" / "collector.yaml"
COMPOSE_FILE = REPO_ROOT / "compose" / "compose.yaml"
DATA = Path(__file__).resolve().parent / "data"

KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")

# (kind, config type) -> module path, from each module's metadata.yaml `type:`.
TYPE_TO_MODULE = {
    ("receivers", "otlp"): "go.opentelemetry.io/collector/receiver/otlpreceiver",
    ("processors", "batch"): "go.opentelemetry.io/collector/processor/batchprocessor",
    (
        "processors",
        "memory_limiter",
    ): "go.opentelemetry.io/collector/processor/memorylimiterprocessor",
    ("exporters", "otlp"): "go.opentelemetry.io/collector/exporter/otlpexporter",
    ("exporters", "otlphttp"): "go.opentelemetry.io/collector/exporter/otlphttpexporter",
    ("exporters", "debug"): "go.opentelemetry.io/collector/exporter/debugexporter",
    (
        "exporters",
        "prometheus",
    ): "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter",
    (
        "connectors",
        "spanmetrics",
    ): "github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector",
    (
        "extensions",
        "health_check",
    ): "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension",
}
# A connector joins an exporter-side pipeline signal to a receiver-side one.
CONNECTOR_SIGNALS = {"spanmetrics": ("traces", "metrics")}


def _config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    return data


def _collector_image_version() -> str:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    image = compose["services"]["otel-collector"]["image"]
    match = re.fullmatch(r"otel/opentelemetry-collector-contrib:(\d+\.\d+\.\d+)", image)
    assert match, f"the Collector image is not a pinned contrib version: {image}"
    return match.group(1)


@cache
def _manifest() -> dict[str, Any]:
    version = _collector_image_version()
    path = DATA / f"otelcol-contrib-{version}.manifest.yaml"
    assert path.is_file(), (
        f"compose runs otelcol-contrib {version} but {path.name} is not in tests/stack/data: "
        "commit that version's distributions/otelcol-contrib/manifest.yaml "
        "(open-telemetry/opentelemetry-collector-releases)"
    )
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _manifest_modules(kind: str) -> dict[str, str]:
    """module path -> version, for one kind of component."""
    modules = {}
    for entry in _manifest()[kind]:
        module, version = entry["gomod"].split()
        modules[entry.get("import", module)] = version
    return modules


def _type(component_id: str) -> str:
    """`otlp/jaeger` -> `otlp` (the part after / names an instance)."""
    return component_id.split("/", 1)[0]


def _pipelines() -> dict[str, dict[str, list[str]]]:
    pipelines: dict[str, dict[str, list[str]]] = _config()["service"]["pipelines"]
    return pipelines


def test_manifest_matches_the_pinned_image() -> None:
    version = _collector_image_version()
    for kind in KINDS:
        versions = set(_manifest_modules(kind).values())
        assert versions == {f"v{version}"}, (kind, versions)


@pytest.mark.parametrize("kind", KINDS)
def test_every_component_exists_in_the_pinned_distribution(kind: str) -> None:
    modules = _manifest_modules(kind)
    for component_id in _config().get(kind) or {}:
        key = (kind, _type(component_id))
        assert key in TYPE_TO_MODULE, (
            f"{kind}.{component_id}: unknown component type; if it is real, add its module "
            "(from its metadata.yaml `type:`) to TYPE_TO_MODULE"
        )
        module = TYPE_TO_MODULE[key]
        version = _collector_image_version()
        assert module in modules, (
            f"{kind}.{component_id}: {module} is not in otelcol-contrib {version}"
        )


def test_type_table_entries_exist_in_the_manifest() -> None:
    for (kind, component_type), module in TYPE_TO_MODULE.items():
        assert module in _manifest_modules(kind), (kind, component_type, module)


def test_pipelines_reference_only_defined_components() -> None:
    config = _config()
    for name, pipeline in _pipelines().items():
        signal = _type(name)
        assert signal in {"traces", "metrics", "logs"}, name
        for role, kinds in (
            ("receivers", ("receivers", "connectors")),
            ("processors", ("processors",)),
            ("exporters", ("exporters", "connectors")),
        ):
            for component_id in pipeline.get(role, []):
                assert any(component_id in (config.get(kind) or {}) for kind in kinds), (
                    f"pipeline {name} names undefined {role[:-1]} {component_id}"
                )
        assert pipeline.get("receivers"), f"pipeline {name} has no receiver"
        assert pipeline.get("exporters"), f"pipeline {name} has no exporter"
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"], extension


def test_every_defined_component_is_used() -> None:
    config = _config()
    pipelines = _pipelines()
    used = {
        "receivers": {c for p in pipelines.values() for c in p.get("receivers", [])},
        "processors": {c for p in pipelines.values() for c in p.get("processors", [])},
        "exporters": {c for p in pipelines.values() for c in p.get("exporters", [])},
        "extensions": set(config["service"].get("extensions", [])),
    }
    for kind in ("receivers", "processors", "exporters", "extensions"):
        unused = set(config.get(kind) or {}) - used[kind]
        assert not unused, f"unused {kind}: {sorted(unused)}"
    for connector in config.get("connectors") or {}:
        exporter_side, receiver_side = CONNECTOR_SIGNALS[_type(connector)]
        as_exporter = [n for n, p in pipelines.items() if connector in p.get("exporters", [])]
        as_receiver = [n for n, p in pipelines.items() if connector in p.get("receivers", [])]
        assert as_exporter, f"connector {connector} must be the exporter of a pipeline"
        assert as_receiver, f"connector {connector} must be the receiver of a pipeline"
        assert all(_type(n) == exporter_side for n in as_exporter), (connector, as_exporter)
        assert all(_type(n) == receiver_side for n in as_receiver), (connector, as_receiver)


def test_the_pipelines_the_spec_asks_for() -> None:
    config = _config()
    pipelines = _pipelines()
    grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert grpc.endswith(":4317")
    assert http.endswith(":4318")
    traces, metrics = pipelines["traces"], pipelines["metrics"]
    assert traces["receivers"] == ["otlp"]
    assert {"otlp/jaeger", "otlp/tempo", "spanmetrics"} <= set(traces["exporters"])
    assert set(metrics["receivers"]) == {"otlp", "spanmetrics"}
    assert metrics["exporters"] == ["prometheus"]
    for pipeline in pipelines.values():
        # The memory limiter must see data first; batch must run in every pipeline.
        assert pipeline["processors"][0] == "memory_limiter"
        assert "batch" in pipeline["processors"]
    endpoints = {
        name: config["exporters"][name]["endpoint"] for name in ("otlp/jaeger", "otlp/tempo")
    }
    assert endpoints == {"otlp/jaeger": "jaeger:4317", "otlp/tempo": "tempo:4317"}


def test_prometheus_exporter_names_series_like_the_sdk_scrape_path() -> None:
    """The settings that make the Collector's series identical to what
    opentelemetry-exporter-prometheus serves (dashboards/README.md):
    unit/type suffixes on, no namespace prefix, no constant labels, resource
    attributes not copied onto series."""
    exporter = _config()["exporters"]["prometheus"]
    assert exporter.get("add_metric_suffixes", True) is True
    # translation_strategy, where a version has it, overrides add_metric_suffixes.
    assert exporter.get("translation_strategy", "UnderscoreEscapingWithSuffixes") == (
        "UnderscoreEscapingWithSuffixes"
    )
    assert not exporter.get("namespace")
    assert not exporter.get("const_labels")
    assert exporter.get("resource_to_telemetry_conversion", {}).get("enabled", False) is False
    assert exporter["endpoint"].endswith(":8889")


def test_spanmetrics_connector_durations_are_in_seconds() -> None:
    spanmetrics = _config()["connectors"]["spanmetrics"]
    assert spanmetrics["namespace"] == "traces.span.metrics"
    assert spanmetrics["histogram"]["unit"] == "s"
    dimensions = {d["name"] for d in spanmetrics["dimensions"]}
    assert dimensions == {"railtracks.session.name", "railtracks.node.name"}
