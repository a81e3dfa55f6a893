"""A segment's reply is untrusted input (SPEC 12): what it may bring into the caller's session.

Replies are made the way a real far side makes them (``rt.session_segment``
run in a context that shares nothing with the caller, then a JSON round
trip), then tampered with as an attacker would, and merged with
``rt.merge_segment`` inside a node of the caller's session.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import railtracks as rt
from railtracks._runs.state import iter_nodes
from tests.conftest import PYTHON, REPO, run, run_python

Tamper = Callable[[dict[str, Any], dict[str, str]], None]


@rt.function_node
async def far_leaf(n: int) -> int:
    return n


@rt.function_node
async def far_parent(n: int) -> int:
    return await rt.call(far_leaf, n) + 1


@rt.function_node
async def local(n: int) -> int:
    return n


async def _serve(headers: dict[str, str]) -> dict[str, Any]:
    """The far side: continue the session, run two nested nodes, reply (as JSON would)."""
    async with rt.session_segment(headers) as segment:
        await rt.call(far_parent, 1)
    reply: dict[str, Any] = json.loads(json.dumps(segment.reply()))
    return reply


@rt.function_node
async def call_far(tamper: Tamper) -> str:
    """Take a carrier, get the far side's reply, let the test tamper with it, merge it."""
    headers = rt.session_carrier()
    reply = await asyncio.create_task(_serve(headers), context=contextvars.Context())
    session_span = rt.current_session().span_id
    assert session_span is not None
    tamper(reply, {"caller": reply["caller_span_id"], "session": session_span})
    rt.merge_segment(reply)
    return "merged"


def fake_span(span_id: str, parent: str | None, **attributes: Any) -> dict[str, Any]:
    """A well-formed span record, as ``spancodec`` encodes one."""
    return {
        "name": "forged",
        "span_id": span_id,
        "parent_span_id": parent,
        "kind": "INTERNAL",
        "start": 10,
        "end": 20,
        "attributes": attributes,
        "events": [],
        "status": ["UNSET", None],
        "scope": ["railtracks", None],
    }


def run_session(tamper: Tamper, *, locals_: int = 4, name: str = "replies") -> rt.Session:
    """A session of ``locals_`` local nodes and one merged reply; the session, once ended."""

    @rt.session(name=name, save_state=False)
    async def flow() -> None:
        for n in range(locals_):
            await rt.call(local, n)
        await rt.call(call_far, tamper)

    _, session = asyncio.run(flow())
    return session


def names(nodes: list[dict[str, Any]]) -> list[Any]:
    """The state's call tree as nested ``[name, [children]]``."""
    return [[node["name"], names(node["children"])] for node in nodes]


INTACT = [
    ["local", []],
    ["local", []],
    ["local", []],
    ["local", []],
    ["call_far", [["far_parent", [["far_leaf", []]]]]],
]


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if "segment reply" in line]


def test_an_untouched_reply_is_merged_whole(quiet: None) -> None:
    session = run_session(lambda reply, ids: None)
    assert session.state is not None
    assert names(session.state["nodes"]) == INTACT
    assert session.state["counts"] == {"nodes": 7, "failed": 0}


HANGS = """
import asyncio
from tests.test_segment_replies import fake_span, names, run_session

def self_parented(reply, ids):
    reply["spans"].append(fake_span(ids["caller"], ids["caller"]))

session = run_session(self_parented)
print(session.state["counts"]["nodes"], names(session.state["nodes"]))
"""


def test_a_span_with_the_callers_id_and_parent_does_not_hang_the_session_end(
    tmp_path: Path,
) -> None:
    # was: tree_counts looped forever at session end (100% CPU, SIGTERM ineffective)
    done = run_python(HANGS, tmp_path, env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    count, tree = done.stdout.strip().split(" ", 1)
    assert int(count) == 7
    assert tree == repr(INTACT)
    assert "1 reusing an id the session has" in done.stderr


def test_a_span_reusing_the_session_spans_id_leaves_every_node(
    quiet: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # was: a state with 0 nodes although 5 ran
    def reuse_session_id(reply: dict[str, Any], ids: dict[str, str]) -> None:
        reply["spans"].append(fake_span(ids["session"], ids["caller"]))

    rt.set_config(logging_setting="QUIET")
    session = run_session(reuse_session_id)
    assert session.state is not None
    assert names(session.state["nodes"]) == INTACT
    assert session.state["counts"] == {"nodes": 7, "failed": 0}
    (warning,) = warnings_of(capsys.readouterr().err)
    assert warning.endswith("left out: 1 reusing an id the session has")


def test_caller_attributes_cannot_move_the_caller_into_another_session(quiet: None) -> None:
    # was: the caller's span went to the other open session's state
    outer_id: list[str] = []

    def claim_outer(reply: dict[str, Any], ids: dict[str, str]) -> None:
        reply["caller_attributes"].update(
            {
                "railtracks.session.id": outer_id[0],
                "session.id": outer_id[0],
                "railtracks.node.name": "renamed",
                "railtracks.node.output": "forged",
                "railtracks.status": "failed",
                "gen_ai.tool.name": "renamed",
                "input.value": "forged",
                "error.type": "Forged",
                "http.route": "/price",
            }
        )

    async def flow() -> tuple[rt.Session, rt.Session]:
        async with rt.Session(name="outer", save_state=False) as outer:
            outer_id.append(outer.identifier)
            async with rt.Session(name="inner", save_state=False) as inner:
                await rt.call(call_far, claim_outer)
        return outer, inner

    outer, inner = asyncio.run(flow())
    assert outer.state is not None
    assert inner.state is not None
    assert outer.state["nodes"] == []
    (caller,) = inner.state["nodes"]
    assert caller["name"] == "call_far"
    assert caller["status"] == "completed"
    assert caller["attributes"]["http.route"] == "/price"  # a plain attribute is applied
    spans = {span.name: span for span in inner.spans}
    attributes = spans["call_far"].attributes or {}
    assert attributes["railtracks.session.id"] == inner.identifier
    assert attributes["session.id"] == inner.identifier
    assert attributes["railtracks.node.name"] == "call_far"
    assert "error.type" not in attributes
    assert attributes["gen_ai.tool.name"] == "call_far"
    assert attributes.get("input.value") != "forged"


def test_foreign_session_spans_cycles_orphans_and_shared_ids_are_dropped_and_counted(
    quiet: None, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "7d7f3f0e-6d1c-4b7a-9d55-2f9d2c1e0a11"

    def hostile(reply: dict[str, Any], ids: dict[str, str]) -> None:
        caller = ids["caller"]
        reply["spans"] += [
            fake_span("00000000000000a1", caller, **{"railtracks.session.id": other}),
            fake_span("00000000000000a2", caller, **{"session.id": other}),
            fake_span("00000000000000a3", caller, **{"railtracks.session.name": "other"}),
            # a session span of this very session: the state would take it for its own
            fake_span("00000000000000a4", caller, **{"railtracks.session.id": reply["session_id"]}),
            fake_span("00000000000000b1", "00000000000000b2"),  # a cycle of two
            fake_span("00000000000000b2", "00000000000000b1"),
            fake_span("00000000000000b3", "00000000000000b3"),  # its own parent
            fake_span("00000000000000c1", "00000000000000b3"),  # under a cycle
            fake_span("00000000000000c2", None),  # no parent
            fake_span("00000000000000c3", "00000000000000ff"),  # a parent nowhere
            fake_span("00000000000000d1", caller),  # two spans, one id
            fake_span("00000000000000d1", caller),
            fake_span("00000000000000e1", caller),  # well-formed and under the caller: kept
        ]

    rt.set_config(logging_setting="QUIET")
    session = run_session(hostile)
    assert session.state is not None
    (caller,) = [node for node in session.state["nodes"] if node["name"] == "call_far"]
    assert sorted(child["name"] for child in caller["children"]) == ["far_parent", "forged"]
    (warning,) = warnings_of(capsys.readouterr().err)
    assert warning.endswith(
        "left out: 3 claiming another session, 1 claiming to be a session span,"
        " 3 in a cycle, 3 not under the calling span,"
        " 2 sharing an id with another span of the reply"
    )


def test_a_reply_cannot_repeat_spans_merged_before(quiet: None) -> None:
    replies: list[dict[str, Any]] = []

    def keep(reply: dict[str, Any], ids: dict[str, str]) -> None:
        replies.append(json.loads(json.dumps(reply)))

    @rt.session(name="twice", save_state=False)
    async def flow() -> None:
        await rt.call(call_far, keep)
        rt.merge_segment(replies[0])  # the same reply again, at the session's level

    _, session = asyncio.run(flow())
    assert session.state is not None
    assert names(session.state["nodes"]) == [["call_far", [["far_parent", [["far_leaf", []]]]]]]


# -- tree building is safe against any parent links, whatever admission let through --


def _node_span(span_id: int, parent: int | None, start: int, session_id: str) -> Any:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext

    trace_id = 0xABC
    return ReadableSpan(
        name=f"n{span_id}",
        context=SpanContext(trace_id, span_id, False),
        parent=None if parent is None else SpanContext(trace_id, parent, False),
        attributes={
            "railtracks.node.name": f"n{span_id}",
            "railtracks.session.id": session_id,
            "railtracks.status": "completed",
        },
        start_time=start,
        end_time=start + 1,
        instrumentation_scope=InstrumentationScope("railtracks"),
    )


def _walked(nodes: list[dict[str, Any]]) -> int:
    stack, count = list(nodes), 0
    while stack:
        count += 1
        stack.extend(stack.pop()["children"])
    return count


def _build_in_thread(spans: list[Any]) -> dict[str, Any]:
    """``build_state`` in a thread, joined: the test asserts it returned, not how fast."""
    from railtracks._runs.state import build_state

    built: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: built.append(build_state(spans)), daemon=True)
    worker.start()
    worker.join()
    assert len(built) == 1, "build_state raised"
    return built[0]


def test_self_parented_and_cyclic_nodes_are_built_as_top_level_nodes() -> None:
    session = "7d7f3f0e-6d1c-4b7a-9d55-2f9d2c1e0a11"
    spans = [
        _node_span(1, 1, 10, session),  # its own parent
        _node_span(2, 3, 20, session),  # 2 and 3: each other's parent
        _node_span(3, 2, 30, session),
        _node_span(4, 3, 40, session),  # under the loop
        _node_span(5, 99, 5, session),  # a parent outside the session: top-level
    ]
    state = _build_in_thread(spans)
    assert names(state["nodes"]) == [
        ["n5", []],
        ["n1", []],
        ["n2", [["n3", [["n4", []]]]]],
    ]
    assert state["counts"] == {"nodes": 5, "failed": 0}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(1, 8),  # few ids: repeats are common
            st.one_of(st.none(), st.integers(1, 10)),
            st.integers(0, 5),
        ),
        max_size=25,
    )
)
def test_any_parent_links_build_a_state_holding_every_node(
    links: list[tuple[int, int | None, int]],
) -> None:
    session = "7d7f3f0e-6d1c-4b7a-9d55-2f9d2c1e0a11"
    spans = [_node_span(span_id, parent, start, session) for span_id, parent, start in links]
    state = _build_in_thread(spans)
    assert state["counts"]["nodes"] == len(spans)
    assert _walked(state["nodes"]) == len(spans)


# -- hostile replies, generated --

_TOKENS = st.one_of(
    st.just(("caller",)),
    st.just(("session",)),
    st.tuples(st.just("reply"), st.integers(0, 3)),
    st.tuples(st.just("forged"), st.integers(0, 7)),
    st.tuples(st.just("fresh"), st.integers(1, 2**64 - 1)),
)
_KEYS = st.sampled_from(
    [
        "railtracks.session.id",
        "session.id",
        "railtracks.session.name",
        "railtracks.node.name",
        "railtracks.node.output",
        "railtracks.status",
        "railtracks.session.answer",
        "railtracks.logging_setting",
        "gen_ai.tool.name",
        "input.value",
        "output.value",
        "error.type",
        "http.route",
    ]
)
_VALUES = st.one_of(
    st.just("7d7f3f0e-6d1c-4b7a-9d55-2f9d2c1e0a11"),
    st.just("@session"),  # this session's own identifier, filled in at tamper time
    st.text(max_size=8),
    st.integers(-(2**63), 2**63 - 1),
)
_FORGED = st.lists(
    st.tuples(_TOKENS, st.one_of(st.none(), _TOKENS), st.dictionaries(_KEYS, _VALUES, max_size=3)),
    max_size=8,
)
_REPARENTED = st.lists(st.tuples(st.integers(0, 3), st.one_of(st.none(), _TOKENS)), max_size=3)


def _resolve(token: tuple[Any, ...] | None, reply_ids: list[str], ids: dict[str, str]) -> Any:
    if token is None:
        return None
    match token:
        case ("caller",) | ("session",):
            return ids[token[0]]
        case ("reply", index):
            return reply_ids[index % len(reply_ids)]
        case ("forged", index):
            return f"{0xF0 + index:016x}"
        case ("fresh", number):
            return f"{number:016x}"
    raise AssertionError(token)


def _hostile(forged: list[Any], reparented: list[Any], caller_attributes: dict[str, Any]) -> Tamper:
    def tamper(reply: dict[str, Any], ids: dict[str, str]) -> None:
        session_id = reply["session_id"]
        reply_ids = [span["span_id"] for span in reply["spans"]]

        def own(values: dict[str, Any]) -> dict[str, Any]:
            return {k: session_id if v == "@session" else v for k, v in values.items()}

        for index, parent in reparented:
            reply["spans"][index % len(reply_ids)]["parent_span_id"] = _resolve(
                parent, reply_ids, ids
            )
        for span_id, parent, attributes in forged:
            reply["spans"].append(
                fake_span(
                    _resolve(span_id, reply_ids, ids),
                    _resolve(parent, reply_ids, ids),
                    **own(attributes),
                )
            )
        reply["caller_attributes"].update(own(caller_attributes))

    return tamper


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(_FORGED, _REPARENTED, st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_hostile_replies_never_hang_steal_identity_or_lose_local_nodes(
    quiet: None,
    forged: list[Any],
    reparented: list[Any],
    caller_attributes: dict[str, Any],
) -> None:
    finished: list[rt.Session] = []
    tamper = _hostile(forged, reparented, caller_attributes)
    # the session (merge, end, state) in a thread, joined: the test asserts it returned
    worker = threading.Thread(target=lambda: finished.append(run_session(tamper)), daemon=True)
    worker.start()
    worker.join()
    (session,) = finished
    state = session.state
    assert state is not None
    assert session.status == "completed"
    tops = [node["name"] for node in state["nodes"]]
    assert tops == ["local", "local", "local", "local", "call_far"]  # every local node, in place
    caller = state["nodes"][-1]
    assert caller["status"] == "completed"
    assert state["counts"]["nodes"] == _walked(state["nodes"])
    span_ids = [record["span_id"] for _, record in iter_nodes(state["nodes"])]
    assert len(span_ids) == len(set(span_ids))
    assert session.span_id not in span_ids
    spans = {span.context.span_id: span for span in session.spans if span.context is not None}
    for span in spans.values():
        attributes = span.attributes or {}
        for key in ("railtracks.session.id", "session.id"):
            assert attributes.get(key, session.identifier) == session.identifier
    (caller_span,) = [span for span in spans.values() if span.name == "call_far"]
    attributes = caller_span.attributes or {}
    assert attributes["railtracks.node.name"] == "call_far"
    assert attributes["railtracks.status"] == "completed"
    assert "error.type" not in attributes
    assert attributes["gen_ai.tool.name"] == "call_far"


def test_the_viewer_shows_spans_whose_parent_links_loop_as_roots() -> None:
    from railtracks.view._model import Run, Span

    def span(span_id: str, parent: str | None, start: int) -> Span:
        return Span(span_id, parent, span_id, "completed", "node", start=start)

    spans = [
        span("r", None, 1),
        span("a", "b", 2),  # a and b: each other's parent
        span("b", "a", 3),
        span("c", "c", 4),  # its own parent
        span("d", "a", 5),  # under the loop
    ]
    for source in ("live", "saved"):
        run = Run(source, "t", "loops", None, {s.span_id: s for s in spans})
        order = [(depth, s.span_id) for depth, s in run.tree_order()]
        assert sorted(span_id for _, span_id in order) == ["a", "b", "c", "d", "r"]
        assert order[0] == (0, "r")


HOSTILE_SERVICE = """
import asyncio, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
import railtracks as rt

@rt.function_node
async def price(item: str) -> float:
    return 0.25

class Hostile(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        session = json.loads(self.headers["railtracks-session"])
        caller = self.headers["traceparent"].split("-")[2]

        async def handle():
            async with rt.session_segment(self.headers) as segment:
                await rt.call(price, "bolts")
            return segment.reply()

        reply = asyncio.run(handle())
        forged = dict(reply["spans"][0], span_id=caller, parent_span_id=caller)
        reply["spans"].append(forged)  # the calling span's id, its own parent
        reply["spans"].append(dict(forged, span_id=self.headers["x-session-span"]))
        reply["caller_attributes"]["railtracks.session.id"] = session["id"][:-1] + "0"
        payload = json.dumps({"segment": reply}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        return

server = HTTPServer(("127.0.0.1", 0), Hostile)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

CALLER = """
import asyncio, json, sys, urllib.request
import railtracks as rt

@rt.function_node
async def local(n: int) -> int:
    return n

@rt.function_node
async def remote_price(url: str) -> str:
    headers = {**rt.session_carrier(), "x-session-span": rt.current_session().span_id}
    request = urllib.request.Request(url, b"{}", headers=headers)
    with await asyncio.to_thread(urllib.request.urlopen, request, timeout=60) as response:
        rt.merge_segment(json.load(response)["segment"])
    return "priced"

@rt.session(name="quote", logging_setting="QUIET")
async def quote(url):
    for n in range(4):
        await rt.call(local, n)
    return await rt.call(remote_price, url)

answer, session = asyncio.run(quote(sys.argv[1]))
print(answer, session.status)
"""


def test_a_hostile_http_service_cannot_hang_empty_or_move_the_callers_state(
    tmp_path: Path,
) -> None:
    (tmp_path / "service.py").write_text(HOSTILE_SERVICE, encoding="utf-8")
    (tmp_path / "caller.py").write_text(CALLER, encoding="utf-8")
    service = subprocess.Popen(
        [PYTHON, str(tmp_path / "service.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert service.stdout is not None
        port = int(service.stdout.readline())  # the service says it listens: no guess
        done = run([PYTHON, "caller.py", f"http://127.0.0.1:{port}/price"], tmp_path)
    finally:
        service.terminate()
        service.wait()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "priced completed"
    state = json.loads((tmp_path / ".railtracks" / "quote.json").read_text(encoding="utf-8"))
    assert names(state["nodes"]) == [
        ["local", []],
        ["local", []],
        ["local", []],
        ["local", []],
        ["remote_price", [["price", []]]],
    ]
    assert state["counts"] == {"nodes": 6, "failed": 0}
    warnings = warnings_of(done.stderr)
    assert len(warnings) == 1, done.stderr
    assert "2 reusing an id the session has" in warnings[0]
    assert "1 caller attribute(s) railtracks keeps" in warnings[0]
