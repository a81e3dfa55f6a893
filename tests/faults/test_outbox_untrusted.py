"""The outbox is untrusted on disk (SPEC 5, 7; issue 19): what railtracks did not write
is never read, never sent, never a hang, never in the way of the batches behind it.

`railtracks outbox` and `outbox send` run as their own processes with a generous
timeout: a regression that hangs fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from railtracks._delivery.otlp import files
from railtracks._delivery.otlp.outbox import Outbox, endpoint_key
from railtracks.testing._receiver import Receiver
from tests.conftest import RAILTRACKS, run

GIB = 1024 * 1024 * 1024
HANG_BOUND = 120.0  # seconds: only a hang reaches it


def _request(spans: int, name: str = "node") -> tuple[bytes, set[bytes]]:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    trace_id = random.randbytes(16)
    ids = set()
    for index in range(spans):
        span = scope_spans.spans.add()
        span.trace_id, span.span_id = trace_id, random.randbytes(8)
        span.name = f"{name} {index}"
        ids.add(span.span_id)
    return bytes(request.SerializeToString()), ids


def _outbox(cwd: Path, receiver: Receiver, protocol: str = "http/protobuf") -> Outbox:
    return Outbox(cwd / ".railtracks" / "outbox", receiver.endpoint(protocol), protocol, 2**30)


def _batch_name(seq: int, spans: int) -> str:
    return f"{seq:020d}-1-{seq:06d}-{spans}.otlp"  # older than any batch spooled now


def _cli(cwd: Path, *args: str) -> Any:
    return run([RAILTRACKS, "outbox", *args], cwd, timeout=HANG_BOUND)


def _received_span_ids(receiver: Receiver) -> set[bytes]:
    return {span_id for _, span_id in receiver.ids()}


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_file_at_the_outbox_head_is_set_aside_and_the_rest_delivered(
    fresh: Receiver, tmp_path: Path, damage: str
) -> None:
    outbox = _outbox(tmp_path, fresh)
    whole, _ = _request(50)
    head = os.urandom(3000) if damage == "garbage" else whole[: len(whole) - 7]
    outbox.spool(b"", 0)  # makes the directory and its endpoint.json
    (outbox.directory / _batch_name(1, 50)).write_bytes(head)
    expected: set[bytes] = set()
    for _ in range(4):
        data, ids = _request(500)
        outbox.spool(data, 500)
        expected |= ids
    sent = _cli(tmp_path, "send")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert _received_span_ids(fresh) == expected
    assert fresh.stats().total == len(expected)
    assert "unreadable: 1 batches" in sent.stdout
    listing = _cli(tmp_path)
    _, row, *notes = listing.stdout.splitlines()
    assert row.split()[2] == "0"  # nothing waits
    assert any("unreadable: 1 batches" in note for note in notes)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_batch_the_collector_cannot_parse_is_set_aside_and_the_rest_delivered(
    fresh: Receiver, tmp_path: Path, protocol: str
) -> None:
    # well formed down to the spans, a span that is not one: HTTP 400 from the collector,
    # refused before sending over gRPC; either way set aside as refused
    outbox = _outbox(tmp_path, fresh, protocol)
    bad_span = b"\x0a\x05\xff"  # a trace_id said to be 5 bytes long, of 1
    scope = b"\x12" + bytes([len(bad_span)]) + bad_span
    resource = b"\x12" + bytes([len(scope)]) + scope
    outbox.spool(b"\x0a" + bytes([len(resource)]) + resource, 1)
    data, expected = _request(300)
    outbox.spool(data, 300)
    sent = _cli(tmp_path, "send")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert _received_span_ids(fresh) == expected
    assert "refused: 1 batches" in sent.stdout


def test_a_symlink_named_like_a_batch_is_neither_followed_nor_sent(
    fresh: Receiver, tmp_path: Path
) -> None:
    outbox = _outbox(tmp_path, fresh)
    data, expected = _request(20)
    outbox.spool(data, 20)
    secret, secret_ids = _request(7, "secret")
    outside = tmp_path / "elsewhere.otlp"
    outside.write_bytes(secret)
    link = outbox.directory / _batch_name(1, 7)
    link.symlink_to(outside)
    sent = _cli(tmp_path, "send")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert _received_span_ids(fresh) == expected
    assert not secret_ids & _received_span_ids(fresh)
    assert "skipped 1 entries" in sent.stderr
    assert "a symbolic link" in sent.stderr
    assert link.is_symlink()
    assert outside.read_bytes() == secret  # neither moved, nor changed
    listing = _cli(tmp_path)
    assert listing.returncode == 0
    assert "skipped 1 entries" in listing.stderr


def test_fifos_in_the_outbox_hang_neither_send_nor_listing(fresh: Receiver, tmp_path: Path) -> None:
    outbox = _outbox(tmp_path, fresh)
    data, expected = _request(30)
    outbox.spool(data, 30)
    os.mkfifo(outbox.directory / _batch_name(1, 5))
    os.mkfifo(outbox.directory / (_batch_name(2, 5) + ".indoubt"))
    # another endpoint's directory whose endpoint.json is a FIFO
    other = outbox.root / endpoint_key("http://127.0.0.1:9", "grpc")
    other.mkdir(mode=0o700)
    os.mkfifo(other / "endpoint.json")
    listing = _cli(tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "a FIFO" in listing.stderr
    for flags in ([], ["--in-doubt"]):
        sent = _cli(tmp_path, "send", *flags)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "skipped 2 entries" in sent.stderr
    assert _received_span_ids(fresh) == expected


def test_a_device_and_an_oversized_sparse_file_are_skipped_unread(
    fresh: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = _outbox(tmp_path, fresh)
    data, expected = _request(40)
    outbox.spool(data, 40)
    (outbox.directory / _batch_name(1, 5)).symlink_to("/dev/zero")
    sparse = outbox.directory / _batch_name(2, 5)
    with sparse.open("wb") as handle:
        handle.truncate(2 * GIB)
    # in this process: listed as skipped, and reading either raises before a byte is read
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    entries = outbox.entries()
    assert [e.spans for e in entries] == [40]
    assert outbox.skipped[_batch_name(1, 5)] == "a symbolic link"
    assert "over the bound" in outbox.skipped[_batch_name(2, 5)]
    for name in (_batch_name(1, 5), _batch_name(2, 5)):
        with pytest.raises(files.Untrusted):
            outbox.read(outbox.directory / name)
    assert reads == []
    monkeypatch.undo()
    # as a command: delivered what is a batch, skipped the rest, at once
    sent = _cli(tmp_path, "send")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "skipped 2 entries" in sent.stderr
    assert _received_span_ids(fresh) == expected
    assert sparse.stat().st_size == 2 * GIB


def test_an_outbox_directory_others_can_write_or_a_symlinked_one_is_not_read(
    fresh: Receiver, tmp_path: Path
) -> None:
    outbox = _outbox(tmp_path, fresh)
    data, _ = _request(10)
    outbox.spool(data, 10)
    outbox.directory.chmod(0o777)
    sent = _cli(tmp_path, "send")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "writable by other users" in sent.stderr
    assert fresh.stats().total == 0
    outbox.directory.chmod(0o700)
    # a directory elsewhere, linked in under the right name: not an outbox of ours
    elsewhere = tmp_path / "elsewhere"
    outbox.directory.rename(elsewhere)
    outbox.directory.symlink_to(elsewhere)
    assert json.loads((elsewhere / "endpoint.json").read_text())["endpoint"] == outbox.endpoint
    sent = _cli(tmp_path, "send")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "not a directory (a symbolic link?)" in sent.stderr
    assert fresh.stats().total == 0
    assert _cli(tmp_path).stdout.startswith("the outbox is empty")
