"""``railtracks export``: a run recorded offline, shipped later, arrives as it happened (SPEC 7)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from ..conftest import RAILTRACKS, run
from .conftest import OtlpProtocol, PhoenixServer

pytestmark = pytest.mark.integration


def _railtracks(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([RAILTRACKS, *args], cwd, env, timeout=180)


def _same_instant(phoenix_time: str, unix_nano: int) -> bool:
    """Phoenix keeps microseconds (rounded): equal to the nanosecond original within 1 us."""
    stored = dt.datetime.fromisoformat(phoenix_time)
    original = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=unix_nano / 1000)
    return abs(stored - original) <= dt.timedelta(microseconds=1)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_export_recreates_the_saved_spans_in_phoenix(
    phoenix: PhoenixServer, tmp_path: Path, protocol: OtlpProtocol
) -> None:
    project = f"offline-{protocol.replace('/', '-')}-{uuid.uuid4().hex[:6]}"
    offline = {"OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}"}
    demo = _railtracks("demo", cwd=tmp_path, env=offline)  # no endpoint: nothing is sent
    assert demo.returncode == 0, demo.stderr
    state = json.loads((tmp_path / ".railtracks" / "railtracks-demo.json").read_text())
    trace_id = state["session"]["trace_id"]
    assert phoenix.span_count(project, trace_id) == 0

    endpoint = phoenix.grpc_endpoint if protocol == "grpc" else phoenix.http_base
    shipped = _railtracks(
        "export", "railtracks-demo", "--endpoint", endpoint, "--protocol", protocol,
        cwd=tmp_path, env={"OTEL_METRICS_EXPORTER": "none"},
    )  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.startswith(f"exported 23 spans of trace {trace_id} to ")

    spans = {s["context"]["span_id"]: s for s in phoenix.spans(project, trace_id, min_count=23)}
    records = [("session", state["session"])]
    stack = list(state["nodes"])
    while stack:
        node = stack.pop()
        records.append(("node", node))
        stack.extend(node["children"])
    assert spans.keys() == {record["span_id"] for _, record in records}
    for kind, record in records:
        span = spans[record["span_id"]]
        assert span["context"]["trace_id"] == trace_id
        assert span["parent_id"] == record["parent_span_id"]
        assert span["name"] == (record["span_name"] if kind == "session" else record["name"])
        assert _same_instant(span["start_time"], record["start_time_unix_nano"])
        assert _same_instant(span["end_time"], record["end_time_unix_nano"])
        assert span["status_code"] == record["status_code"]
        assert span["attributes"]["railtracks.status"] == record["status"]
        for key, value in record["attributes"].items():
            if key == "openinference.span.kind":  # Phoenix lifts it into the span's kind
                assert span["span_kind"] == value
            elif key.startswith(("input.", "output.")):
                continue  # Phoenix's input/output panes: see test_phoenix_conventions.py
            else:
                assert span["attributes"][key] == value, key
        for key, value in record["context"].items():
            assert span["attributes"][f"railtracks.context.{key}"] == value
        if kind == "node" and record["output"] is not None:
            assert json.loads(span["attributes"]["railtracks.node.output"]) == record["output"]
        if record["error"]:
            assert span["status_message"] == record["error"]["message"]
        saved_events = sorted(
            record["events"] + record["context_changes"], key=lambda e: e["time_unix_nano"]
        )
        assert [e["name"] for e in span["events"]] == [e["name"] for e in saved_events]
        for sent, saved in zip(span["events"], saved_events, strict=True):
            assert _same_instant(sent["timestamp"], saved["time_unix_nano"])
    failed = [r for _, r in records if r["status"] == "failed"]
    assert [r["name"] for r in failed] == ["reserve"]
