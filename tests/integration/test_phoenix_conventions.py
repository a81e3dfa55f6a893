"""What Arize Phoenix shows of railtracks' spans: span kinds and input/output panes (SPEC 3).

Phoenix reads OpenInference conventions: ``openinference.span.kind`` becomes
the span's kind (CHAIN for a session, TOOL for a node; UNKNOWN without it), and
``input.value``/``output.value`` with their mime types fill the input and
output panes. Read back through Phoenix's own GraphQL API (what its UI uses).
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from ..conftest import run_python
from .conftest import PhoenixServer

pytestmark = pytest.mark.integration

RUN = textwrap.dedent(
    """
    import asyncio, json
    from opentelemetry import trace
    import railtracks as rt

    @rt.function_node
    async def lookup(sku: str) -> dict:
        with trace.get_tracer("app").start_as_current_span("db query"):
            return {"sku": sku, "stock": 3}

    @rt.session(name="conventions", logging_setting="NONE")
    async def flow():
        return await rt.call(lookup, "ab-1")

    result, session = asyncio.run(flow())
    print(json.dumps({"trace": session.trace_id}))
    """
)

QUERY = """
query($id: ID!, $traceId: ID!) { node(id: $id) { ... on Project {
  trace(traceId: $traceId) { spans(first: 100) { edges { node {
    name spanKind
    input { value mimeType }
    output { value mimeType }
    attributes
  } } } }
} } }
"""


def test_phoenix_shows_span_kinds_and_input_output(phoenix: PhoenixServer, tmp_path: Path) -> None:
    project = f"conventions-{uuid.uuid4().hex[:6]}"
    env = {**phoenix.otel_env(project, "http/protobuf"), "OTEL_METRICS_EXPORTER": "none"}
    done = run_python(RUN, tmp_path, env, timeout=300)
    assert done.returncode == 0, done.stderr
    trace_id = json.loads(done.stdout)["trace"]
    assert phoenix.wait_for_count(project, trace_id, min_count=3) == 3
    project_id = phoenix._project_id(project)
    assert project_id is not None
    data = phoenix._graphql(QUERY, {"id": project_id, "traceId": trace_id})
    spans = {edge["node"]["name"]: edge["node"] for edge in data["node"]["trace"]["spans"]["edges"]}
    assert set(spans) == {"session conventions", "lookup", "db query"}
    session, node, foreign = spans["session conventions"], spans["lookup"], spans["db query"]
    assert session["spanKind"] == "chain"
    assert node["spanKind"] == "tool"
    assert foreign["spanKind"] == "unknown"  # other instrumentation keeps its own conventions
    assert node["input"] == {"value": '{"sku":"ab-1"}', "mimeType": "json"}
    assert node["output"] == {"value": '{"sku":"ab-1","stock":3}', "mimeType": "json"}
    assert session["output"] == {"value": '{"sku":"ab-1","stock":3}', "mimeType": "json"}
    attributes = json.loads(node["attributes"])
    assert attributes["gen_ai"]["tool"] == {"name": "lookup", "type": "function"}
    assert attributes["gen_ai"]["operation"] == {"name": "execute_tool"}
    session_attributes = json.loads(session["attributes"])
    assert session_attributes["gen_ai"]["workflow"] == {"name": "conventions"}
    assert session_attributes["gen_ai"]["operation"] == {"name": "invoke_workflow"}
