"""The private test support every test and benchmark shares (railtracks.testing._receiver,
railtracks.testing._procs): the receiver's faults and the progress wait behave as documented,
and importing railtracks.testing pulls in neither."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from railtracks.testing._procs import free_port, stop_process, wait_for_progress
from railtracks.testing._receiver import Receiver, otlp_receiver


def test_importing_railtracks_testing_imports_neither_the_receiver_nor_grpc() -> None:
    probe = (
        "import sys, railtracks.testing; "
        "print(sorted(m for m in ('grpc', 'railtracks.testing._receiver', "
        "'railtracks.testing._otlp_server') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def _request(spans: int, trace: bytes = b"t" * 16) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = trace, i.to_bytes(8, "big"), f"s{i}"
    return request.SerializeToString()


def _post(receiver: Receiver, body: bytes) -> tuple[int, str | None]:
    post = urllib.request.Request(
        receiver.http_endpoint + "/v1/traces",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    try:
        with urllib.request.urlopen(post, timeout=60) as response:
            return response.status, response.headers.get("Retry-After")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers.get("Retry-After")


def test_the_receiver_counts_refuses_and_resets() -> None:
    with otlp_receiver() as receiver:
        assert _post(receiver, _request(3)) == (200, None)
        assert _post(receiver, _request(3)) == (200, None)  # the same spans again
        assert receiver.stats() == (3, 6, 2, 0)
        assert [span.name for _, span in receiver.spans()] == ["s0", "s1", "s2"] * 2
        receiver.set("refuse", status=429, retry_after=2)
        assert _post(receiver, _request(1, b"u" * 16)) == (429, "2")
        assert receiver.stats() == (3, 6, 2, 1)
        receiver.set("refuse", status=503, seconds=0)  # for no time at all: ok again
        assert _post(receiver, _request(1, b"u" * 16))[0] == 200
        receiver.reset()
        assert (receiver.stats(), receiver.received()) == ((0, 0, 0, 0), [])


def test_the_receiver_restarts_on_the_same_port() -> None:
    with otlp_receiver() as receiver:
        receiver.set("restart", after=1, down=0.5)
        assert _post(receiver, _request(1))[0] == 200
        receiver.set("ok")  # waits for the restart under way to finish
        assert _post(receiver, _request(2, b"u" * 16))[0] == 200
        assert receiver.stats().distinct == 3


def test_a_closed_port_refuses_connections() -> None:
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{free_port()}/", timeout=10)


def test_the_progress_wait_waits_while_the_count_grows_and_stops_on_a_stall() -> None:
    counts = itertools.count()
    assert wait_for_progress(lambda: next(counts), 5, stall=30) == 5
    started = time.monotonic()
    assert wait_for_progress(lambda: 2, 5, stall=0.3) == 2  # no progress: gives up
    assert time.monotonic() - started < 30
    assert wait_for_progress(lambda: 2, 5, stall=0) == 2  # reads once


def test_stop_process_ends_a_process_that_ignores_sigterm() -> None:
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline().strip() == "ready"
    stop_process(stubborn, timeout=0.5)
    assert stubborn.returncode is not None
    stubborn.stdout.close()


def test_the_progress_wait_counts_other_activity_as_progress() -> None:
    busy = itertools.count()  # the backend works on something else first
    started = time.monotonic()
    assert wait_for_progress(lambda: 0, 1, stall=0.3, total=1.0, activity=lambda: next(busy)) == 0
    assert time.monotonic() - started >= 0.9  # not the 0.3 s stall: the overall bound
