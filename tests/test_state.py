"""The saved state (SPEC 6): built from spans, atomic, schema-valid, re-creatable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import railtracks as rt
from railtracks._runs.respan import spans_from_state
from railtracks.errors import ConfigurationError, StateError, StateNotFoundError
from railtracks.testing import SpanCapture

from .conftest import REPO

SCHEMA = json.loads((REPO / "src" / "railtracks" / "state.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

pytestmark = pytest.mark.usefixtures("quiet")


def assert_valid(document: Any) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(document)]
    assert errors == []


@rt.function_node
async def lookup(sku: str) -> dict[str, Any]:
    rt.context.put("last_sku", sku)
    return {"sku": sku, "stock": len(sku)}


@rt.function_node
async def order(skus: list[str]) -> int:
    rows = await asyncio.gather(*(rt.call(lookup, s) for s in skus))
    with contextlib.suppress(ValueError):  # a handled failure
        await rt.call(reject, "bad")
    return sum(row["stock"] for row in rows)


@rt.function_node
def reject(reason: str) -> None:
    raise ValueError(f"rejected: {reason}")


@rt.session(name="orders", context={"customer": "acme", "api_key": "sk-live-123"}, timeout=30)
async def flow(skus: list[str]) -> int:
    return await rt.call(order, skus)


def test_state_file_content(rt_spans: SpanCapture) -> None:
    result, session = asyncio.run(flow(["ab", "cde"]))
    assert rt.flush()  # the file is complete once flush returns (rt.load_state waits by itself)
    assert rt_spans.state_dir is not None  # the fixture keeps the user's .railtracks/ alone
    path = rt_spans.state_dir / "orders.json"
    assert session.state_path == path
    assert not Path(".railtracks").exists()
    document = json.loads(path.read_text())
    assert_valid(document)
    assert document == session.state == rt.load_state("orders") == rt.load_state(path)
    record = document["session"]
    assert record["identifier"] == session.identifier
    assert record["name"] == "orders"
    assert record["trace_id"] == session.trace_id
    assert record["span_id"] == session.span_id
    assert record["status"] == "completed"
    assert record["timeout"] == 30
    assert record["context"] == {"customer": "acme", "api_key": "[REDACTED]"}
    assert record["error"] is None
    assert record["duration_seconds"] > 0
    assert document["answer"] == result == 5
    (order_node,) = document["nodes"]
    assert order_node["name"] == "order"
    assert order_node["input"] == {"skus": ["ab", "cde"]}
    assert order_node["output"] == 5
    assert order_node["parent_span_id"] == record["span_id"]
    children = order_node["children"]
    assert [(c["name"], c["status"]) for c in children] == [
        ("lookup", "completed"),
        ("lookup", "completed"),
        ("reject", "failed"),
    ]
    assert children[0]["output"] == {"sku": "ab", "stock": 2}
    assert children[0]["context_changes"][0]["attributes"] == {
        "railtracks.context.operation": "put",
        "railtracks.context.keys": ["last_sku"],
        # the values a resumed run applies again (SPEC 14), secrets never recorded
        "railtracks.context.recorded": '{"last_sku":"ab"}',
    }
    assert children[2]["error"] == {"type": "ValueError", "message": "ValueError: rejected: bad"}
    assert [e["name"] for e in children[2]["events"]] == ["exception"]
    # the tree holds exactly the session's spans
    ids = {s.context.span_id for s in rt_spans.spans(session)}
    in_state = {int(record["span_id"], 16)} | {
        int(n["span_id"], 16) for n in [order_node, *children]
    }
    assert ids == in_state


def test_spans_are_recreated_with_original_ids_times_and_attributes(rt_spans: SpanCapture) -> None:
    _, session = asyncio.run(flow(["x", "yy"]))
    original = {s.context.span_id: s for s in rt_spans.spans(session)}
    assert session.state is not None
    rebuilt = {s.context.span_id: s for s in spans_from_state(rt.load_state("orders"))}
    assert rebuilt.keys() == original.keys()
    for span_id, before in original.items():
        after = rebuilt[span_id]
        assert after.context.trace_id == before.context.trace_id
        assert (after.name, after.kind, after.start_time, after.end_time) == (
            before.name,
            before.kind,
            before.start_time,
            before.end_time,
        )
        assert (after.parent.span_id if after.parent else None) == (
            before.parent.span_id if before.parent else None
        )
        assert dict(after.attributes or {}) == dict(before.attributes or {})
        assert (after.status.status_code, after.status.description) == (
            before.status.status_code,
            before.status.description,
        )
        assert [(e.name, dict(e.attributes or {}), e.timestamp) for e in after.events] == [
            (e.name, dict(e.attributes or {}), e.timestamp) for e in before.events
        ]
        assert after.resource.attributes == before.resource.attributes


def test_failed_session_still_writes_its_state() -> None:
    @rt.session(name="broken")
    async def broken() -> None:
        await rt.call(lookup, "a")
        await rt.call(reject, "nope")

    with pytest.raises(ValueError, match="nope"):
        asyncio.run(broken())
    state = rt.load_state("broken")
    assert_valid(state)
    assert state["session"]["status"] == "failed"
    assert state["session"]["error"] == {
        "type": "ValueError",
        "message": "ValueError: rejected: nope",
    }
    assert [n["status"] for n in state["nodes"]] == ["completed", "failed"]
    assert state["answer"] is None


def test_cancelled_from_outside_and_timed_out_keep_finished_nodes() -> None:
    hanging = asyncio.Event()

    @rt.function_node
    async def hang() -> None:
        hanging.set()
        await asyncio.sleep(10)

    async def body() -> None:
        await rt.call(lookup, "done-first")
        await rt.call(hang)

    async def cancelled() -> None:
        with rt.Session(name="cancelled"):
            await body()

    async def timed_out() -> None:
        with rt.Session(name="timed-out", timeout=0.2):
            await body()

    async def main() -> None:
        task = asyncio.create_task(cancelled())
        await hanging.wait()  # the first node has ended, the second runs
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(rt.errors.GlobalTimeOutError):
            await timed_out()

    asyncio.run(main())
    for name, status in (("cancelled", "cancelled"), ("timed-out", "timeout")):
        state = rt.load_state(name)
        assert_valid(state)
        assert state["session"]["status"] == status
        assert [(n["name"], n["status"]) for n in state["nodes"]] == [
            ("lookup", "completed"),
            ("hang", status),
        ]
        assert state["nodes"][0]["output"] == {"sku": "done-first", "stock": 10}


def test_unnamed_sessions_are_saved_by_identifier() -> None:
    @rt.session
    async def anonymous() -> str:
        return "hi"

    _, session = asyncio.run(anonymous())
    assert session.state_path == Path(f".railtracks/{session.identifier}.json")
    assert rt.load_state(session.identifier)["answer"] == "hi"


def test_state_dir_from_environment_and_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILTRACKS_STATE_DIR", "env-states/nested")

    @rt.session(name="placed")
    async def placed() -> int:
        return 1

    asyncio.run(placed())
    assert rt.flush()
    assert Path("env-states/nested/placed.json").is_file()
    rt.configure(state_dir="configured")
    asyncio.run(placed())
    assert rt.flush()
    assert Path("configured/placed.json").is_file()


def test_save_state_false_writes_nothing() -> None:
    @rt.session(name="unsaved", save_state=False)
    async def unsaved() -> int:
        return 1

    _, session = asyncio.run(unsaved())
    assert session.state_path is None
    assert session.state is not None, "the state is still there to read"
    assert not Path(".railtracks").exists()


def test_an_unwritable_directory_logs_and_keeps_the_outcome(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("not-a-dir").write_text("a file where the directory should be")
    rt.configure(state_dir="not-a-dir")

    @rt.session(name="nowhere", logging_setting="QUIET")
    async def ok() -> str:
        return "result"

    @rt.session(name="nowhere", logging_setting="QUIET")
    async def fails() -> None:
        raise KeyError("original")

    result, session = asyncio.run(ok())
    assert (result, session.status, session.state_path) == ("result", "completed", None)
    with pytest.raises(KeyError, match="original"):
        asyncio.run(fails())
    errors = [
        line for line in capsys.readouterr().err.splitlines() if "could not save state" in line
    ]
    assert len(errors) == 2
    assert errors[0].startswith(
        "RT.Session : ERROR - could not save state to not-a-dir/nowhere.json"
    )


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", "..", "sub\\dir"])
def test_names_that_leave_the_state_directory_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="name"):
        rt.Session(name=name)
    with pytest.raises(ConfigurationError, match="name"):

        @rt.session(name=name)
        async def flow() -> None:
            return None

    assert list(tmp_path.parent.glob("escape*")) == []
    assert not Path(".railtracks").exists()


def test_load_state_errors() -> None:
    with pytest.raises(StateNotFoundError, match="no saved state 'missing'"):
        rt.load_state("missing")
    Path("junk.json").write_text("{not json")
    with pytest.raises(StateError, match="not a readable railtracks state"):
        rt.load_state("junk.json")
    Path("other.json").write_text('{"hello": 1}')
    with pytest.raises(StateError, match="no schema_version"):
        rt.load_state("other.json")


def test_concurrent_writers_of_one_name_never_tear_the_file() -> None:
    """Many sessions save the same name while readers poll: always one whole, valid document."""
    stop = threading.Event()
    enough = threading.Event()
    seen: list[int] = []
    problems: list[str] = []
    path = Path(".railtracks/contended.json")

    def reader() -> None:
        while not stop.is_set():
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue
            try:
                document = json.loads(text)
            except ValueError as exc:
                problems.append(f"torn: {exc}")
                continue
            session_id = document["session"]["identifier"]
            nodes = document["nodes"]
            # all nodes come from the same session as the record: never mixed
            if any(n["attributes"]["railtracks.session.id"] != session_id for n in nodes):
                problems.append("mixed")
            if len(nodes) != document["answer"]:
                problems.append("incomplete")
            seen.append(len(nodes))
            if len(seen) > 20 and len(set(seen)) > 3:
                enough.set()

    @rt.function_node
    async def pad(i: int) -> str:
        return "x" * 2000

    @rt.session(name="contended")
    async def writer(size: int) -> int:
        await asyncio.gather(*(rt.call(pad, i) for i in range(size)))
        return size

    def write_many(offset: int) -> None:
        # until the readers saw enough whole documents (progress, not a guess of speed)
        for i in range(2000):
            if i >= 15 and enough.is_set():
                return
            asyncio.run(writer(1 + (offset * 7 + i * 13) % 60))

    readers = [threading.Thread(target=reader) for _ in range(3)]
    writers = [threading.Thread(target=write_many, args=(n,)) for n in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    rt.flush()
    stop.set()
    for thread in readers:
        thread.join()
    assert problems == []
    assert len(seen) > 20, "readers really read while writers wrote"
    assert len(set(seen)) > 3, "documents of different sizes were read whole"
    final = rt.load_state("contended")
    assert_valid(final)
    assert list(Path(".railtracks").glob(".contended.*.tmp")) == [], "no temporary left behind"


def test_sensitive_values_never_reach_the_file_but_the_rest_does() -> None:
    @rt.function_node
    async def use_secret() -> int:
        rt.context.put("session_token", "tok-999")
        rt.context.update({"note": "visible", "refresh_token": "tok-888"})
        return 1

    @rt.session(
        name="secretive", context={"password": "hunter2", "user": "ann"}, logging_setting="VERBOSE"
    )
    async def secretive() -> int:
        return await rt.call(use_secret)

    asyncio.run(secretive())
    assert rt.flush()
    text = Path(".railtracks/secretive.json").read_text()
    for secret in ("hunter2", "tok-999", "tok-888"):
        assert secret not in text
    for visible in ('"ann"', '"visible"', "session_token", "refresh_token"):
        assert visible in text
    assert_valid(json.loads(text))


def test_nodes_that_end_out_of_order_are_saved_in_start_order() -> None:
    @rt.function_node
    async def leaf(i: int) -> int:
        await asyncio.sleep(0.002 * (5 - i))  # the first started ends last (not asserted)
        return i

    @rt.function_node
    async def branch(i: int) -> list[int]:
        # 50 ms apart, far more than the time between their starts on a loaded machine
        await asyncio.sleep(0.05 * (3 - i))
        return list(await asyncio.gather(*(rt.call(leaf, j) for j in range(5))))

    @rt.session(name="out-of-order", save_state=False)
    async def flow() -> list[list[int]]:
        return list(await asyncio.gather(*(rt.call(branch, i) for i in range(3))))

    _, session = asyncio.run(flow())
    ended = [
        span.attributes["railtracks.node.input"] for span in session.spans if span.name == "branch"
    ]
    assert ended == ['{"i":2}', '{"i":1}', '{"i":0}']  # they did end in reverse
    state = session.state
    assert state is not None
    assert [node["input"] for node in state["nodes"]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    for node in state["nodes"]:
        assert [child["input"] for child in node["children"]] == [{"i": j} for j in range(5)]
