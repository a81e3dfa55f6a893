"""Span trees, asserted as indented strings (SPEC 3: names, parentage, attributes)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks.testing import SpanCapture

pytestmark = pytest.mark.usefixtures("quiet")


@rt.function_node
async def leaf(x: int) -> int:
    return x * 2


@rt.function_node
async def middle(x: int) -> int:
    return await rt.call(leaf, x) + 1


@rt.function_node
async def top(x: int) -> int:
    return await rt.call(middle, x) + await rt.call(leaf, x)


@rt.function_node
def blocking(x: int) -> tuple[int, str | None, str]:
    """A sync node: runs in a worker thread, still inside the session."""
    return x, rt.session_id(), threading.current_thread().name


def test_sequential_calls(rt_spans: SpanCapture) -> None:
    @rt.session(name="seq")
    async def flow() -> list[int]:
        return [await rt.call(leaf, 1), await rt.call(leaf, 2), await rt.call(middle, 3)]

    result, session = asyncio.run(flow())
    assert result == [2, 4, 7]
    assert rt_spans.tree(session) == "\n".join(
        [
            "session seq",
            "  leaf",
            "  leaf",
            "  middle",
            "    leaf",
        ]
    )


def test_three_deep_nesting_and_attributes(rt_spans: SpanCapture) -> None:
    @rt.session(name="deep", context={"tenant": "acme", "n": 3})
    async def flow() -> int:
        return await rt.call(top, 5)

    result, session = asyncio.run(flow())
    assert result == 21
    assert rt_spans.tree(session, attributes=[attr.NODE_INPUT, attr.NODE_OUTPUT]) == "\n".join(
        [
            "session deep",
            "  top {railtracks.node.input='{\"x\":5}', railtracks.node.output='21'}",
            "    middle {railtracks.node.input='{\"x\":5}', railtracks.node.output='11'}",
            "      leaf {railtracks.node.input='{\"x\":5}', railtracks.node.output='10'}",
            "    leaf {railtracks.node.input='{\"x\":5}', railtracks.node.output='10'}",
        ]
    )
    (root,) = rt_spans.named("session deep")
    assert root.kind is SpanKind.INTERNAL
    assert root.instrumentation_scope is not None
    assert root.instrumentation_scope.name == "railtracks"
    assert root.instrumentation_scope.version == rt.__version__
    assert dict(root.attributes or {}) == {
        "railtracks.session.id": session.identifier,
        "session.id": session.identifier,
        "railtracks.session.name": "deep",
        "railtracks.logging_setting": "NONE",
        "railtracks.session.save_state": True,
        "railtracks.context.tenant": "acme",
        "railtracks.context.n": 3,
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "deep",
        "openinference.span.kind": "CHAIN",
        "railtracks.status": "completed",
        "railtracks.session.answer": "21",
        "output.value": "21",
        "output.mime_type": "application/json",
    }
    node = rt_spans.named("middle")[0]
    assert node.kind is SpanKind.INTERNAL
    assert dict(node.attributes or {}) == {
        "railtracks.node.name": "middle",
        "railtracks.node.kind": "function",
        "railtracks.session.id": session.identifier,
        "railtracks.session.name": "deep",
        "session.id": session.identifier,
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "middle",
        "gen_ai.tool.type": "function",
        "openinference.span.kind": "TOOL",
        "railtracks.context.tenant": "acme",
        "railtracks.context.n": 3,
        "railtracks.node.input": '{"x":5}',
        "input.value": '{"x":5}',
        "input.mime_type": "application/json",
        # the call key's digest (SPEC 14): SHA-256 of the canonical arguments
        "railtracks.node.args_digest": hashlib.sha256(b'{"x":5}').hexdigest(),
        "railtracks.node.output": "11",
        "output.value": "11",
        "output.mime_type": "application/json",
        "railtracks.status": "completed",
    }
    # one payload, two keys: the span holds the same string object under both
    attributes = node.attributes or {}
    assert attributes["input.value"] is attributes["railtracks.node.input"]
    assert attributes["output.value"] is attributes["railtracks.node.output"]
    assert session.trace_id is not None
    assert len(session.trace_id) == 32
    assert {format(s.context.trace_id, "032x") for s in rt_spans.spans(session)} == {
        session.trace_id
    }


def test_gather_of_hundreds_keeps_exact_parentage(rt_spans: SpanCapture) -> None:
    count = 300

    @rt.function_node
    async def fan_out(n: int) -> list[int]:
        return list(await asyncio.gather(*(rt.call(middle, i) for i in range(n))))

    @rt.session(name="gather")
    async def flow() -> list[int]:
        return await rt.call(fan_out, count)

    result, session = asyncio.run(flow())
    assert result == [2 * i + 1 for i in range(count)]
    expected = ["session gather", "  fan_out"]
    expected += ["    middle", "      leaf"] * count
    assert rt_spans.tree(session) == "\n".join(expected)
    # each leaf's parent is the middle that computed it, not a sibling's
    by_id = {s.context.span_id: s for s in rt_spans.spans(session)}
    for leaf_span in rt_spans.named("leaf"):
        assert leaf_span.parent is not None
        parent = by_id[leaf_span.parent.span_id]
        leaf_in = json.loads(str((leaf_span.attributes or {})[attr.NODE_INPUT]))
        parent_in = json.loads(str((parent.attributes or {})[attr.NODE_INPUT]))
        assert parent.name == "middle"
        assert leaf_in == parent_in


def test_create_task_children_parent_to_the_creating_node(rt_spans: SpanCapture) -> None:
    @rt.function_node
    async def spawner() -> list[int]:
        tasks = [asyncio.create_task(rt.call(leaf, i)) for i in range(3)]
        return [await t for t in tasks]

    @rt.session(name="tasks")
    async def flow() -> list[int]:
        return await rt.call(spawner)

    result, session = asyncio.run(flow())
    assert result == [0, 2, 4]
    assert rt_spans.tree(session) == "session tasks\n  spawner\n    leaf\n    leaf\n    leaf"


def test_sync_nodes_run_in_threads_with_the_session(rt_spans: SpanCapture) -> None:
    @rt.session(name="threads")
    async def flow() -> list[tuple[int, str | None, str]]:
        return list(await asyncio.gather(*(rt.call(blocking, i) for i in range(8))))

    result, session = asyncio.run(flow())
    assert [r[0] for r in result] == list(range(8))
    assert {r[1] for r in result} == {session.identifier}
    assert all(r[2] != threading.main_thread().name for r in result)
    assert rt_spans.tree(session) == "session threads\n" + "\n".join(["  blocking"] * 8)


def test_nested_sessions_restore_the_outer_one_exactly(rt_spans: SpanCapture) -> None:
    seen: dict[str, object] = {}

    @rt.session(name="inner", context={"who": "inner"})
    async def inner() -> str:
        seen["inner_id"] = rt.session_id()
        return await rt.call(leaf, 1) and rt.context.get("who")

    @rt.function_node
    async def runs_inner() -> str:
        result, inner_session = await inner()
        seen["inner_session"] = inner_session
        return result

    @rt.session(name="outer", context={"who": "outer"})
    async def outer() -> str:
        before = (rt.session_id(), rt.context.as_dict(), rt.current_session())
        result = await rt.call(runs_inner)
        after = (rt.session_id(), rt.context.as_dict(), rt.current_session())
        assert before == after
        return f"{result}/{rt.context.get('who')}"

    result, session = asyncio.run(outer())
    assert result == "inner/outer"
    inner_session = seen["inner_session"]
    assert isinstance(inner_session, rt.Session)
    assert seen["inner_id"] == inner_session.identifier != session.identifier
    assert inner_session.trace_id == session.trace_id
    assert rt_spans.tree() == "\n".join(
        ["session outer", "  runs_inner", "    session inner", "      leaf"]
    )
    # each session's state holds only its own spans
    outer_state, inner_state = session.state, inner_session.state
    assert outer_state is not None
    assert inner_state is not None
    assert [n["name"] for n in outer_state["nodes"]] == ["runs_inner"]
    assert outer_state["nodes"][0]["children"] == []
    assert [n["name"] for n in inner_state["nodes"]] == ["leaf"]
    assert rt.current_session() is None


def test_session_inside_a_foreign_host_span(rt_spans: SpanCapture) -> None:
    host = TracerProvider().get_tracer("host-app")

    @rt.session(name="in-request")
    async def flow() -> int:
        return await rt.call(leaf, 4)

    async def handle_request() -> tuple[int, rt.Session, int]:
        with host.start_as_current_span("GET /checkout") as request_span:
            result, session = await flow()
            return result, session, request_span.get_span_context().span_id

    result, session, request_span_id = asyncio.run(handle_request())
    assert result == 8
    (root,) = rt_spans.named("session in-request")
    assert root.parent is not None
    assert root.parent.span_id == request_span_id
    assert format(root.context.trace_id, "032x") == session.trace_id
    assert rt_spans.tree(session) == "session in-request\n  leaf"


def test_failure_marks_the_span_and_reaches_the_caller_unchanged(rt_spans: SpanCapture) -> None:
    boom = ValueError("no stock for sku-1")

    @rt.function_node
    async def reserve() -> None:
        raise boom

    @rt.session(name="fails")
    async def flow() -> None:
        await rt.call(reserve)

    with pytest.raises(ValueError, match="no stock") as caught:
        asyncio.run(flow())
    assert caught.value is boom
    assert rt_spans.tree() == "session fails [failed]\n  reserve [failed]"
    (span,) = rt_spans.named("reserve")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError: no stock for sku-1"
    assert (span.attributes or {})[attr.ERROR_TYPE] == "ValueError"
    (event,) = [e for e in span.events if e.name == "exception"]
    assert (event.attributes or {})["exception.type"] == "ValueError"
    assert (event.attributes or {})["exception.message"] == "no stock for sku-1"
    (root,) = rt_spans.named("session fails")
    assert root.status.description == "ValueError: no stock for sku-1"


def test_handled_failure_leaves_the_session_completed(rt_spans: SpanCapture) -> None:
    @rt.function_node
    async def flaky() -> None:
        raise KeyError("missing")

    @rt.session(name="handled")
    async def flow() -> str:
        try:
            await rt.call(flaky)
        except KeyError:
            return "recovered"
        return "unreachable"

    result, session = asyncio.run(flow())
    assert result == "recovered"
    assert session.status == "completed"
    assert rt_spans.tree(session) == "session handled\n  flaky [failed]"
