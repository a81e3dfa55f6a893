"""The viewer's server without a browser: its API, the OTLP receiver, hostile input, bounds."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from railtracks.view._html import render
from railtracks.view._live import LiveRuns
from railtracks.view._saved import read_run
from railtracks.view._server import MAX_BODY, ViewerServer

from .states import XSS, big_state

TRACE = "5b8efff798038103d269b633813fc60c"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ViewerServer]:
    states = tmp_path / "states"
    states.mkdir()
    instance = ViewerServer("127.0.0.1", 0, states)
    instance.start_in_thread()
    try:
        yield instance
    finally:
        instance.shutdown()
        instance.server_close()


def request(
    server: ViewerServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def otlp_json(spans: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": spans}]}]}
    ).encode()


def kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"key": key, "value": {"stringValue": value}}
    return {"key": key, "value": {"intValue": str(value)}}


SESSION_SPAN = {
    "traceId": TRACE,
    "spanId": "eee19b7ec3c1b174",
    "name": "session live-json",
    "kind": 1,
    "startTimeUnixNano": "1544712660000000000",
    "endTimeUnixNano": "1544712661000000000",
    "attributes": [
        kv("railtracks.session.id", "0b3a6e3c-1e7a-4b53-9a57-2b0c36c4d1a2"),
        kv("railtracks.session.name", "live-json"),
        kv("railtracks.status", "completed"),
        kv("railtracks.context.api_key", "sk-plain-secret"),
        kv("railtracks.context.user", "ann"),
    ],
    "status": {},
}
NODE_SPAN = {
    "traceId": TRACE,
    "spanId": "00f067aa0ba902b7",
    "parentSpanId": "eee19b7ec3c1b174",
    "name": "fetch",
    "kind": "SPAN_KIND_INTERNAL",
    "startTimeUnixNano": "1544712660100000000",
    "endTimeUnixNano": "1544712660300000000",
    "attributes": [
        kv("railtracks.node.name", "fetch"),
        kv("railtracks.node.input", json.dumps({"url": "x", "token": "t-123", "n": [1]})),
        kv("railtracks.node.output", json.dumps({"html": XSS})),
        kv("railtracks.status", "failed"),
        kv("error.type", "ValueError"),
        kv("http.request.header.authorization", "Bearer abc"),
        kv("retries", 3),
        kv("db.url", "postgres://app:hunter2-pw@db:5432/app"),
    ],
    "events": [
        {
            "name": "exception",
            "timeUnixNano": "1544712660200000000",
            "attributes": [kv("exception.type", "ValueError"), kv("exception.message", "no")],
        }
    ],
    "status": {"code": 2, "message": "ValueError: no"},
}


def test_otlp_json_is_received_grouped_and_redacted(server: ViewerServer) -> None:
    status, _, body = request(
        server,
        "POST",
        "/v1/traces",
        otlp_json([NODE_SPAN, SESSION_SPAN]),
        {"Content-Type": "application/json", "Host": f"127.0.0.1:{server.port}"},
    )
    assert status == 200, body
    assert json.loads(body) == {}
    local = {"Host": f"localhost:{server.port}"}
    status, _, body = request(server, "GET", "/api/runs", headers=local)
    runs = json.loads(body)["runs"]
    assert [(r["source"], r["key"], r["name"], r["status"], r["nodes"]) for r in runs] == [
        ("live", TRACE, "live-json", "completed", 1)
    ]
    outline = json.loads(request(server, "GET", f"/api/runs/live/{TRACE}")[2])
    assert [row[:5] for row in outline["rows"]] == [
        ["eee19b7ec3c1b174", 0, "session live-json", "completed", "session"],
        ["00f067aa0ba902b7", 1, "fetch", "failed", "node"],
    ]
    assert outline["rows"][1][5:7] == [100_000.0, 300_000.0]  # microseconds from the run's start
    spans = f"/api/runs/live/{TRACE}/spans"
    session = json.loads(request(server, "GET", f"{spans}/eee19b7ec3c1b174")[2])
    assert session["context"] == {"api_key": "[REDACTED]", "user": "ann"}
    node = json.loads(request(server, "GET", f"{spans}/00f067aa0ba902b7")[2])
    assert node["input"] == {"url": "x", "token": "[REDACTED]", "n": [1]}
    assert node["output"] == {"html": XSS}
    assert node["error"] == {"type": "ValueError", "message": "ValueError: no"}
    assert node["attributes"]["http.request.header.authorization"] == "[REDACTED]"
    assert node["attributes"]["retries"] == 3
    assert node["attributes"]["db.url"] == "postgres://app:[REDACTED]@db:5432/app"
    exception = {"exception.type": "ValueError", "exception.message": "no"}
    assert node["events"][0]["attributes"] == exception
    assert "sk-plain-secret" not in json.dumps(server.runs())


def test_other_instrumentation_is_shown_as_foreign(server: ViewerServer) -> None:
    http_call = {
        "traceId": TRACE,
        "spanId": "1111111111111111",
        "parentSpanId": "00f067aa0ba902b7",
        "name": "GET /inventory",
        "kind": 3,
        "startTimeUnixNano": "1544712660150000000",
        "endTimeUnixNano": "1544712660250000000",
        "attributes": [kv("http.request.method", "GET"), kv("http.response.status_code", 200)],
    }
    post = {"Content-Type": "application/json", "Host": f"127.0.0.1:{server.port}"}
    body = otlp_json([http_call, NODE_SPAN, SESSION_SPAN])
    assert request(server, "POST", "/v1/traces", body, post)[0] == 200
    outline = json.loads(request(server, "GET", f"/api/runs/live/{TRACE}", headers=post)[2])
    assert [row[1:5] for row in outline["rows"]] == [
        [0, "session live-json", "completed", "session"],
        [1, "fetch", "failed", "node"],
        [2, "GET /inventory", "completed", "foreign"],
    ]
    spans = f"/api/runs/live/{TRACE}/spans"
    detail = json.loads(request(server, "GET", f"{spans}/1111111111111111", headers=post)[2])
    assert detail["kind"] == "CLIENT"
    assert detail["extra"] == {"resource": {}, "scope": None}
    assert detail["attributes"] == {"http.request.method": "GET", "http.response.status_code": 200}


def test_otlp_gzip_and_rejections(server: ViewerServer) -> None:
    host = {"Host": f"127.0.0.1:{server.port}"}
    bad_ids = {**NODE_SPAN, "spanId": "xyz", "traceId": TRACE}
    status, _, body = request(
        server,
        "POST",
        "/v1/traces",
        gzip.compress(otlp_json([bad_ids, SESSION_SPAN])),
        {**host, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200
    assert json.loads(body) == {"partialSuccess": {"rejectedSpans": "1"}}
    post = {**host, "Content-Type": "application/json"}
    assert request(server, "POST", "/v1/traces", b"{not json", post)[0] == 400
    assert request(server, "POST", "/v1/traces", b"[]", post)[0] == 400
    protobuf = {**host, "Content-Type": "application/x-protobuf"}
    assert request(server, "POST", "/v1/traces", b"\xff\xff\xff", protobuf)[0] == 400
    text = {**host, "Content-Type": "text/plain"}  # what a cross-origin form could send
    assert request(server, "POST", "/v1/traces", b"{}", text)[0] == 415
    too_big = {**post, "Content-Length": str(MAX_BODY + 1)}
    assert request(server, "POST", "/v1/traces", None, too_big)[0] == 413
    bomb = gzip.compress(b" " * (MAX_BODY + 10))
    status = request(server, "POST", "/v1/traces", bomb, {**post, "Content-Encoding": "gzip"})[0]
    assert status == 413
    assert request(server, "POST", "/v1/logs", b"{}", post)[0] == 404


def test_foreign_hosts_and_paths_are_refused(server: ViewerServer, tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}")
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host
    assert request(server, "GET", "/api/runs", headers={"Host": "evil.example"})[0] == 421
    assert request(server, "GET", "/api/runs", headers={"Host": "evil.example:80"})[0] == 421
    host = {"Host": f"127.0.0.1:{server.port}"}
    # another site may link to the viewer, but never read its API or post spans to it
    cross = {**host, "Sec-Fetch-Site": "cross-site"}
    assert request(server, "GET", "/", headers={**cross, "Sec-Fetch-Mode": "navigate"})[0] == 200
    assert (
        request(server, "GET", "/api/runs", headers={**cross, "Sec-Fetch-Mode": "cors"})[0] == 403
    )
    assert (
        request(server, "GET", "/static/viewer.js", headers={**cross, "Sec-Fetch-Mode": "no-cors"})[
            0
        ]
        == 403
    )
    post = {**cross, "Sec-Fetch-Mode": "no-cors", "Content-Type": "application/json"}
    assert request(server, "POST", "/v1/traces", otlp_json([SESSION_SPAN]), post)[0] == 403
    assert server.live.summaries() == []
    same = {**host, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert request(server, "GET", "/api/runs", headers=same)[0] == 200
    for path in ("/api/runs/saved/..%2Fsecret", "/api/runs/saved/%2E%2E", "/api/runs/x/y", "/etc"):
        assert request(server, "GET", path, headers=host)[0] == 404, path
    status, headers, _ = request(server, "GET", "/", headers=host)
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_hostile_state_files_are_listed_as_unreadable(server: ViewerServer) -> None:
    states = server.saved.directory
    (states / "garbage.json").write_bytes(b"\xff\xfe not json")
    (states / "wrong.json").write_text(json.dumps({"schema_version": 1, "nodes": "no"}))
    (states / "future.json").write_text(json.dumps({"schema_version": 99}))
    odd = {
        "schema_version": 1,
        "session": None,
        "answer": None,
        "unknown_field": True,
        "nodes": [
            {"name": 5, "span_id": "not-hex", "status": "weird", "children": [7, None]},
            {
                "name": "ok",
                "span_id": "00000000000000aa",
                "foreign": True,
                "events": "x",
                "limits": {"events_dropped": 3},  # fields of newer formats are shown as they are
                "sampled": False,
                "api_token": "t-1",
            },
            {"name": "dup", "span_id": "00000000000000aa", "input": {"secret": 1}},
            [],
        ],
    }
    (states / "odd.json").write_text(json.dumps(odd))
    runs = {r["key"]: r for r in server.runs()["runs"]}
    assert {k: runs[k]["status"] for k in ("garbage", "wrong", "future")} == dict.fromkeys(
        ("garbage", "wrong", "future"), "unreadable"
    )
    assert runs["odd"]["nodes"] == 2
    outline = server.saved.get("odd")
    assert outline is not None
    roles = {span.name: span.role for span in outline.spans.values()}
    assert roles == {"5": "node", "ok": "foreign"}
    detail = outline.detail("00000000000000aa")
    assert detail is not None
    assert detail["extra"] == {
        "foreign": True,
        "limits": {"events_dropped": 3},
        "sampled": False,
        "api_token": "[REDACTED]",
    }
    assert detail["events"] == []


def test_live_runs_are_bounded() -> None:
    from railtracks.view._model import Span

    def span(i: int) -> Span:
        return Span(f"{i:016x}", None, f"s{i}", "completed", "node")

    # by run count (least recently updated first) and spans per run (the rest counted)
    store = LiveRuns(max_runs=3, max_spans_per_run=5, max_spans_total=100)
    for trace in range(5):
        store.add((f"{trace + 1:032x}", span(i), None) for i in range(1, 8))
    summaries = store.summaries()
    assert [s["key"] for s in summaries] == [f"{t:032x}" for t in (3, 4, 5)]
    assert all(s["spans"] == 5 and s["dropped"] == 2 for s in summaries)
    assert store.forgotten_runs == 2
    # by spans in all runs
    store = LiveRuns(max_runs=3, max_spans_per_run=5, max_spans_total=12)
    for trace in range(5):
        store.add((f"{trace + 1:032x}", span(i), None) for i in range(1, 8))
    assert [s["key"] for s in store.summaries()] == [f"{t:032x}" for t in (4, 5)]
    # a re-sent span replaces its copy and counts once
    store.add([(f"{5:032x}", span(1), None)])
    assert store.summaries()[-1]["spans"] == 5


def test_html_export_escapes_everything(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    big_state(path, parents=2, children=3)
    document = json.loads(path.read_text())
    document["nodes"][0]["output"] = "</script><script>alert(1)</script>" + XSS
    document["nodes"][0]["name"] = "</title><script>alert(2)</script>"
    path.write_text(json.dumps(document))
    html = render(read_run(path))
    assert html.count("<script") == 2  # the data block and the page's own script
    assert "</script><script>alert" not in html
    assert "\\u003c/script\\u003e" in html
    assert "'unsafe-inline'" not in html
    assert "script-src 'sha256-" in html


def test_the_page_never_turns_strings_into_markup() -> None:
    from railtracks.view._server import static_file

    script = static_file("viewer.js").decode()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
    ):
        assert sink not in script, sink
    page = static_file("index.html").decode()
    assert "<script>" not in page  # no inline script: the CSP forbids it anyway
    assert "http" not in page  # nothing from elsewhere


def test_parsed_runs_kept_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from railtracks.view import _saved

    monkeypatch.setattr(_saved, "_CACHED_SPANS", 10)
    for name in ("a", "b", "c"):
        big_state(tmp_path / f"{name}.json", parents=2, children=2)  # 7 spans each
    saved = _saved.SavedRuns(tmp_path)
    for name in ("a", "b", "c"):
        assert saved.get(name) is not None
    assert list(saved._runs) == ["c"]  # over the span bound: only the latest stays
    assert saved.get("a") is not None  # and a forgotten run is read again when asked for


def test_saved_runs_are_listed_from_the_head_of_their_file(rt_spans: Any, tmp_path: Path) -> None:
    import asyncio
    import contextlib
    import threading

    from opentelemetry import trace

    import railtracks as rt
    from railtracks.view._saved import SavedRuns, summary_from_head

    @rt.function_node
    async def leaf(x: int) -> int:
        with trace.get_tracer("other").start_as_current_span("http GET"):
            pass
        if x == 2:
            raise ValueError("no")
        return x

    @rt.function_node
    async def branch() -> list[int]:
        return [await rt.call(leaf, 1), await rt.call(leaf, 3)]

    @rt.session(name="listed", context={"user": "u"})
    async def flow() -> None:
        await rt.call(branch)
        with contextlib.suppress(ValueError):
            await rt.call(leaf, 2)

    # in a thread of its own: the browser tests' Playwright keeps a loop running in this one
    runner = threading.Thread(target=asyncio.run, args=(flow(),))
    runner.start()
    runner.join()
    assert rt.flush(30)  # read_run reads the file itself: written by then
    path = Path(rt_spans.state_dir) / "listed.json"
    full = read_run(path).summary()
    assert full["nodes"] == 7  # branch, 3 leaves, 3 foreign spans
    assert summary_from_head(path) == full
    # a head that reads fine is enough to list it: the nodes are read when it is opened
    damaged = tmp_path / "damaged.json"
    damaged.write_bytes(path.read_bytes().replace(b'"name":"branch"', b'"name":7', 1))
    listed = {row["key"]: row for row in SavedRuns(tmp_path).summaries()}
    assert (listed["damaged"]["nodes"], listed["damaged"]["status"]) == (7, "completed")


def test_session_details_include_the_final_context(
    server: ViewerServer, rt_spans: Any, tmp_path: Path
) -> None:
    import asyncio
    import shutil
    import threading

    import railtracks as rt

    @rt.session(name="ending", context={"user": "ann"})
    async def flow() -> None:
        rt.context.put("user", "bob")
        rt.context.put("api_key", "sk-live-abc")

    # in a thread of its own: the browser tests' Playwright keeps a loop running in this one
    runner = threading.Thread(target=asyncio.run, args=(flow(),))
    runner.start()
    runner.join()
    assert rt.flush()
    shutil.copy(Path(rt_spans.state_dir) / "ending.json", tmp_path / "states" / "ending.json")
    outline = json.loads(request(server, "GET", "/api/runs/saved/ending")[2])
    (session_id,) = [row[0] for row in outline["rows"] if row[4] == "session"]
    saved = json.loads(request(server, "GET", f"/api/runs/saved/ending/spans/{session_id}")[2])
    assert saved["context"] == {"user": "ann"}
    assert saved["final_context"] == {"user": "bob", "api_key": "[REDACTED]"}
    assert "final_context" not in saved["extra"]
    # live: the same attributes, received over OTLP
    ended = {
        **SESSION_SPAN,
        "attributes": [
            *SESSION_SPAN["attributes"],  # type: ignore[misc]  # a list in this module
            {"key": "railtracks.session.context_changed", "value": {"boolValue": True}},
            kv("railtracks.final_context.user", "bob"),
            kv("railtracks.final_context.token", "t-123"),
        ],
    }
    post = {"Content-Type": "application/json", "Host": f"127.0.0.1:{server.port}"}
    assert request(server, "POST", "/v1/traces", otlp_json([ended]), post)[0] == 200
    spans = f"/api/runs/live/{TRACE}/spans"
    live = json.loads(request(server, "GET", f"{spans}/eee19b7ec3c1b174")[2])
    assert live["context"] == {"api_key": "[REDACTED]", "user": "ann"}
    assert live["final_context"] == {"user": "bob", "token": "[REDACTED]"}
    assert "t-123" not in json.dumps(live)
