"""``railtracks import FILE`` and ``view FILE`` as a user meets them: real files, subprocesses.

The OTLP/JSON files have the shape the OpenTelemetry Collector's file exporter
writes: one ExportTraceServiceRequest per line, lowerCamelCase fields, trace
and span ids as hex, enums as integers, 64-bit integers as strings; the
protobuf files are what the SDK's OTLP exporter sends (``railtracks export``
to a real receiver on 127.0.0.1).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import resource
import signal
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from railtracks.testing._receiver import otlp_receiver

from .conftest import PYTHON, RAILTRACKS, run
from .view.conftest import EXIT_S, Viewer

WORKFLOW = """
import asyncio, sys
import railtracks as rt

@rt.function_node
async def fetch(url: str) -> dict:
    if url == "bad":
        raise ValueError("no such page")
    return {"url": url, "size": len(url), "tags": ["a", "b"]}

@rt.function_node
async def plan(urls: list) -> int:
    total = 0
    for url in urls:
        try:
            total += (await rt.call(fetch, url))["size"]
        except ValueError:
            pass
    return total

@rt.session(name=sys.argv[1], logging_setting="NONE", context={"tier": "gold", "attempt": 2})
async def main():
    return await rt.call(plan, ["home", "bad", "about"])

asyncio.run(main())
"""


def railtracks(cwd: Path, *args: str) -> tuple[int, str, str]:
    done = run([RAILTRACKS, *args], cwd)
    return done.returncode, done.stdout, done.stderr


def _state(cwd: Path, name: str) -> dict[str, Any]:
    return json.loads((cwd / ".railtracks" / f"{name}.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """A real run, and the OTLP/protobuf requests ``railtracks export`` sent for it."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "workflow.py").write_text(WORKFLOW)
    done = run([PYTHON, "workflow.py", "nightly"], source)
    assert done.returncode == 0, done.stderr
    with otlp_receiver() as receiver:
        code, out, err = railtracks(
            source, "export", "nightly", "--endpoint", receiver.endpoint(),
            "--protocol", "http/protobuf",
        )  # fmt: skip
        assert code == 0, err
        assert out.startswith("exported 5 spans")
        bodies = [post.body for post in receiver.posts("/v1/traces")]
    assert bodies
    return source, bodies


def _span_ids(bodies: list[bytes]) -> list[bytes]:
    requests = [ExportTraceServiceRequest.FromString(body) for body in bodies]
    return sorted(
        span.span_id
        for request in requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    )


def collector_line(body: bytes, *, snake: bool = False) -> str:
    """One request as the Collector's file exporter writes it (ids hex, not base64)."""
    request = ExportTraceServiceRequest.FromString(body)
    document = MessageToDict(
        request, use_integers_for_enums=True, preserving_proto_field_name=snake
    )
    keys = (
        ("trace_id", "span_id", "parent_span_id")
        if snake
        else ("traceId", "spanId", "parentSpanId")
    )
    for resource_spans in document["resource_spans" if snake else "resourceSpans"]:
        for scope_spans in resource_spans["scope_spans" if snake else "scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in keys:
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document, separators=(",", ":"))


def test_protobuf_export_round_trips(tmp_path: Path, exported: tuple[Path, list[bytes]]) -> None:
    source, bodies = exported
    target = tmp_path / "target"
    target.mkdir()
    # concatenated requests are one request (protobuf merges repeated fields)
    (target / "trace.pb").write_bytes(b"".join(bodies))
    code, out, err = railtracks(target, "import", "trace.pb")
    assert (code, err) == (0, "")
    trace_id = _state(source, "nightly")["session"]["trace_id"]
    assert out.splitlines() == [
        f"imported trace {trace_id} as nightly: 5 spans",
        "  saved to .railtracks/nightly.json",
    ]
    assert _state(target, "nightly") == _state(source, "nightly")
    # every reader works on it, and it matches its original
    assert railtracks(target, "diff", "nightly", str(source / ".railtracks/nightly.json"))[0] == 0
    code, shown, _ = railtracks(target, "show", "nightly")
    assert code == 0
    assert "fetch  failed" in shown
    assert "nightly" in railtracks(target, "runs")[1]
    with otlp_receiver() as receiver:
        assert railtracks(target, "export", "nightly", "--endpoint", receiver.endpoint(),
                          "--protocol", "http/protobuf")[0] == 0  # fmt: skip
        again = [post.body for post in receiver.posts("/v1/traces")]
    assert _span_ids(again) == _span_ids(bodies)
    # a second import never overwrites: the name gets a number
    code, out, _ = railtracks(target, "import", "trace.pb")
    assert "as nightly-2:" in out


@pytest.mark.parametrize("snake", [False, True])
def test_collector_file_exporter_json(
    tmp_path: Path, exported: tuple[Path, list[bytes]], snake: bool
) -> None:
    source, bodies = exported
    lines = [collector_line(body, snake=snake) for body in bodies]
    assert '"intValue":"' in "".join(lines) or '"int_value":"' in "".join(lines)
    foreign = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeSpans": [{
                "scope": {"name": "my.library", "version": "1.0.0"},
                "spans": [
                    {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B173",
                     "name": "GET /checkout\x1b[31m", "kind": 2,
                     "startTimeUnixNano": "1544712660000000000",
                     "endTimeUnixNano": "1544712661000000000",
                     "attributes": [
                        {"key": "http.status_code", "value": {"intValue": "500"}},
                        {"key": "api_key", "value": {"stringValue": "sk-live-123"}},
                        {"key": "payload", "value": {"kvlistValue": {"values": [
                            {"key": "a", "value": {"intValue": "1"}}]}}},
                     ],
                     "status": {"code": 2, "message": "upstream failed"}},
                    {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
                     "parentSpanId": "EEE19B7EC3C1B173", "name": "SELECT", "kind": 3,
                     "startTimeUnixNano": "1544712660100000000",
                     "endTimeUnixNano": "1544712660200000000",
                     "events": [{"timeUnixNano": "1544712660150000000", "name": "retry"}],
                     "status": {}},
                ],
            }],
        }]
    }  # fmt: skip
    lines.append(json.dumps(foreign))
    target = tmp_path / "target"
    target.mkdir()
    (target / "traces.json").write_text("\n".join(lines) + "\n")
    code, out, err = railtracks(target, "import", "traces.json")
    assert (code, err) == (0, "")
    assert "as nightly: 5 spans" in out
    assert "as GET-checkout-31m: 2 spans" in out
    assert _state(target, "nightly") == _state(source, "nightly")
    imported = _state(target, "GET-checkout-31m")
    session = imported["session"]
    assert session["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert session["identifier"] == "5b8efff7-9803-8103-d269-b633813fc60c"
    assert (session["status"], session["kind"]) == ("failed", "SERVER")
    assert session["scope"] == {"name": "my.library", "version": "1.0.0"}
    assert session["attributes"]["api_key"] == "[REDACTED]"
    assert session["attributes"]["payload"] == '{"a":1}'
    assert session["attributes"]["http.status_code"] == 500
    (node,) = imported["nodes"]
    assert (node["name"], node["foreign"], node["kind"]) == ("SELECT", True, "CLIENT")
    assert node["events"][0]["name"] == "retry"
    code, shown, _ = railtracks(target, "show", "GET-checkout-31m")
    assert code == 0
    assert "\x1b" not in shown
    assert "SELECT" in shown
    # two imported runs of different traces: diff says how they differ
    code, out, _ = railtracks(target, "diff", "nightly", "GET-checkout-31m")
    assert code == 1
    assert "- removed    plan  4 calls" in out
    # and export re-sends its spans with their own ids, the root with railtracks' session keys
    with otlp_receiver() as receiver:
        code, _, err = railtracks(target, "export", "GET-checkout-31m", "--endpoint",
                                  receiver.endpoint(), "--protocol", "http/protobuf")  # fmt: skip
        assert code == 0, err
        sent = receiver.spans()
    assert sorted(span.span_id.hex() for _, span in sent) == [
        "eee19b7ec3c1b173",
        "eee19b7ec3c1b174",
    ]
    assert sorted(scope for scope, _ in sent) == ["my.library", "my.library"]


def test_gzip_and_name(tmp_path: Path, exported: tuple[Path, list[bytes]]) -> None:
    _, bodies = exported
    with gzip.open(tmp_path / "trace.json.gz", "wt") as file:
        file.write(json.dumps(json.loads(collector_line(bodies[0])), indent=2))  # one document
    code, out, err = railtracks(tmp_path, "import", "trace.json.gz", "--name", "from-ci")
    assert (code, err) == (0, "")
    assert "as from-ci: 5 spans" in out
    assert _state(tmp_path, "from-ci")["session"]["name"] == "from-ci"
    code, _, err = railtracks(tmp_path, "import", "trace.json.gz", "--name", "../up")
    assert code == 2
    assert len(err.splitlines()) == 1


def _bomb(path: Path, inflated: int) -> None:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    with path.open("wb") as file:
        for _ in range(inflated >> 20):
            file.write(squeeze.compress(block))
        file.write(squeeze.flush())


def _hostile(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """File name -> (how it is made, what its one line says)."""
    (tmp_path / "truncated.json").write_text('{"resourceSpans":[{"scopeSpans":[{"spans":[{"tra')
    (tmp_path / "deep.json").write_text('{"resourceSpans":' + "[" * 200_000 + "]" * 200_000 + "}")
    (tmp_path / "types.json").write_text(
        '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5,"spanId":[1]},"x",7]}]},3]}'
    )
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "text.txt").write_text("hello\n")
    (tmp_path / "latin1.json").write_bytes(b'{"resourceSpans":[], "x": "\xe9"}')
    (tmp_path / "truncated.pb").write_bytes(b"\x0a\xff\x01\x12\x05")
    with (tmp_path / "huge.json").open("wb") as file:
        file.truncate(600 << 20)  # sparse: large to stat, nothing on disk
    _bomb(tmp_path / "bomb.json.gz", 300 << 20)
    (tmp_path / "cut.json.gz").write_bytes(gzip.compress(b'{"resourceSpans":[]}' * 100)[:40])
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    return {
        "truncated.json": "not OTLP/JSON",
        "deep.json": "nested too deeply",
        "types.json": "no OTLP spans in it (1 without valid ids)",
        "empty.json": "no OTLP spans in it",
        "text.txt": "not OTLP/JSON or OTLP/protobuf",
        "latin1.json": "not UTF-8",
        "truncated.pb": "not OTLP/JSON or OTLP/protobuf",
        "huge.json": "larger than 256 MiB",
        "bomb.json.gz": "inflates to more than 256 MiB",
        "cut.json.gz": "truncated gzip data",
        "fifo.json": "not a regular file",
        "zero.json": "not a regular file",
        "loop.json": "cannot open",
        "missing.json": "cannot open",
    }


def test_hostile_files_are_one_line_exit_2_in_bounded_memory(tmp_path: Path) -> None:
    cases = _hostile(tmp_path)
    for name, message in cases.items():
        code, out, err = railtracks(tmp_path, "import", name)
        assert (code, out) == (2, ""), (name, err)
        assert len(err.splitlines()) == 1, (name, err)
        assert message in err, (name, err)
        assert "Traceback" not in err
    # the bomb was the largest input: a child's peak memory stayed near the inflation bound
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mib < 256 + 128, peak_mib
    assert not (tmp_path / ".railtracks").exists() or not list((tmp_path / ".railtracks").iterdir())


def test_view_opens_an_otlp_file_directly(
    tmp_path: Path, exported: tuple[Path, list[bytes]]
) -> None:
    _, bodies = exported
    (tmp_path / "trace.json").write_text("\n".join(collector_line(b) for b in bodies))
    empty = tmp_path / "states"
    empty.mkdir()
    viewer = Viewer(empty, str(tmp_path / "trace.json"))
    try:
        assert viewer.fragment == "#/run/saved/nightly"
        with urllib.request.urlopen(viewer.url + "api/runs", timeout=60) as response:
            runs = json.loads(response.read())["runs"]
        assert [(r["name"], r["status"], r["nodes"]) for r in runs] == [("nightly", "completed", 4)]
        with urllib.request.urlopen(viewer.url + "api/runs/saved/nightly", timeout=60) as response:
            assert response.status == 200
        viewer.process.send_signal(signal.SIGINT)
        assert viewer.process.wait(EXIT_S) == 0
    finally:
        viewer.stop()
    assert list(empty.iterdir()) == []  # nothing saved
    (tmp_path / "types.json").write_text('{"resourceSpans":[{"scopeSpans":[{"spans":[{}]}]}]}')
    code, _, err = railtracks(tmp_path, "view", "--no-browser", str(tmp_path / "types.json"))
    assert code == 2
    assert len(err.splitlines()) == 1


NESTED = """
import asyncio
import railtracks as rt

@rt.function_node
async def inner_step(x: int) -> int:
    return x + 1

@rt.function_node
async def outer_step(x: int) -> int:
    async with rt.Session(name="inner", logging_setting="NONE"):
        return await rt.call(inner_step, x)

@rt.session(name="outer", logging_setting="NONE")
async def main():
    return await rt.call(outer_step, 1)

asyncio.run(main())
"""


def test_a_trace_with_a_nested_session_is_each_session_as_it_was_saved(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    (source / "nested.py").write_text(NESTED)
    done = run([PYTHON, "nested.py"], source)
    assert done.returncode == 0, done.stderr
    assert (
        _state(source, "inner")["session"]["trace_id"]
        == _state(source, "outer")["session"]["trace_id"]
    )
    with otlp_receiver() as receiver:
        for name in ("outer", "inner"):
            code, _, err = railtracks(source, "export", name, "--endpoint", receiver.endpoint(),
                                      "--protocol", "http/protobuf")  # fmt: skip
            assert code == 0, err
        bodies = [post.body for post in receiver.posts("/v1/traces")]
    (target / "trace.json").write_text("\n".join(collector_line(body) for body in bodies))
    code, out, err = railtracks(target, "import", "trace.json")
    assert (code, err) == (0, "")
    assert "as outer: 2 spans" in out
    assert "as inner: 2 spans" in out
    for name in ("outer", "inner"):
        assert _state(target, name) == _state(source, name)


def _span(trace: str, span_id: int, parent: int | None, name: str) -> dict[str, Any]:
    start, end = str(10**18 + span_id), str(10**18 + 10**9)
    span = {"traceId": trace, "spanId": f"{span_id:016x}", "name": name, "kind": 1,
            "startTimeUnixNano": start, "endTimeUnixNano": end}  # fmt: skip
    if parent is not None:
        span["parentSpanId"] = f"{parent:016x}"
    return span


def _file(path: Path, spans: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))


def test_trees_a_state_cannot_hold_are_said_so(tmp_path: Path) -> None:
    deep = "ab" * 16
    _file(tmp_path / "deep.json", [_span(deep, i, i - 1 or None, "step") for i in range(1, 302)])
    code, out, err = railtracks(tmp_path, "import", "deep.json")
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"railtracks: error: deep.json: trace {deep} not saved: nested more than 200 calls"
        " deep: a saved state is read as JSON, which cannot nest that far"
    )
    assert list((tmp_path / ".railtracks").iterdir()) == []  # no file, no temporary left
    # 200 levels are read back by every reader
    _file(tmp_path / "fits.json", [_span(deep, i, i - 1 or None, "step") for i in range(1, 202)])
    assert railtracks(tmp_path, "import", "fits.json")[0] == 0
    assert railtracks(tmp_path, "show", "step", "--all")[0] == 0
    assert railtracks(tmp_path, "diff", "step", "step")[0] == 0
    # spans in a parent cycle are kept as everywhere: the loop is cut at its earliest
    # span, which becomes top-level (a duplicated id is kept too)
    looped = "cd" * 16
    _file(tmp_path / "cycle.json", [
        _span(looped, 1, None, "root"), _span(looped, 2, 3, "a"), _span(looped, 3, 2, "b"),
        _span(looped, 4, 1, "child"), _span(looped, 4, 1, "twin"),
    ])  # fmt: skip
    code, out, err = railtracks(tmp_path, "import", "cycle.json")
    assert (code, err) == (0, "")
    assert f"imported trace {looped} as root: 5 spans\n" in out
    state = _state(tmp_path, "root")
    assert state["counts"]["nodes"] == 4
    tops = [(node["name"], [c["name"] for c in node["children"]]) for node in state["nodes"]]
    assert tops == [("a", ["b"]), ("child", []), ("twin", [])]
