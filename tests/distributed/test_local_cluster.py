"""``RayExecutor()`` with no cluster running starts a local one, as a user's script meets it.

Runs before the shared two-node cluster of ``conftest.py`` starts (file order),
in its own process, so nothing is running for it to connect to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_python
from tests.distributed.conftest import LOOPBACK, OBJECT_STORE, require_ray, worker_env

SCRIPT = f"""
import asyncio, json, os
import railtracks as rt
from railtracks.ray import RayExecutor
from tests.distributed import nodes

executor = RayExecutor(
    num_cpus=1,
    object_store_memory={OBJECT_STORE},
    include_dashboard=False,
    _node_ip_address="{LOOPBACK}",
)

@rt.session(name="local-cluster", executor=executor, context={{"k": "v"}})
async def flow():
    return await rt.call(nodes.where), await rt.call(nodes.sync_outer, 3)

(here, nested), session = asyncio.run(flow())
print(json.dumps({{"driver": os.getpid(), "here": here, "nested": nested,
                  "status": session.status, "context": dict(session.context)}}))
"""


def test_a_local_cluster_is_started_when_none_runs(tmp_path: Path) -> None:
    require_ray()
    env = {**worker_env(), "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}
    result = run_python(SCRIPT, tmp_path, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Started a local Ray instance" in result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["here"]["pid"] != out["driver"]
    assert out["nested"]["inner"]["pid"] == out["nested"]["pid"] != out["driver"]
    assert out["status"] == "completed"
    assert out["context"] == {"k": "v", "leaf_3": out["nested"]["pid"]}
    # the console of the driver printed the worker's nested node, under its parent
    assert "    leaf completed" in result.stderr
    assert (tmp_path / ".railtracks" / "local-cluster.json").exists()
    assert os.getpid() != out["driver"]
