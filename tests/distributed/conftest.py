"""One real Ray cluster for the whole test run: two nodes (raylets) on this machine.

The head node has one CPU and the custom resource ``head``; the second node one
CPU and ``second``. Executors built by ``executor(...)`` send their tasks to the
second node, so calls really leave the driver's raylet. Without Ray the tests
skip (locally) or fail (``CI=true``): ``bash tests/run.sh`` installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import REPO

# Ray reads this when it is imported: with it, every Ray address (GCS, raylets,
# workers, driver) is on 127.0.0.1 rather than the machine's network address.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
OBJECT_STORE = 150 * 1024 * 1024
# Every raylet, worker and driver on the loopback interface: test traffic stays on 127.0.0.1.
LOOPBACK = "127.0.0.1"
INSTALL = "Ray is not installed: pip install 'railtracks[ray]' (bash tests/run.sh installs it)"


def require_ray() -> Any:
    try:
        import ray
        from ray.cluster_utils import Cluster  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{INSTALL}; Ray tests never skip in CI")
        pytest.skip(INSTALL)
    return ray


def worker_env() -> dict[str, str]:
    """What the raylets (and so the workers) inherit: the tests' nodes importable, and
    every Ray address on the loopback interface (Ray otherwise advertises the
    machine's own network address, even for a cluster on one machine)."""
    path = os.environ.get("PYTHONPATH", "")
    return {
        "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }


_RUNNING: list[Any] = []  # (ray, cluster) while the shared cluster is up


def _shut_down() -> None:
    while _RUNNING:
        ray, cluster = _RUNNING.pop()
        ray.shutdown()
        cluster.shutdown()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the cluster once the last Ray test has run: the rest of the suite
    (timing-sensitive tests among it) should not share two cores with idle raylets."""
    if nextitem is None or "tests/distributed/" not in nextitem.nodeid:
        _shut_down()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    ray = require_ray()
    from ray.cluster_utils import Cluster

    os.environ.update(worker_env())
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "object_store_memory": OBJECT_STORE,
            "resources": {"head": 1},
            "include_dashboard": False,
            "node_ip_address": LOOPBACK,
        },
    )
    cluster.add_node(
        num_cpus=1,
        object_store_memory=OBJECT_STORE,
        resources={"second": 1},
        node_ip_address=LOOPBACK,
    )
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, _node_ip_address=LOOPBACK)
    _RUNNING.append((ray, cluster))
    try:
        yield cluster
    finally:
        _shut_down()
