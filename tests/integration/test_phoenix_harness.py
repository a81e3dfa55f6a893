"""Self-test of the Phoenix harness in conftest.py, with a plain OpenTelemetry SDK.

A subprocess configured only by ``phoenix.otel_env()`` exports a parent span and
a child span (attributes, an event, an error status) over each OTLP protocol;
the spans are then read back through ``phoenix.spans()``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from .conftest import NOT_INSTALLED, OtlpProtocol, PhoenixServer, Span

# Runs in the subprocess. Everything about where spans go comes from the
# environment: the exporter class follows OTEL_EXPORTER_OTLP_PROTOCOL (as the
# SDK's own auto-configuration does), is built with no arguments, and the
# resource is the SDK default, which reads OTEL_RESOURCE_ATTRIBUTES.
EMITTER = textwrap.dedent(
    """
    import json
    import os

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    if os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("railtracks.tests.phoenix_harness")
    with tracer.start_as_current_span("harness.parent") as parent:
        with tracer.start_as_current_span("harness.child") as child:
            child.set_attribute("harness.answer", 42)
            child.set_attribute("harness.label", "forty-two")
            child.set_attribute("harness.ratio", 0.5)
            child.set_attribute("harness.flag", True)
            child.add_event("harness.checkpoint", {"step": 1, "note": "halfway"})
            child.set_status(Status(StatusCode.ERROR, "child failed on purpose"))
    if not provider.force_flush(timeout_millis=30_000):
        raise SystemExit("spans were not flushed")
    provider.shutdown()
    print(json.dumps({
        "trace_id": format(parent.get_span_context().trace_id, "032x"),
        "parent_span_id": format(parent.get_span_context().span_id, "016x"),
        "child_span_id": format(child.get_span_context().span_id, "016x"),
    }))
    """
)


def _emit(phoenix: PhoenixServer, project: str, protocol: OtlpProtocol) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("OTEL_")
    } | phoenix.otel_env(project, protocol)
    result = subprocess.run(
        [sys.executable, "-c", EMITTER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"emitter failed:\n{result.stdout}\n{result.stderr}"
    # The exporter logs to stderr when an export fails, even if the process exits 0.
    assert "Failed to export" not in result.stderr, result.stderr
    ids: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return ids


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, f"{value!r} has no timezone"
    return moment


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_round_trip(phoenix: PhoenixServer, protocol: OtlpProtocol) -> None:
    project = f"harness-{protocol.replace('/', '-')}-{uuid.uuid4().hex[:8]}"
    ids = _emit(phoenix, project, protocol)

    spans = phoenix.spans(project, trace_id=ids["trace_id"], min_count=2)

    assert len(spans) == 2, spans
    by_name: dict[str, Span] = {span["name"]: span for span in spans}
    parent, child = by_name["harness.parent"], by_name["harness.child"]
    assert {span["context"]["trace_id"] for span in spans} == {ids["trace_id"]}
    assert parent["context"]["span_id"] == ids["parent_span_id"]
    assert parent["parent_id"] is None
    assert child["context"]["span_id"] == ids["child_span_id"]
    assert child["parent_id"] == ids["parent_span_id"]

    assert child["attributes"] == {
        "harness.answer": 42,
        "harness.label": "forty-two",
        "harness.ratio": 0.5,
        "harness.flag": True,
    }
    assert parent["attributes"] == {}
    [event] = child["events"]
    assert event["name"] == "harness.checkpoint"
    assert event["attributes"] == {"step": 1, "note": "halfway"}

    assert child["status_code"] == "ERROR"
    assert child["status_message"] == "child failed on purpose"
    assert parent["status_code"] == "UNSET"
    assert parent["status_message"] == ""

    assert _time(parent["start_time"]) <= _time(child["start_time"])
    assert _time(child["start_time"]) <= _time(event["timestamp"]) <= _time(child["end_time"])
    assert _time(child["end_time"]) <= _time(parent["end_time"])

    assert phoenix.span_count(project, ids["trace_id"]) == 2
    assert phoenix.span_count(project) == 2


@pytest.mark.integration
def test_unknown_project_and_trace_read_as_empty(phoenix: PhoenixServer) -> None:
    missing = f"harness-missing-{uuid.uuid4().hex[:8]}"
    assert phoenix.span_count(missing) == 0
    assert phoenix.spans(missing, stall=0) == []

    project = f"harness-known-{uuid.uuid4().hex[:8]}"
    ids = _emit(phoenix, project, "http/protobuf")
    assert len(phoenix.spans(project, ids["trace_id"], min_count=2)) == 2
    assert len(phoenix.spans(project, min_count=2)) == 2
    assert phoenix.spans(project, trace_id="0" * 31 + "1", stall=0) == []


def test_otel_env_shapes(tmp_path: Path) -> None:
    server = PhoenixServer(
        http_port=16006, grpc_port=14317, working_dir=tmp_path, log_path=tmp_path / "log"
    )
    assert server.http_traces_endpoint == "http://127.0.0.1:16006/v1/traces"
    assert server.otel_env("p1", "grpc") == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:14317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_RESOURCE_ATTRIBUTES": "openinference.project.name=p1",
    }
    assert server.otel_env("p1", "http/protobuf")["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        "http://127.0.0.1:16006"
    )
    with pytest.raises(ValueError, match="project name"):
        server.otel_env("a,b=c", "grpc")


@pytest.mark.parametrize(
    ("ci", "outcome", "exit_code"), [("true", "1 error", 1), ("", "1 skipped", 0)]
)
def test_missing_phoenix_skips_locally_and_fails_in_ci(
    tmp_path: Path, ci: str, outcome: str, exit_code: int
) -> None:
    """Without the venv the fixture skips, but under CI=true it fails (an error at setup)."""
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_uses_phoenix.py").write_text(
        "def test_it(phoenix):\n    raise AssertionError('must not run')\n"
    )
    env = os.environ | {"CI": ci, "RAILTRACKS_PHOENIX_VENV": str(tmp_path / "no-venv")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert NOT_INSTALLED in result.stdout, result.stdout


def test_a_server_killed_from_outside_is_named_in_its_errors(tmp_path: Path) -> None:
    # The OOM killer's SIGKILL leaves nothing in Phoenix's log: the harness says it.
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    log = tmp_path / "phoenix.log"
    log.write_text("INFO: last line before the kill\n")
    server = PhoenixServer(
        http_port=1, grpc_port=2, working_dir=tmp_path, log_path=log, process=process
    )
    assert server.ended() is None
    process.kill()
    process.wait()
    assert server.ended() == "Phoenix is no longer running: killed by SIGKILL"
    assert server.log_tail().splitlines() == [
        "INFO: last line before the kill",
        "Phoenix is no longer running: killed by SIGKILL",
    ]
