"""The outbox on disk: bounded in bytes, claims, crashed senders, untrusted files (SPEC 5, 7)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

import railtracks as rt
from railtracks._delivery.otlp.outbox import Outbox, endpoint_key, outboxes, summarize
from railtracks.errors import ConfigurationError
from tests.conftest import PYTHON, RAILTRACKS, run

ENDPOINT = "http://127.0.0.1:9/v1/traces"


def _outbox(root: Path, max_bytes: int = 10_000) -> Outbox:
    return Outbox(root, ENDPOINT, "http/protobuf", max_bytes)


def test_the_oldest_batches_are_evicted_and_counted_at_the_bound(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path, max_bytes=2_500)
    first = outbox.spool(b"a" * 1000, 10)
    outbox.spool(b"b" * 1000, 20)
    assert outbox.evicted_spans == 0
    outbox.spool(b"c" * 1000, 30)
    assert outbox.evicted_spans == 10
    assert not first.exists()
    assert [e.spans for e in outbox.entries()] == [20, 30]
    assert oct(first.parent.stat().st_mode & 0o777) == "0o700"
    assert all(oct(e.path.stat().st_mode & 0o777) == "0o600" for e in outbox.entries())


def test_a_claimed_batch_is_invisible_to_others_and_in_doubt_when_its_sender_died(
    tmp_path: Path,
) -> None:
    outbox = _outbox(tmp_path)
    outbox.spool(b"x" * 10, 5)
    (entry,) = outbox.entries()
    claimed = outbox.claim(entry)
    assert claimed is not None
    assert outbox.entries() == []
    assert outbox.claim(entry) is None  # a second claim loses
    script = "import os; print(os.getpid())"
    dead = subprocess.run([PYTHON, "-c", script], capture_output=True, check=True)
    pid = int(dead.stdout)
    os.rename(claimed, claimed.with_name(claimed.name.rsplit("-", 1)[0] + f"-{pid}"))
    assert outbox.recover() == 5
    (doubt,) = outbox.entries()
    assert doubt.in_doubt
    assert summarize(outbox).in_doubt_spans == 5


def test_forged_or_hostile_outbox_directories_are_never_sent_anywhere(tmp_path: Path) -> None:
    root = tmp_path / ".railtracks" / "outbox"
    forged = root / "0123456789abcdef"
    forged.mkdir(parents=True)
    (forged / "endpoint.json").write_text(
        json.dumps({"endpoint": "http://evil", "protocol": "grpc"})
    )
    hostile_endpoint = "http://127.0.0.1:9/\x1b[31mred"
    hostile = root / endpoint_key(hostile_endpoint, "grpc")
    hostile.mkdir()
    (hostile / "endpoint.json").write_text(
        json.dumps({"endpoint": hostile_endpoint, "protocol": "grpc"})
    )
    (root / "junk").write_text("not a directory")
    assert list(outboxes(root)) == []
    listing = run([RAILTRACKS, "outbox"], tmp_path)
    assert listing.returncode == 0
    assert "\x1b" not in listing.stdout
    assert listing.stdout.startswith("the outbox is empty")


def test_outbox_listing_and_send_to_a_dead_endpoint(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path / ".railtracks" / "outbox")
    outbox.spool(b"\n\x00", 7)  # an empty-ish request; nobody listens on port 9 anyway
    listing = run([RAILTRACKS, "outbox"], tmp_path)
    assert listing.returncode == 0
    header, row = listing.stdout.splitlines()
    assert header.split()[:3] == ["ENDPOINT", "PROTOCOL", "SPANS"]
    assert row.split()[:3] == [ENDPOINT, "http/protobuf", "7"]
    sent = run([RAILTRACKS, "outbox", "send", "--endpoint", "http://127.0.0.1:9"], tmp_path)
    assert sent.returncode == 1
    assert "sent 0 spans" in sent.stdout
    assert "refused" in sent.stderr
    assert [e.spans for e in outbox.entries()] == [7]  # released, not lost
    other = run([RAILTRACKS, "outbox", "send", "--endpoint", "http://elsewhere:1"], tmp_path)
    assert other.returncode == 0  # nothing waits for that endpoint


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RAILTRACKS_OUTBOX_MAX_BYTES", "lots"), ("RAILTRACKS_EXPORT_EXIT_SECONDS", "-1")],
)
def test_invalid_railtracks_export_variables_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    ran: list[int] = []

    @rt.session(name="never")
    async def flow() -> None:
        ran.append(1)

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv(variable, value)
    rt.testing.reset()
    with pytest.raises(ConfigurationError, match=variable):
        asyncio.run(flow())
    assert ran == []
