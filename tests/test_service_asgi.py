"""railtracks inside a real ASGI service (SPEC 2 nesting, 5 host providers, 6 services).

A FastAPI app instrumented by ``FastAPIInstrumentor``, its own SDK provider
set globally, served by uvicorn on 127.0.0.1, one session of 5 nodes per
request, 200 requests at 20 concurrent (tests/hosts/asgi_service.py, in its
own process: the global provider can be set only once per process).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from .conftest import PYTHON, run

SERVICE = Path(__file__).parent / "hosts" / "asgi_service.py"
REQUESTS, CONCURRENCY = 200, 20


def test_each_request_has_its_own_session_under_its_server_span(tmp_path: Path) -> None:
    done = run([PYTHON, str(SERVICE), str(REQUESTS), str(CONCURRENCY)], tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    responses: list[dict[str, Any]] = report["responses"]
    assert len(responses) == REQUESTS
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in report["spans"]:
        by_trace[span["trace_id"]].append(span)
    assert len({r["trace_id"] for r in responses}) == REQUESTS, "a trace per request"

    for response in responses:
        request = response["request"]
        assert response["outputs"] == [f"{request}:{index}" for index in range(5)]
        spans = by_trace[response["trace_id"]]
        servers = [s for s in spans if s["kind"] == "SERVER"]
        assert len(servers) == 1
        server = servers[0]
        assert server["target"] == f"/work/{request}"
        sessions = [s for s in spans if s["name"].startswith("session ")]
        assert [s["name"] for s in sessions] == [f"session req-{request}"]
        session = sessions[0]
        assert session["span_id"] == response["session_span_id"]
        assert session["parent_id"] == server["span_id"], "the session is a child of its request"
        nodes = [s for s in spans if s["name"] == "step"]
        assert len(nodes) == 5
        assert {s["parent_id"] for s in nodes} == {session["span_id"]}
        # railtracks' spans in this trace are this request's session's, and only these
        assert {s["session_name"] for s in spans} == {None, f"req-{request}"}

        state = json.loads((tmp_path / ".railtracks" / f"req-{request}.json").read_text())
        assert response["state_path"] == f".railtracks/req-{request}.json"
        assert state["session"]["identifier"] == response["session_id"]
        assert state["session"]["trace_id"] == response["trace_id"]
        assert [(n["name"], n["input"], n["output"], n["children"]) for n in state["nodes"]] == [
            ("step", {"request_id": request, "index": index}, f"{request}:{index}", [])
            for index in range(5)
        ]

    # every railtracks span in the trace of the request that made it
    trace_of = {f"req-{r['request']}": r["trace_id"] for r in responses}
    for span in report["spans"]:
        if span["session_name"] is not None:
            assert span["trace_id"] == trace_of[span["session_name"]], span

    # each railtracks record (console lines and log records) printed once
    lines = Counter(report["console"].splitlines())
    for response in responses:
        request = response["request"]
        started = f"session req-{request} started trace={response['trace_id']}"
        assert lines[started] == 1, started
        warning = (
            f"RT.Session : WARNING - File .railtracks/req-{request}.json already exists, "
            "overwriting..."
        )
        assert lines[warning] == 1, warning
        for index in range(5):
            ended = f'-> "{request}:{index}"'
            assert [n for line, n in lines.items() if line.endswith(ended)] == [1], ended
        completed = f"session req-{request} completed"
        assert [n for line, n in lines.items() if line.startswith(completed)] == [1], completed
    assert "overwriting" not in done.stderr, "records go to the console stream, not also stderr"
