"""compose/: the stack's Compose file, validated by a real Compose v2 binary, and
its wiring (ports on 127.0.0.1, pinned images, files that exist, services that
point at each other correctly)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.stack.conftest import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "compose" / "compose.yaml"
SERVICES = {"otel-collector", "jaeger", "tempo", "prometheus", "grafana"}
PINNED = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+$")


def _compose(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )


@pytest.fixture(scope="module")
def resolved(compose_binary: Path) -> dict[str, Any]:
    """The model as Compose resolves it (paths absolute, ports expanded)."""
    result = _compose(compose_binary, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.integration
def test_compose_config_is_valid(compose_binary: Path) -> None:
    result = _compose(compose_binary, "config", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


@pytest.mark.integration
def test_compose_binary_rejects_a_broken_file(compose_binary: Path, tmp_path: Path) -> None:
    """The check above can fail: an unknown key and a bad port are refused."""
    broken = tmp_path / "compose.yaml"
    for service in ("portz: ['1:1']", "ports: ['127.0.0.1:99999:1']"):
        broken.write_text(f"services:\n  a:\n    image: x:1.0.0\n    {service}\n")
        result = subprocess.run(
            [str(compose_binary), "-f", str(broken), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0, service


@pytest.mark.integration
def test_the_stack_has_every_service(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) >= SERVICES


@pytest.mark.integration
def test_every_port_is_bound_to_loopback(resolved: dict[str, Any]) -> None:
    published = []
    for name, service in resolved["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond 127.0.0.1"
            published.append(int(port["published"]))
    assert len(published) == len(set(published)), "a host port is published twice"
    assert {4317, 4318, 16686, 3200, 9090, 3000} <= set(published)


@pytest.mark.integration
def test_every_image_is_pinned(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        assert PINNED.match(service["image"]), (
            f"{name}: {service['image']} is not pinned to a version"
        )


@pytest.mark.integration
def test_every_mounted_file_exists(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                source = Path(volume["source"])
                assert source.exists(), f"{name} mounts missing {source}"
                assert source.resolve().is_relative_to(REPO_ROOT), source
                assert volume.get("read_only"), f"{name} mounts {source} writable"


@pytest.mark.integration
def test_prometheus_config_is_valid(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "config", str(REPO_ROOT / "compose" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _service_port(service: dict[str, Any]) -> set[int]:
    """Container ports a service listens on, as far as this stack configures them."""
    return {int(p["target"]) for p in service.get("ports", [])}


@pytest.mark.integration
def test_services_point_at_each_other(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    collector = yaml.safe_load((REPO_ROOT / "otel" / "collector.yaml").read_text())

    # The Collector's config is the file compose mounts where its command reads it.
    mounts = {v["target"]: Path(v["source"]) for v in services["otel-collector"]["volumes"]}
    config_arg = next(a for a in services["otel-collector"]["command"] if a.startswith("--config="))
    assert mounts[config_arg.removeprefix("--config=")] == REPO_ROOT / "otel" / "collector.yaml"

    # Collector -> Jaeger and Tempo over OTLP gRPC on the compose network.
    for exporter in ("otlp/jaeger", "otlp/tempo"):
        host, port = collector["exporters"][exporter]["endpoint"].rsplit(":", 1)
        assert host in services, exporter
        assert port == "4317"
    tempo = yaml.safe_load((REPO_ROOT / "compose" / "tempo" / "tempo.yaml").read_text())
    assert tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(
        ":4317"
    )
    assert services["jaeger"]["environment"]["JAEGER_LISTEN_HOST"] == "0.0.0.0"

    # Prometheus -> the Collector's Prometheus exporter, keeping its job label.
    prometheus = yaml.safe_load(
        (REPO_ROOT / "compose" / "prometheus" / "prometheus.yml").read_text()
    )
    (scrape,) = prometheus["scrape_configs"]
    assert scrape["honor_labels"] is True
    (target,) = scrape["static_configs"][0]["targets"]
    host, port = target.rsplit(":", 1)
    assert host == "otel-collector"
    assert collector["exporters"]["prometheus"]["endpoint"].endswith(f":{port}")

    # Grafana -> its datasources, with the uids the dashboards default to.
    datasources = yaml.safe_load(
        (
            REPO_ROOT / "compose" / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
        ).read_text()
    )["datasources"]
    by_uid = {d["uid"]: d for d in datasources}
    assert {"prometheus", "tempo", "jaeger"} <= set(by_uid)
    expected_ports = {"prometheus": 9090, "tempo": 3200, "jaeger": 16686}
    for uid, port_number in expected_ports.items():
        url = urlparse(by_uid[uid]["url"])
        assert url.hostname == uid, by_uid[uid]["url"]
        assert url.port == port_number, by_uid[uid]["url"]
        assert port_number in _service_port(services[uid])
    assert tempo["server"]["http_listen_port"] == 3200
    exemplars = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplars == [{"name": "trace_id", "datasourceUid": "tempo"}]

    # Grafana loads the repository's dashboards/ folder.
    provider = yaml.safe_load(
        (
            REPO_ROOT / "compose" / "grafana" / "provisioning" / "dashboards" / "railtracks.yaml"
        ).read_text()
    )["providers"][0]
    grafana_mounts = {
        v["target"]: Path(v["source"])
        for v in services["grafana"]["volumes"]
        if v["type"] == "bind"
    }
    assert grafana_mounts[provider["options"]["path"]] == REPO_ROOT / "dashboards"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO_ROOT / "dashboards" / Path(home).name).is_file()


@pytest.mark.integration
def test_versions_match_what_the_tests_check(resolved: dict[str, Any]) -> None:
    """Grafana is the version whose schema the dashboards are validated against,
    the Collector the version whose component list is committed, and Prometheus
    a 2.x, the PromQL dialect the dashboards' queries run against here."""
    images = {name: s["image"] for name, s in resolved["services"].items()}
    package = json.loads(
        (REPO_ROOT / "tests" / "stack" / "grafana_schema" / "package.json").read_text()
    )
    assert images["grafana"] == f"grafana/grafana:{package['dependencies']['@grafana/schema']}"
    collector_version = images["otel-collector"].rsplit(":", 1)[1]
    assert (
        REPO_ROOT
        / "tests"
        / "stack"
        / "data"
        / f"otelcol-contrib-{collector_version}.manifest.yaml"
    ).is_file()
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", images["prometheus"])
    assert images["tempo"] == images["tempo-init"]
