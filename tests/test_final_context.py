"""The context at a session's end (SPEC 6 ``final_context``, issue 20).

Recorded on the session span (``railtracks.final_context.*``, with
``railtracks.session.context_changed``), built into the state from the spans,
redacted and bounded like the start context, shown by ``railtracks show`` and
re-created by ``railtracks export``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import string
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import railtracks as rt
from railtracks._recording import attributes as attr
from railtracks._recording.encoding import TRUNCATED
from railtracks._remote.carrier import RemoteCall
from railtracks._remote.segment import execute_call
from railtracks._runs.respan import spans_from_state
from railtracks._runs.schema import validate_state
from railtracks._runs.state import build_state
from railtracks.testing import SpanCapture

from .conftest import RAILTRACKS, REPO, run, run_python

SCHEMA = json.loads((REPO / "src" / "railtracks" / "state.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
GITHUB_TOKEN = "ghp_" + (string.ascii_letters + string.digits)[:36]

pytestmark = pytest.mark.usefixtures("quiet")


def assert_valid(document: Any) -> None:
    validate_state(document)
    assert [e.message for e in VALIDATOR.iter_errors(document)] == []


def session_span_attributes(rt_spans: SpanCapture, session: rt.Session) -> dict[str, Any]:
    (span,) = [s for s in rt_spans.spans(session) if s.name.startswith("session")]
    return dict(span.attributes or {})


@rt.function_node
def sync_edit() -> None:
    rt.context.update({"sync": True, "count": 2})
    rt.context.delete("drop_me")


@rt.function_node
async def inner(tag: str) -> str:
    rt.context.put("nested", [tag, tag])
    return tag


@rt.function_node
async def outer() -> str:
    rt.context.put("count", 1)
    await rt.call(sync_edit)
    return await rt.call(inner, "deep")


@rt.session(name="changes", context={"user": "ann", "drop_me": "x", "count": 0})
async def changes() -> str:
    return await rt.call(outer)


def test_puts_updates_and_deletes_are_in_the_final_context(rt_spans: SpanCapture) -> None:
    result, session = asyncio.run(changes())
    assert result == "deep"
    expected = {"user": "ann", "count": 2, "sync": True, "nested": ["deep", "deep"]}
    state = session.state
    assert state is not None
    record = state["session"]
    assert record["context"] == {"user": "ann", "drop_me": "x", "count": 0}
    assert record["final_context"] == expected
    assert "drop_me" not in record["final_context"]
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in session.context.items()} == (
        expected
    )
    # on the session span, under its own prefix, and not repeated under "attributes"
    attributes = session_span_attributes(rt_spans, session)
    assert attributes[attr.SESSION_CONTEXT_CHANGED] is True
    assert attributes[attr.FINAL_CONTEXT_PREFIX + "count"] == 2
    assert attributes[attr.FINAL_CONTEXT_PREFIX + "nested"] == ("deep", "deep")
    assert attr.FINAL_CONTEXT_PREFIX + "drop_me" not in attributes
    assert not any(k.startswith(attr.FINAL_CONTEXT_PREFIX) for k in record["attributes"])
    assert rt.flush()
    path = session.state_path
    assert path is not None
    document = json.loads(path.read_text())
    assert_valid(document)
    assert document == state == rt.load_state("changes")


def test_a_session_without_changes_ends_with_its_start_context(rt_spans: SpanCapture) -> None:
    @rt.session(name="still", context={"user": "ann", "password": "hunter2"})
    async def still() -> int:
        return 1

    _, session = asyncio.run(still())
    state = session.state
    assert state is not None
    record = state["session"]
    assert (
        record["final_context"]
        == record["context"]
        == {
            "user": "ann",
            "password": "[REDACTED]",
        }
    )
    attributes = session_span_attributes(rt_spans, session)
    assert attr.SESSION_CONTEXT_CHANGED not in attributes  # nothing written: it never changed
    assert not any(k.startswith(attr.FINAL_CONTEXT_PREFIX) for k in attributes)
    assert_valid(state)


def test_a_context_emptied_during_the_session_ends_empty() -> None:
    @rt.session(name="emptied", context={"a": 1})
    async def emptied() -> None:
        rt.context.delete("a")

    _, session = asyncio.run(emptied())
    state = session.state
    assert state is not None
    assert (state["session"]["context"], state["session"]["final_context"]) == ({"a": 1}, {})
    assert_valid(state)


def test_secrets_in_the_final_context_are_redacted() -> None:
    @rt.session(name="secret")
    async def secret() -> None:
        rt.context.put("api_key", "sk-live-abc")
        rt.context.put("note", f"token {GITHUB_TOKEN} here")
        rt.context.put("db", "postgres://app:s3cret-pw@db:5432/app")
        rt.context.put("plain", "visible")

    _, session = asyncio.run(secret())
    assert session.context["api_key"] == "sk-live-abc"  # the live value is untouched
    assert rt.flush()
    assert session.state_path is not None
    text = session.state_path.read_text()
    for leaked in ("sk-live-abc", GITHUB_TOKEN, "s3cret-pw"):
        assert leaked not in text
    final = json.loads(text)["session"]["final_context"]
    assert final["api_key"] == "[REDACTED]"
    assert final["plain"] == "visible"
    assert final["db"] == "postgres://app:[REDACTED]@db:5432/app"
    assert "[REDACTED]" in final["note"]


def test_redact_false_keeps_final_context_values_in_clear() -> None:
    rt.configure(redact=False)

    @rt.session(name="clear")
    async def clear() -> None:
        rt.context.put("api_key", "sk-live-abc")

    _, session = asyncio.run(clear())
    state = session.state
    assert state is not None
    assert state["session"]["final_context"] == {"api_key": "sk-live-abc"}


def test_final_context_values_are_cut_at_the_value_limit() -> None:
    rt.configure(value_limit=64)

    @rt.session(name="long")
    async def long() -> None:
        rt.context.put("essay", "w" * 5000)

    _, session = asyncio.run(long())
    state = session.state
    assert state is not None
    essay = state["session"]["final_context"]["essay"]
    assert essay.endswith(TRUNCATED)
    assert len(essay) <= 64
    assert_valid(state)


def test_attribute_count_limits_keep_identity_and_bound_the_final_context(
    rt_spans: SpanCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "60")  # 20 context keys per span
    rt.testing.reset()

    @rt.function_node
    async def widen() -> None:
        for i in range(10):
            rt.context.put(f"added{i}", i)

    @rt.session(name="narrow", context={f"start{i:02d}": i for i in range(15)})
    async def narrow() -> None:
        await rt.call(widen)

    _, session = asyncio.run(narrow())
    for span in rt_spans.spans(session):
        attributes = span.attributes or {}
        assert attributes[attr.SESSION_ID] == session.identifier
        assert attributes[attr.STATUS] == "completed"
        assert len(attributes) <= 60
        assert span.dropped_attributes == 0  # the SDK never had to evict anything
    attributes = session_span_attributes(rt_spans, session)
    assert attributes[attr.DROPPED_FINAL_CONTEXT_KEYS] == 20  # 25 keys, room for 20 - 15
    state = session.state
    assert state is not None
    record = state["session"]
    assert len(record["context"]) == 15
    assert list(record["final_context"]) == [f"start{i:02d}" for i in range(5)]
    assert record["dropped"]["final_context_keys"] == 20
    assert_valid(state)


class PickleExecutor:
    """Runs calls in a thread after a pickle round trip: a process boundary without processes."""

    async def run_call(self, call: RemoteCall) -> Any:
        without = pickle.loads(pickle.dumps(dataclasses.replace(call, func=None)))
        reply = await asyncio.to_thread(execute_call, dataclasses.replace(without, func=call.func))
        return pickle.loads(pickle.dumps(reply))


@rt.function_node
async def far_away() -> None:
    rt.context.put("remote", "set there")
    rt.context.delete("local")


def test_changes_made_by_a_remote_segment_are_in_the_final_context() -> None:
    @rt.session(name="remote", executor=PickleExecutor(), context={"local": 1, "kept": 2})
    async def remote() -> None:
        await rt.call(far_away)

    _, session = asyncio.run(remote())
    state = session.state
    assert state is not None
    assert state["session"]["final_context"] == {"kept": 2, "remote": "set there"}


def test_show_prints_the_final_context_when_it_differs(
    rt_spans: SpanCapture, tmp_path: Path
) -> None:
    asyncio.run(changes())

    @rt.session(name="still", context={"user": "ann"})
    async def still() -> None:
        return None

    asyncio.run(still())
    assert rt.flush()
    env = {"RAILTRACKS_STATE_DIR": str(rt_spans.state_dir)}
    shown = run([RAILTRACKS, "show", "changes"], tmp_path, env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1] == "  context: user='ann', drop_me='x', count=0"
    assert lines[2] == "  final context: user='ann', count=2, sync=True, nested=['deep', 'deep']"
    unchanged = run([RAILTRACKS, "show", "still"], tmp_path, env)
    assert unchanged.returncode == 0, unchanged.stderr
    assert "  context: user='ann'" in unchanged.stdout.splitlines()
    assert "final context" not in unchanged.stdout


@pytest.mark.parametrize("name", ["changes", "still", "emptied"])
def test_export_recreates_the_final_context(name: str, rt_spans: SpanCapture) -> None:
    @rt.session(name="still", context={"user": "ann"})
    async def still() -> None:
        return None

    @rt.session(name="emptied", context={"a": 1})
    async def emptied() -> None:
        rt.context.delete("a")

    _, session = asyncio.run({"changes": changes, "still": still, "emptied": emptied}[name]())
    before = session_span_attributes(rt_spans, session)
    state = rt.load_state(name)
    rebuilt = list(spans_from_state(state))
    assert dict(rebuilt[0].attributes or {}) == before
    again = build_state(rebuilt)
    assert again["session"]["final_context"] == state["session"]["final_context"]
    assert again == state


def test_states_from_before_the_final_context_still_validate() -> None:
    @rt.session(name="older", context={"a": 1})
    async def older() -> None:
        rt.context.put("a", 2)

    _, session = asyncio.run(older())
    state = session.state
    assert state is not None
    record = state["session"]
    del record["final_context"]
    record["attributes"].pop(attr.SESSION_CONTEXT_CHANGED)
    assert_valid(state)  # an older file, without final_context, still validates
    # re-created, its session span says nothing of an end context: read as unchanged
    rebuilt = list(spans_from_state(state))
    assert not any(k.startswith("railtracks.final_context.") for k in rebuilt[0].attributes or {})
    assert build_state(rebuilt)["session"]["final_context"] == {"a": 1}


HOST_DROPS = """
import asyncio, json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
trace.set_tracer_provider(TracerProvider(sampler=ALWAYS_OFF))
import railtracks as rt

@rt.session(name="dropped", context={"tenant": "acme"}, logging_setting="NONE")
async def flow():
    rt.context.put("tenant", "globex")
    rt.context.put("password", "hunter2")

_, session = asyncio.run(flow())
print(json.dumps(session.state["session"]))
"""


def test_a_session_a_host_sampler_dropped_keeps_both_contexts(tmp_path: Path) -> None:
    done = run_python(HOST_DROPS, tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["sampled"] is False
    assert record["context"] == {"tenant": "acme"}  # the start, not the end
    assert record["final_context"] == {"tenant": "globex", "password": "[REDACTED]"}
