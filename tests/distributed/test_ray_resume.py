"""Resume with Ray-executed nodes: a completed remote call is replayed, never sent again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import railtracks as rt
from tests.distributed import nodes
from tests.distributed.test_ray import by_name, second_node

pytestmark = pytest.mark.usefixtures("ray_cluster")


def _driver_fails(fail: bool) -> None:
    if fail:
        raise RuntimeError("the driver failed after the remote call")


def test_a_remote_call_that_completed_is_replayed_with_its_workers_context_changes() -> None:
    async def flow(fail: bool, **options: Any) -> rt.Session:
        session = rt.Session(name="ray-resume", executor=second_node(), **options)
        try:
            async with session:
                await rt.call(nodes.fan, 2)
                _driver_fails(fail)
        except RuntimeError:
            pass
        return session

    first = asyncio.run(flow(True, logging_setting="NONE"))
    assert first.status == "failed"
    assert len(by_name(first)["leaf"]) == 2  # ran on the worker
    assert rt.flush(60)

    second = asyncio.run(flow(False, logging_setting="NONE", resume=True))

    assert second.status == "completed"
    spans = by_name(second)
    assert "leaf" not in spans  # nothing was sent to the cluster again
    (fan,) = spans["fan"]
    assert fan.attributes is not None
    assert fan.attributes["railtracks.node.replayed"] is True
    # the context the worker's nested calls set comes back from the record
    assert dict(second.context) == {
        key: value for key, value in first.context.items() if key.startswith("leaf_")
    }
    assert set(second.context) == {"leaf_0", "leaf_1"}
