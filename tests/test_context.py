"""rt.context: a copy per session, shared by all its nodes, invisible to other sessions."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks.errors import ContextError
from railtracks.testing import SpanCapture

pytestmark = pytest.mark.usefixtures("quiet")


@rt.function_node
async def remember(key: str, value: Any) -> list[str]:
    rt.context.put(key, value)
    return sorted(rt.context.keys())


def test_one_decorated_function_called_twice_starts_from_the_same_context() -> None:
    given = {"count": 0}

    @rt.session(context=given)
    async def flow() -> dict[str, Any]:
        rt.context.put("count", rt.context.get("count") + 1)
        await rt.call(remember, "extra", True)
        return rt.context.as_dict()

    first, _ = asyncio.run(flow())
    second, _ = asyncio.run(flow())
    assert first == second == {"count": 1, "extra": True}
    assert given == {"count": 0}, "the caller's dict is never mutated"


def test_session_context_is_read_only_and_frozen_after_the_end() -> None:
    @rt.session(context={"a": 1})
    async def flow() -> None:
        rt.context.update({"b": 2})
        rt.context.delete("a")

    _, session = asyncio.run(flow())
    assert dict(session.context) == {"b": 2}
    with pytest.raises(TypeError):
        session.context["c"] = 3  # type: ignore[index]  # proving it is read-only


def test_all_nodes_including_concurrent_and_threaded_see_one_context() -> None:
    @rt.function_node
    def sync_reader() -> Any:
        return rt.context.get("shared")

    @rt.function_node
    async def writer(i: int) -> None:
        rt.context.put(f"k{i}", i)

    @rt.session(context={"shared": "yes"})
    async def flow() -> tuple[Any, list[str]]:
        await asyncio.gather(*(rt.call(writer, i) for i in range(20)))
        return await rt.call(sync_reader), sorted(rt.context.keys())

    (shared, keys), _ = asyncio.run(flow())
    assert shared == "yes"
    assert keys == sorted(["shared", *(f"k{i}" for i in range(20))])


def test_fifty_concurrent_sessions_never_see_each_others_values_or_spans(
    rt_spans: SpanCapture,
) -> None:
    @rt.function_node
    async def check(owner: int) -> int:
        await asyncio.sleep(random.random() / 100)
        assert rt.context.get("owner") == owner
        rt.context.put("seen", owner)
        await asyncio.sleep(random.random() / 100)
        assert rt.context.get("seen") == owner
        return owner

    async def one(owner: int) -> tuple[int, rt.Session]:
        @rt.session(name=f"s{owner}", context={"owner": owner})
        async def flow() -> int:
            results = await asyncio.gather(*(rt.call(check, owner) for _ in range(3)))
            assert set(results) == {owner}
            return owner

        return await flow()

    async def main() -> list[tuple[int, rt.Session]]:
        return list(await asyncio.gather(*(one(i) for i in range(50))))

    outcomes = asyncio.run(main())
    assert [result for result, _ in outcomes] == list(range(50))
    for owner, session in outcomes:
        spans = rt_spans.spans(session)
        assert len(spans) == 4
        assert {(s.attributes or {})[attr.SESSION_ID] for s in spans} == {session.identifier}
        nodes = [s for s in spans if s.name == "check"]
        assert {(s.attributes or {})["railtracks.context.owner"] for s in nodes} == {owner}
    assert len({s.identifier for _, s in outcomes}) == 50


def test_sessions_in_threads_are_isolated(rt_spans: SpanCapture) -> None:
    results: dict[int, Any] = {}

    @rt.session
    async def flow(owner: int) -> Any:
        rt.context.put("owner", owner)
        await rt.call(remember, "x", owner)
        await asyncio.sleep(0.01)
        return rt.context.get("owner"), rt.context.get("x")

    def worker(owner: int) -> None:
        results[owner] = asyncio.run(flow(owner))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for owner, ((got_owner, got_x), session) in results.items():
        assert got_owner == got_x == owner
        assert rt_spans.tree(session) == "session\n  remember"


def test_context_outside_a_session_raises_context_error() -> None:
    with pytest.raises(ContextError, match=r"rt\.context\.get\(\) was called outside a session"):
        rt.context.get("x")
    for call in (
        lambda: rt.context.put("x", 1),
        lambda: rt.context.update({}),
        lambda: rt.context.delete("x"),
        rt.context.keys,
        rt.context.items,
        rt.context.as_dict,
    ):
        with pytest.raises(ContextError):
            call()


def test_context_changes_are_span_events_values_only_when_verbose(rt_spans: SpanCapture) -> None:
    async def flow(setting: str) -> None:
        with rt.Session(name=setting.lower(), logging_setting=setting, save_state=False):
            await rt.call(remember, "plan", "gold")
            rt.context.update({"api_key": "sk-123", "tier": 2})
            rt.context.delete("tier")

    for setting in ("REGULAR", "VERBOSE"):
        asyncio.run(flow(setting))

    def changes(span_name: str) -> list[dict[str, Any]]:
        (span,) = rt_spans.named(span_name)
        return [
            dict(e.attributes or {}) for e in span.events if e.name == attr.EVENT_CONTEXT_CHANGE
        ]

    regular = changes("session regular")
    # the recorded form a resumed run applies again (SPEC 14) is its own key; a change
    # holding a secret is not recorded at all, only marked
    assert [e.pop(attr.CONTEXT_CHANGE_UNREPLAYABLE, None) for e in regular] == ["redacted", None]
    assert [e.pop(attr.CONTEXT_CHANGE_RECORDED, None) for e in regular] == [None, '["tier"]']
    assert regular == [
        {"railtracks.context.operation": "update", "railtracks.context.keys": ("api_key", "tier")},
        {"railtracks.context.operation": "delete", "railtracks.context.keys": ("tier",)},
    ]
    verbose = changes("session verbose")
    assert verbose[0]["railtracks.context.api_key"] == "[REDACTED]"
    assert verbose[0]["railtracks.context.tier"] == 2
    node_events = [
        dict(e.attributes or {})
        for s in rt_spans.named("remember")
        for e in s.events
        if e.name == attr.EVENT_CONTEXT_CHANGE
    ]
    assert {
        "railtracks.context.operation": "put",
        "railtracks.context.keys": ("plan",),
        "railtracks.context.recorded": '{"plan":"gold"}',
    } in node_events
    assert any(e.get("railtracks.context.plan") == "gold" for e in node_events)


def test_sensitive_context_is_redacted_on_spans_but_live_in_rt_context(
    rt_spans: SpanCapture,
) -> None:
    secrets = {
        "password": "hunter2",
        "DB_PASSWD": "p",
        "client_secret": "s",
        "Access-Token": "t",
        "api_key": "k",
        "x-api-key": "k2",
        "openai_apikey": "k3",
        "Authorization": "Bearer x",
        "auth": "a",
        "aws_credentials": "c",
        "cookie": "c2",
        "private_key": "pk",
    }

    @rt.function_node
    async def read_password() -> bool:
        return rt.context.get("password") == "hunter2"

    @rt.session(name="secrets", context={**secrets, "region": "eu"})
    async def flow() -> str:
        return await rt.call(read_password)

    result, session = asyncio.run(flow())
    assert result is True
    for span in rt_spans.spans(session):
        values = dict(span.attributes or {})
        for key in secrets:
            assert values[f"railtracks.context.{key}"] == "[REDACTED]", key
        assert values["railtracks.context.region"] == "eu"
    assert session.state_path is not None
    assert rt.flush(30)  # the state file is complete once flush returns
    saved = session.state_path.read_text()
    for value in secrets.values():
        assert f'"{value}"' not in saved
    assert '"region":"eu"' in saved


def test_redaction_pattern_is_configurable(rt_spans: SpanCapture) -> None:
    rt.configure(redact_pattern=r"^ssn$")

    @rt.session(name="custom", context={"ssn": "123", "password": "visible-now"})
    async def flow() -> None:
        return None

    asyncio.run(flow())
    (root,) = rt_spans.named("session custom")
    values = dict(root.attributes or {})
    assert values["railtracks.context.ssn"] == "[REDACTED]"
    assert values["railtracks.context.password"] == "visible-now"
