"""Node calls on a real two-node Ray cluster: one session, one trace, one state (SPEC 12)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import railtracks as rt
from railtracks import errors
from railtracks.testing._procs import wait_for_progress
from railtracks.testing._receiver import Receiver, otlp_receiver
from tests.distributed import nodes

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as found:
        yield found


def second_node(**extra: Any) -> Any:
    """An executor whose tasks run on the cluster's second node (another raylet)."""
    from railtracks.ray import RayExecutor

    return RayExecutor(task_options={"resources": {"second": 0.01}, **extra})


def driver_node() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


def by_name(session: rt.Session) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for span in session.spans:
        found.setdefault(span.name, []).append(span)
    return found


def test_calls_cross_raylets_and_the_trace_is_complete_and_exported_once(
    receiver: Receiver,
) -> None:
    rt.configure(endpoint=receiver.http_endpoint, protocol="http/protobuf")
    # If a worker exported on its own, its spans would reach the receiver twice.
    worker_export = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    executor = second_node(runtime_env={"env_vars": worker_export})

    @rt.session(name="cluster", executor=executor, logging_setting="NONE")
    async def flow() -> tuple[Any, Any, Any]:
        here = await rt.call(nodes.where)
        fanned = await rt.call(nodes.fan, 3)
        nested = await rt.call(nodes.sync_outer, 7)
        return here, fanned, nested

    (here, fanned, nested), session = asyncio.run(flow())
    assert rt.flush(10)

    assert here["pid"] != os.getpid()
    assert here["node"] != driver_node()  # another raylet, not only another process
    assert {leaf["pid"] for leaf in fanned} == {fanned[0]["pid"]} != {os.getpid()}
    assert all(leaf["session"] == session.identifier for leaf in fanned)
    assert nested["inner"]["pid"] == nested["pid"] != os.getpid()

    spans = by_name(session)
    root = spans["session cluster"][0]
    assert Counter(span.name for span in session.spans) == Counter(
        {
            "session cluster": 1,
            "where": 1,
            "fan": 1,
            "leaf": 4,
            "sync_outer": 1,
            "foreign work": 1,  # another instrumentation's span, made on the worker
        }
    )
    trace_id = root.context.trace_id
    assert all(span.context.trace_id == trace_id for span in session.spans)
    ids = {span.context.span_id: span for span in session.spans}
    assert len(ids) == len(session.spans)
    for name in ("where", "fan", "sync_outer"):
        assert spans[name][0].parent.span_id == root.context.span_id
    fan_id = spans["fan"][0].context.span_id
    outer_id = spans["sync_outer"][0].context.span_id
    leaf_parents = Counter(ids[span.parent.span_id].name for span in spans["leaf"])
    assert leaf_parents == {"fan": 3, "sync_outer": 1}
    assert spans["where"][0].attributes["railtracks.worker.pid"] == here["pid"]

    state = session.state
    assert state is not None
    tree = {node["name"]: node for node in state["nodes"]}
    assert sorted(tree) == ["fan", "sync_outer", "where"]
    fan_children = sorted(tree["fan"]["children"], key=lambda child: child["name"])
    assert [child["name"] for child in fan_children] == ["foreign work"] + ["leaf"] * 3
    assert [child.get("foreign", False) for child in fan_children] == [True] + [False] * 3
    assert [child["name"] for child in tree["sync_outer"]["children"]] == ["leaf"]

    expected = len(session.spans)
    wait_for_progress(lambda: len(receiver.spans()), expected)
    time.sleep(0.5)  # a duplicate, if any, would arrive now
    exported = [span for _, span in receiver.spans()]
    exported_ids = Counter(span.span_id.hex() for span in exported)
    assert all(count == 1 for count in exported_ids.values()), exported_ids
    assert len(exported) == expected
    assert {span.trace_id.hex() for span in exported} == {f"{trace_id:032x}"}
    foreign = [span for span in exported if span.name == "foreign work"]
    assert len(foreign) == 1
    assert foreign[0].parent_span_id.hex() == f"{fan_id:016x}"
    assert {a.key: a.value.int_value for a in foreign[0].attributes} == {"work.items": 3}
    parents = {span.span_id.hex(): span.parent_span_id.hex() for span in exported}
    for span in session.spans:
        parent = f"{span.parent.span_id:016x}" if span.parent else ""
        assert parents[f"{span.context.span_id:016x}"] == parent
    assert outer_id in ids


def test_context_travels_both_ways_with_its_change_events() -> None:
    @rt.session(
        executor=second_node(),
        context={"a": 1, "gone": True, "nested": {"x": [1, 2]}},
        logging_setting="NONE",
    )
    async def flow() -> Any:
        seen = await rt.call(nodes.context_worker)
        return seen, rt.context.as_dict()

    (seen, after), session = asyncio.run(flow())
    assert seen == {"a": 1, "gone": True, "nested": {"x": [1, 2]}}
    assert after["a"] == 2
    assert after["b"] == 3
    assert "gone" not in after
    assert after["from_worker"]["pid"] != os.getpid()
    assert dict(session.context) == after
    node = by_name(session)["context_worker"][0]
    changes = [e for e in node.events if e.name == "railtracks.context.change"]
    assert [e.attributes["railtracks.context.operation"] for e in changes] == [
        "put",
        "update",
        "delete",
    ]
    assert all(e.timestamp >= node.start_time for e in changes)


def test_exceptions_arrive_with_their_own_type_and_message() -> None:
    @rt.session(executor=second_node(), logging_setting="NONE")
    async def flow() -> None:
        await rt.call(nodes.fails, "bolts")

    with pytest.raises(nodes.InventoryError, match="no bolts left") as caught:
        asyncio.run(flow())
    assert any("raised in worker" in note for note in caught.value.__notes__)


def test_deadline_and_logging_setting_reach_the_worker() -> None:
    @rt.session(name="seen", executor=second_node(), timeout=30, logging_setting="QUIET")
    async def flow() -> Any:
        return await rt.call(nodes.session_view)

    view, _ = asyncio.run(flow())
    assert 0 < view["left"] < 30
    assert view["setting"] == "QUIET"
    assert view["name"] == "seen"


def test_a_result_that_cannot_come_back_names_the_node() -> None:
    @rt.session(executor=second_node(), logging_setting="NONE")
    async def flow() -> Any:
        return await rt.call(nodes.returns_lock)

    with pytest.raises(errors.NodeSerializationError, match=r"'returns_lock'.*result"):
        asyncio.run(flow())


def test_timeout_cancels_a_running_remote_call(tmp_path: Path) -> None:
    target = tmp_path / "late.txt"

    @rt.session(executor=second_node(), timeout=2, logging_setting="NONE")
    async def flow() -> Any:
        return await rt.call(nodes.slow_write, str(target), 6)

    started = time.monotonic()
    with pytest.raises(errors.GlobalTimeOutError):
        asyncio.run(flow())
    assert time.monotonic() - started < 5
    time.sleep(6)
    assert not target.exists(), "the remote call kept running after the session timed out"


def test_a_killed_worker_fails_that_call_clearly() -> None:
    @rt.session(executor=second_node(), logging_setting="NONE")
    async def flow() -> Any:
        with pytest.raises(errors.WorkerLostError, match="'die'"):
            await rt.call(nodes.die)
        return await rt.call(nodes.where)  # the session and the cluster go on

    here, session = asyncio.run(flow())
    assert here["pid"] != os.getpid()
    assert session.status == "completed"
    assert by_name(session)["die"][0].attributes["railtracks.status"] == "failed"


def test_unserialisable_arguments_name_the_node() -> None:
    @rt.session(executor=second_node(), logging_setting="NONE")
    async def flow() -> None:
        await rt.call(nodes.leaf, threading.Lock())  # type: ignore[arg-type]

    with pytest.raises(errors.NodeSerializationError, match="'leaf'") as caught:
        asyncio.run(flow())
    assert isinstance(caught.value, TypeError)


def test_executor_local_on_a_node_runs_in_process_and_per_node_executor() -> None:
    remote_where = rt.function_node(nodes.where.func, name="where", executor=second_node())

    @rt.session(executor=second_node(), logging_setting="NONE")
    async def remote_session() -> int:
        return await rt.call(nodes.local_pid)

    @rt.session(logging_setting="NONE")
    async def local_session() -> Any:
        return await rt.call(remote_where)

    pid, _ = asyncio.run(remote_session())
    assert pid == os.getpid()
    here, _ = asyncio.run(local_session())
    assert here["pid"] != os.getpid()


@rt.function_node(executor="local")
async def fail_soon() -> None:
    await asyncio.sleep(1.5)  # the remote call is running by now
    raise nodes.InventoryError("stop everything")


def test_end_on_error_cancels_a_running_remote_call(tmp_path: Path) -> None:
    target = tmp_path / "late.txt"

    @rt.session(executor=second_node(), end_on_error=True, logging_setting="NONE")
    async def flow() -> Any:
        return await asyncio.gather(rt.call(nodes.slow_write, str(target), 6), rt.call(fail_soon))

    with pytest.raises(nodes.InventoryError, match="stop everything"):
        asyncio.run(flow())
    time.sleep(6)
    assert not target.exists(), "the remote call kept running after end_on_error"


def test_model_usage_on_a_worker_is_summed_by_the_caller() -> None:
    @rt.function_node(executor="local")
    async def caller() -> int:
        return await rt.call(nodes.model_worker)

    @rt.session(executor=second_node(), logging_setting="NONE")
    async def flow() -> int:
        return await rt.call(caller)

    pid, session = asyncio.run(flow())
    assert pid != os.getpid()
    assert session.state is not None
    usage = session.state["session"]["usage"]
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"]) == (2, 312, 33)
    (caller_span,) = by_name(session)["caller"]
    assert caller_span.attributes["railtracks.usage.input_tokens"] == 312
    assert caller_span.attributes["railtracks.usage.calls"] == 2
