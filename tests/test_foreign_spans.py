"""Other instrumentation inside nodes is part of the session (SPEC 3, 6).

With zero configuration, the spans of instrumented HTTP clients and of manual
``start_as_current_span`` calls made inside a node land in the session's trace
under that node: in the export, in the saved state (marked foreign, under their
true parent), on the VERBOSE console and in ``railtracks export``. A railtracks
node called inside such a span nests under it everywhere.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from railtracks.testing._receiver import Receiver, otlp_receiver

from .conftest import PYTHON, RAILTRACKS, run, run_python

ZERO_CONFIG_HTTP = textwrap.dedent(
    """
    import asyncio, json, sys, threading, urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx, requests
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import railtracks as rt
    from railtracks.testing import span_tree

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    URL = f"http://127.0.0.1:{server.server_address[1]}/"

    # Nothing configured: no provider set by the application, as a new user would.
    URLLibInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    exported = InMemorySpanExporter()
    rt.configure(span_exporters=[exported], console_stream=sys.stdout)

    @rt.function_node
    async def fetch_async() -> int:
        async with httpx.AsyncClient() as client:
            first = (await client.get(URL)).status_code
        with urllib.request.urlopen(URL) as response:
            second = response.status
        return first + second + requests.get(URL).status_code

    @rt.function_node
    def fetch_sync() -> int:
        with urllib.request.urlopen(URL) as response:
            first = response.status
        with httpx.Client() as client:
            second = client.get(URL).status_code
        return first + second + requests.get(URL).status_code

    @rt.session(name="http", logging_setting="VERBOSE")
    async def flow():
        return [await rt.call(fetch_async), await rt.call(fetch_sync)]

    result, session = asyncio.run(flow())
    assert rt.flush(10)
    trace_id = int(session.trace_id, 16)
    spans = [s for s in exported.get_finished_spans() if s.context.trace_id == trace_id]

    def walk(nodes):
        return [
            {"name": n["name"], "foreign": n.get("foreign", False),
             "scope": (n.get("scope") or {}).get("name"), "status": n["status"],
             "children": walk(n["children"])}
            for n in nodes
        ]

    print("RESULT " + json.dumps({
        "result": result,
        "export": span_tree(spans, show_status=False),
        "scopes": sorted({s.instrumentation_scope.name for s in spans}),
        "state": walk(rt.load_state("http")["nodes"]),
    }))
    """
)

SCOPES = {
    "urllib": "opentelemetry.instrumentation.urllib",
    "httpx": "opentelemetry.instrumentation.httpx",
    "requests": "opentelemetry.instrumentation.requests",
}


def _result(stdout: str) -> dict[str, Any]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    parsed: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return parsed


def test_instrumented_http_calls_in_async_and_sync_nodes_land_under_the_node(
    tmp_path: Path,
) -> None:
    done = run_python(ZERO_CONFIG_HTTP, tmp_path)
    assert done.returncode == 0, done.stderr
    report = _result(done.stdout)
    assert report["result"] == [600, 600]
    assert set(SCOPES.values()) <= set(report["scopes"])
    # the export: three HTTP client spans under each node, nothing elsewhere
    lines = report["export"].splitlines()
    assert lines[0] == "session http"
    assert lines[1] == "  fetch_async"
    assert all(line.startswith("    ") and line.strip() for line in lines[2:5])
    assert lines[5] == "  fetch_sync"
    assert all(line.startswith("    ") and line.strip() for line in lines[6:9])
    assert len(lines) == 9
    # the saved state: the same, each HTTP span marked foreign with its scope
    state = report["state"]
    assert [node["name"] for node in state] == ["fetch_async", "fetch_sync"]
    for node in state:
        assert node["foreign"] is False
        children = node["children"]
        assert sorted(child["scope"] for child in children) == sorted(SCOPES.values())
        assert all(child["foreign"] and child["status"] == "completed" for child in children)
        assert all(child["children"] == [] for child in children)
    # the console at VERBOSE shows them, indented under their node
    assert done.stdout.count(" started (foreign)") == 6


MANUAL_SPAN = textwrap.dedent(
    """
    import asyncio, json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import railtracks as rt
    from railtracks.testing import span_tree

    tracer = trace.get_tracer("app.manual")
    exported = InMemorySpanExporter()
    rt.configure(span_exporters=[exported])

    @rt.function_node
    async def leaf(x: int) -> int:
        return x + 1

    @rt.function_node
    async def outer(x: int) -> int:
        with tracer.start_as_current_span("inner") as span:
            span.set_attribute("app.step", "between")
            return await rt.call(leaf, x)

    @rt.session(name="manual", logging_setting=sys.argv[1])
    async def flow():
        return await rt.call(outer, 1)

    result, session = asyncio.run(flow())
    assert rt.flush(10)
    print("RESULT " + json.dumps({
        "result": result,
        "export": span_tree(exported.get_finished_spans(), show_status=False),
    }))
    """
)


def _manual(tmp_path: Path, setting: str) -> tuple[dict[str, Any], str]:
    done = run(
        [PYTHON, "-c", MANUAL_SPAN, setting],
        tmp_path,
        {"NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    return _result(done.stdout), done.stderr


def test_a_manual_span_between_two_nodes_keeps_the_tree_everywhere(tmp_path: Path) -> None:
    report, console = _manual(tmp_path, "REGULAR")
    assert report["result"] == 2
    assert report["export"] == "session manual\n  outer\n    inner\n      leaf"
    state = json.loads((tmp_path / ".railtracks" / "manual.json").read_text())
    (outer,) = state["nodes"]
    (inner,) = outer["children"]
    (leaf,) = inner["children"]
    assert (outer["name"], inner["name"], leaf["name"]) == ("outer", "inner", "leaf")
    assert inner["foreign"] is True
    assert inner["scope"]["name"] == "app.manual"
    assert inner["attributes"] == {"app.step": "between"}
    assert inner["parent_span_id"] == outer["span_id"]
    assert leaf["parent_span_id"] == inner["span_id"]
    assert "foreign" not in leaf
    assert leaf["output"] == 2
    # REGULAR: the foreign span is not printed, the node under it is indented under it
    lines = [line for line in console.splitlines() if "completed" in line]
    assert lines[0].startswith("      leaf completed")
    assert lines[1].startswith("  outer completed")
    # VERBOSE prints it too
    _, verbose = _manual(tmp_path, "VERBOSE")
    assert "    inner started (foreign)" in verbose.splitlines()
    assert any(line.startswith("    inner completed") for line in verbose.splitlines())


@pytest.fixture
def otlp() -> Iterator[Receiver]:
    with otlp_receiver() as receiver:
        yield receiver


def test_railtracks_export_ships_the_foreign_span_with_its_parentage(
    tmp_path: Path, otlp: Receiver
) -> None:
    _manual(tmp_path, "NONE")
    state = json.loads((tmp_path / ".railtracks" / "manual.json").read_text())
    shipped = run(
        [
            RAILTRACKS,
            "export",
            "manual",
            "--endpoint",
            otlp.http_endpoint,
            "--protocol",
            "http/protobuf",
        ],
        tmp_path,
        {"OTEL_METRICS_EXPORTER": "none"},
    )
    assert shipped.returncode == 0, shipped.stderr
    spans = {span.name: (scope, span) for scope, span in otlp.spans()}
    assert set(spans) == {"session manual", "outer", "inner", "leaf"}
    (outer,) = state["nodes"]
    (inner,) = outer["children"]
    scope, span = spans["inner"]
    assert scope == "app.manual"
    assert span.span_id.hex() == inner["span_id"]
    assert span.parent_span_id.hex() == outer["span_id"]
    assert {a.key: a.value.string_value for a in span.attributes} == {"app.step": "between"}
    assert spans["leaf"][1].parent_span_id.hex() == inner["span_id"]
    assert spans["leaf"][0] == "railtracks"
