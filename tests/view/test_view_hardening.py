"""The viewer against hostile clients, over real sockets: deep values, huge bodies, slow clients."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from railtracks.view._live import LiveRuns
from railtracks.view._protobuf import TOO_DEEP
from railtracks.view._server import MAX_BODY, ViewerServer

from .test_view_server import kv, otlp_json, request

TRACE = "0af7651916cd43dd8448eb211c80319c"
NODE_ID = "b7ad6b7169203331"
GENEROUS = 60.0  # seconds: a bound for waiting on the server, never a timing assertion


class RecordingServer(ViewerServer):
    """A viewer that keeps the sockets it accepts, to look at their options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.accepted: list[socket.socket] = []
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.accepted.append(sock)
        return sock, address


def start(tmp_path: Path, **options: Any) -> RecordingServer:
    states = tmp_path / "states"
    states.mkdir(exist_ok=True)
    server = RecordingServer("127.0.0.1", 0, states, **options)
    server.start_in_thread()
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RecordingServer]:
    instance = start(tmp_path, timeout=2.0)
    try:
        yield instance
    finally:
        instance.shutdown()
        instance.server_close()


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds, failing only after GENEROUS seconds."""
    deadline = time.monotonic() + GENEROUS
    while not condition():
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.02)


def host(server: ViewerServer) -> dict[str, str]:
    return {"Host": f"127.0.0.1:{server.port}"}


# -- protobuf written by hand, so that any nesting can be sent ----------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def any_string(text: str) -> bytes:
    return field(1, text.encode())


def keyvalue(key: str, any_value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, any_value)


def nested_any(depth: int) -> bytes:
    """An AnyValue ``depth`` levels deep: kvlists and arrays in turn, a string at the bottom."""
    value = any_string("bottom")
    for level in range(depth):
        inner = field(1, keyvalue("k", value)) if level % 2 else field(1, value)
        value = field(6 if level % 2 else 5, inner)
    return value


def proto_request(spans: list[bytes]) -> bytes:
    scope_spans = field(1, field(1, b"scope")) + b"".join(field(2, span) for span in spans)
    return field(1, field(2, scope_spans))


def proto_span(trace: bytes, span_id: bytes, attributes: bytes = b"") -> bytes:
    return field(1, trace) + field(2, span_id) + field(5, b"s") + attributes


# -- deep and JSON-looking values -------------------------------------------------------


def test_deep_and_json_looking_values_are_received_and_shown(server: RecordingServer) -> None:
    brackets = "[" * 1500
    nested_json = "[" * 3000 + "]" * 3000
    braces = '{"a":' * 1200 + "1" + "}" * 1200
    deep_kvlist: dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(150):  # 450 levels of JSON: as deep as the test's own encoder goes
        deep_kvlist = {"kvlistValue": {"values": [{"key": "k", "value": deep_kvlist}]}}
    span = {
        "traceId": TRACE,
        "spanId": NODE_ID,
        "name": "deep",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [
            kv("railtracks.node.name", "deep"),
            kv("railtracks.node.input", brackets),
            kv("railtracks.node.output", braces),
            kv("brackets", brackets),
            kv("nested.json", nested_json),
            {"key": "deep.kvlist", "value": deep_kvlist},
            {"key": "nan", "value": {"doubleValue": float("nan")}},
        ],
    }
    post = {**host(server), "Content-Type": "application/json"}
    status, _, body = request(server, "POST", "/v1/traces", otlp_json([span]), post)
    assert status == 200, body
    status, _, body = request(server, "GET", f"/api/runs/live/{TRACE}/spans/{NODE_ID}")
    assert status == 200, body
    detail = json.loads(body)  # strict JSON: NaN travels as a string
    assert detail["input"] == brackets
    assert detail["attributes"]["brackets"] == brackets
    assert isinstance(detail["output"], str | dict)
    assert detail["attributes"]["nested.json"].startswith("[[[")
    assert detail["attributes"]["nan"] == "nan"
    value = detail["attributes"]["deep.kvlist"]
    levels = 0
    while isinstance(value, dict):
        value, levels = value["k"], levels + 1
    assert value in (TOO_DEEP, "[REDACTED]")  # cut where checking stops, never a failure
    assert levels >= 16
    outline = json.loads(request(server, "GET", f"/api/runs/live/{TRACE}")[2])
    assert [row[0] for row in outline["rows"]] == [NODE_ID]


def test_deeply_nested_protobuf_values_are_received_and_shown(server: RecordingServer) -> None:
    trace, span_id = bytes.fromhex(TRACE), bytes.fromhex(NODE_ID)
    attributes = field(9, keyvalue("deep", nested_any(400))) + field(
        9, keyvalue("brackets", any_string("[" * 1500))
    )
    post = {**host(server), "Content-Type": "application/x-protobuf"}
    body = proto_request([proto_span(trace, span_id, attributes)])
    status, _, answer = request(server, "POST", "/v1/traces", body, post)
    assert status == 200, answer
    status, _, answer = request(server, "GET", f"/api/runs/live/{TRACE}/spans/{NODE_ID}")
    assert status == 200
    shown = json.loads(answer)["attributes"]
    assert shown["brackets"] == "[" * 1500
    value, levels = shown["deep"], 0
    while isinstance(value, list | dict):
        value = value[0] if isinstance(value, list) else value["k"]
        levels += 1
    assert value == TOO_DEEP
    assert levels >= 16


# -- bodies bounded in bytes ---------------------------------------------------------------


def minimal_spans_body(size: int, traces: int) -> tuple[bytes, int]:
    """A protobuf export of about ``size`` bytes of spans with ids only, over ``traces`` traces."""
    spans = []
    total = 0
    index = 0
    while total < size - 64:
        trace = (index % traces + 1).to_bytes(16, "big")
        span = field(1, trace) + field(2, (index + 1).to_bytes(8, "big"))
        spans.append(span)
        total += len(span) + 2
        index += 1
    return proto_request(spans), index


def test_a_16_mib_body_of_minimal_spans_is_bounded_in_bytes(tmp_path: Path) -> None:
    budget = 24 * 1024 * 1024
    server = start(tmp_path, timeout=30.0, live=LiveRuns(max_bytes=budget))
    try:
        body, count = minimal_spans_body(MAX_BODY - 1024, traces=40)
        assert len(body) <= MAX_BODY
        post = {**host(server), "Content-Type": "application/x-protobuf"}
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        connection.request("POST", "/v1/traces", body=body, headers=post)
        status = connection.getresponse().status
        connection.close()
        assert status in (200, 413, 429)
        assert server.live.bytes <= budget
        runs = server.live.summaries()
        assert len(runs) <= 40
        held = sum(r["spans"] for r in runs)
        assert 0 < held < count  # the budget dropped or forgot spans: never all 400,000 held
        assert server.live.forgotten_runs + sum(r["dropped"] for r in runs) > 0
        wait_for(lambda: server.pending_bytes == 0)  # given back once the handler returns
        # still serving, and still receiving
        assert request(server, "GET", "/api/runs", headers=host(server))[0] == 200
        small, _ = minimal_spans_body(200, traces=1)
        assert request(server, "POST", "/v1/traces", small, post)[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_bodies_over_the_pending_budget_are_refused_with_429(server: RecordingServer) -> None:
    server.max_pending_bytes = 1000
    post = {**host(server), "Content-Type": "application/json"}
    status, headers, _ = request(server, "POST", "/v1/traces", b" " * 2000, post)
    assert status == 429
    assert headers["Retry-After"] == "1"
    wait_for(lambda: server.pending_bytes == 0)
    assert request(server, "POST", "/v1/traces", otlp_json([]), post)[0] == 200


def test_expect_100_continue_is_answered(server: RecordingServer) -> None:
    body = otlp_json([])
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=GENEROUS) as sock:
        sock.sendall(head.encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


# -- slow clients ---------------------------------------------------------------------------


def closed_by_server(sock: socket.socket) -> bool:
    """Wait (up to GENEROUS seconds) for the server to close ``sock``."""
    sock.settimeout(GENEROUS)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True  # reset: closed as well
    return True


def test_slow_clients_hold_no_threads_and_are_dropped(server: RecordingServer) -> None:
    threads_before = threading.active_count()
    slow = []
    for _ in range(300):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=GENEROUS)
        sock.sendall(b"G")  # a request head begun, never finished
        slow.append(sock)
    stop = threading.Event()

    def drip() -> None:  # a few send a byte at a time: that does not extend their time
        while not stop.is_set():
            for sock in slow[-5:]:
                with contextlib.suppress(OSError):  # closed by the server: what is awaited
                    sock.send(b"E")
            stop.wait(0.2)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        status, _, body = request(server, "GET", "/api/runs", headers=host(server))
        assert status == 200, body
        assert json.loads(body)["runs"] == []
        assert threading.active_count() <= threads_before + 2  # the test's own dripper
        assert server.open_connections <= server.max_connections
        assert all(closed_by_server(sock) for sock in slow)
    finally:
        stop.set()
        dripper.join()
        for sock in slow:
            sock.close()
    wait_for(lambda: server.open_connections == 0)


def test_over_the_connection_cap_the_longest_waiting_is_dropped(tmp_path: Path) -> None:
    server = start(tmp_path, timeout=GENEROUS, max_connections=20)
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
        status, _, _ = request(server, "GET", "/api/runs", headers=host(server))
        assert status == 200
        assert server.open_connections <= 20
        assert closed_by_server(idle[0])  # the first ones made room for the later ones
        for sock in idle:
            sock.close()
    finally:
        server.shutdown()
        server.server_close()


# -- keep-alive -----------------------------------------------------------------------------


def test_keep_alive_requests_share_one_socket_with_nodelay(server: RecordingServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=GENEROUS)
    try:
        for _ in range(20):
            connection.request("GET", "/api/runs", headers=host(server))
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read()) == {"version": 0, "runs": []}
            assert response.getheader("Connection") is None
        assert len(server.accepted) == 1  # twenty requests, one connection
        nodelay = server.accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert nodelay != 0
    finally:
        connection.close()
