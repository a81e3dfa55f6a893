"""Standard ``OTEL_*`` values work, bad ones warn once and fall back (SPEC 5).

Each run is a user's script in its own process, configured only through the
environment, exporting over OTLP/HTTP to a local receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from railtracks.testing._receiver import Receiver, otlp_receiver

from .conftest import run_python

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, time
    from opentelemetry import trace
    import railtracks as rt

    @rt.function_node
    async def work(x: int) -> int:
        with trace.get_tracer("app").start_as_current_span("step") as span:
            span.set_attribute("app.note", "n" * 200)
        await asyncio.sleep(float(__import__("os").environ.get("WORK_SECONDS", "0")))
        return x + 1

    @rt.session(name="env", logging_setting="QUIET")
    async def flow():
        return await rt.call(work, 1)

    for _ in range(int(__import__("os").environ.get("REPEAT", "1"))):
        result, session = asyncio.run(flow())
    state = rt.load_state("env")
    with open("result.json", "w") as out:  # stdout may carry the console exporter's JSON
        json.dump({
            "result": result,
            "trace": session.trace_id,
            "nodes": [n["name"] for n in state["nodes"]],
        }, out)
    """
)


@pytest.fixture
def otlp() -> Iterator[Receiver]:
    with otlp_receiver() as receiver:
        yield receiver


def _run(cwd: Path, otlp: Receiver | None = None, **env: str) -> tuple[dict[str, object], str, str]:
    variables = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", **env}
    if otlp is not None:
        variables.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.http_endpoint)
    done = run_python(SCRIPT, cwd, variables)
    assert done.returncode == 0, done.stderr
    report = json.loads((cwd / "result.json").read_text())
    assert report["result"] == 2, "the run is unchanged"
    assert report["nodes"] == ["work"], "the state is complete"
    return report, done.stdout, done.stderr


def _fresh(otlp: Receiver) -> Receiver:
    otlp.reset()
    return otlp


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("RT.Telemetry : WARNING")]


def test_traces_exporter_console_prints_sdk_json_on_stdout(tmp_path: Path) -> None:
    report, stdout, stderr = _run(tmp_path, OTEL_TRACES_EXPORTER="console")
    assert _warnings(stderr) == []
    assert '"name": "session env"' in stdout
    assert '"name": "step"' in stdout
    assert report["trace"] in stdout.replace("0x", "")


def test_traces_exporter_otlp_and_console_do_both(tmp_path: Path, otlp: Receiver) -> None:
    _, stdout, stderr = _run(
        tmp_path, otlp, OTEL_TRACES_EXPORTER="otlp,console", OTEL_METRICS_EXPORTER="none"
    )
    assert _warnings(stderr) == []
    assert '"name": "session env"' in stdout
    assert sorted(span.name for _, span in otlp.spans()) == ["session env", "step", "work"]
    assert otlp.posts("/v1/metrics") == []


def test_traces_exporter_none_sends_no_span(tmp_path: Path, otlp: Receiver) -> None:
    _, _, stderr = _run(tmp_path, otlp, OTEL_TRACES_EXPORTER="none")
    assert _warnings(stderr) == []
    assert otlp.spans() == []
    assert otlp.posts("/v1/metrics"), "metrics still go (OTEL_METRICS_EXPORTER unset)"


def test_sdk_disabled_one_is_false_with_one_warning(tmp_path: Path, otlp: Receiver) -> None:
    _, _, stderr = _run(tmp_path, otlp, OTEL_SDK_DISABLED="1")
    (warning,) = _warnings(stderr)
    assert "OTEL_SDK_DISABLED" in warning
    assert len(otlp.spans()) == 3, "'1' is not true: export stays on"


def test_sdk_disabled_true_in_any_case_turns_export_off(tmp_path: Path, otlp: Receiver) -> None:
    _, _, stderr = _run(tmp_path, otlp, OTEL_SDK_DISABLED="TRUE")
    assert _warnings(stderr) == []
    assert otlp.received() == []


def test_metric_export_interval_is_honoured(tmp_path: Path, otlp: Receiver) -> None:
    _run(tmp_path, otlp, OTEL_METRIC_EXPORT_INTERVAL="200", WORK_SECONDS="0.25", REPEAT="6")
    # 1.5 s of sessions with a 200 ms interval: several exports before the one at exit
    assert len(otlp.posts("/v1/metrics")) >= 4
    _run(tmp_path, otlp := _fresh(otlp), WORK_SECONDS="0.25", REPEAT="6")
    assert len(otlp.posts("/v1/metrics")) == 1, "the default (60 s): only the export at exit"


def test_headers_compression_and_timeout_reach_the_exporter(tmp_path: Path, otlp: Receiver) -> None:
    _, _, stderr = _run(
        tmp_path,
        otlp,
        OTEL_EXPORTER_OTLP_HEADERS="x-tenant=acme%20corp,Authorization=Bearer%20t0k",
        OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
        OTEL_EXPORTER_OTLP_TIMEOUT="2500",
    )
    assert _warnings(stderr) == []
    (post,) = otlp.posts("/v1/traces")
    assert post.headers["x-tenant"] == "acme corp"
    assert post.headers["authorization"] == "Bearer t0k"
    assert post.headers["content-encoding"] == "gzip"
    assert len(post.spans()) == 3


def test_attribute_value_length_limit_applies_to_every_span(tmp_path: Path, otlp: Receiver) -> None:
    _run(tmp_path, otlp, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="64")
    spans = {span.name: span for _, span in otlp.spans()}
    (note,) = [a.value.string_value for a in spans["step"].attributes if a.key == "app.note"]
    assert note == "n" * 64
    session_id = [a for a in spans["work"].attributes if a.key == "railtracks.session.id"]
    assert len(session_id[0].value.string_value) == 36, "identity survives the limit"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_SDK_DISABLED", "yes"),
        ("OTEL_TRACES_EXPORTER", "otlp,carrier-pigeon"),
        ("OTEL_METRICS_EXPORTER", "graphite"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "often"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "-1"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "many"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "-3"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1.5"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "x"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"),
    ],
)
def test_a_bad_value_warns_once_naming_the_variable_and_the_default_applies(
    tmp_path: Path, otlp: Receiver, variable: str, value: str
) -> None:
    env = {variable: value}
    if variable == "OTEL_TRACES_SAMPLER_ARG":
        env["OTEL_TRACES_SAMPLER"] = "traceidratio"
    _, _, stderr = _run(tmp_path, otlp, **env)
    assert "Traceback" not in stderr
    assert len([w for w in _warnings(stderr) if variable in w]) == 1, stderr
    if variable != "OTEL_EXPORTER_OTLP_PROTOCOL":  # its default, grpc, is not this receiver's
        assert len(_warnings(stderr)) == 1, stderr
        assert len(otlp.spans()) == 3, "the default applies: every span is exported"
