"""The batch processor's delivery policies alone, with a fake sender or exporter (issue 18).

No thread of the policy's own is involved: each test calls the policy as the
queue's worker would. Time is a fake clock; the few waits on another thread
are on events with a generous bound.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import railtracks as rt
from railtracks._delivery.otlp.delivery import (
    MAX_BACKOFF,
    QUICK_RETRIES,
    STUCK_SECONDS,
    ExporterDelivery,
    OtlpDelivery,
)
from railtracks._delivery.otlp.outbox import Outbox
from railtracks._delivery.otlp.reporting import ONGOING_PROBLEM_SECONDS
from railtracks._delivery.otlp.route import OtlpRoute
from railtracks._delivery.otlp.send import SendResult, encode
from railtracks._delivery.otlp.sizing import count_spans

BOUND = 10.0
ENDPOINT = "http://127.0.0.1:9"
OK = SendResult(True)
BUSY = SendResult(False, "HTTP 503", retryable=True, retry_after=0.0)
REFUSED = SendResult(False, "HTTP 400", retryable=False)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeSender:
    """Answers each send with the next scripted result (the last one repeats)."""

    timeout = 1.0

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.sent: list[bytes] = []
        self.gate = threading.Event()
        self.gate.set()
        self.sending = threading.Event()

    def send(self, data: bytes, timeout: float | None = None) -> SendResult:
        self.sent.append(data)
        self.sending.set()
        assert self.gate.wait(BOUND)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


def spans(count: int, name: str = "s") -> list[ReadableSpan]:
    tracer = TracerProvider().get_tracer("test")
    made = []
    for i in range(count):
        span = tracer.start_span(f"{name}{i}")
        span.end()
        made.append(span)
    return made


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox", ENDPOINT, "http/protobuf", 1 << 30)


def otlp(outbox: Outbox, clock: Clock, *results: SendResult) -> tuple[OtlpDelivery, FakeSender]:
    route = OtlpRoute(ENDPOINT, "http/protobuf", {}, outbox)
    sender = FakeSender(*results)
    route.sender = sender  # type: ignore[assignment]
    return OtlpDelivery(route, "otlp-test", clock=clock, jitter=lambda: 0.0), sender


def waiting(outbox: Outbox) -> list[bytes]:
    return [entry.path.read_bytes() for entry in outbox.entries()]


def test_a_retryable_refusal_is_retried_then_delivered(outbox: Outbox, clock: Clock) -> None:
    policy, sender = otlp(outbox, clock, BUSY, OK)
    batch = spans(3)
    policy.deliver(batch)
    assert sender.sent == [encode(batch)] * 2  # encoded once, sent twice
    assert (policy.exported, policy.spooled, policy.failed) == (3, 0, 0)
    assert waiting(outbox) == []


def test_a_refusal_still_retryable_after_the_quick_retries_goes_to_the_outbox(
    outbox: Outbox, clock: Clock
) -> None:
    throttled = SendResult(False, "HTTP 429", retryable=True, retry_after=5.0)
    policy, sender = otlp(outbox, clock, *[BUSY] * QUICK_RETRIES, throttled)
    batch = spans(3)
    policy.deliver(batch)
    assert len(sender.sent) == 1 + QUICK_RETRIES
    assert (policy.exported, policy.spooled, policy.failed) == (0, 3, 3)
    assert waiting(outbox) == [encode(batch)]
    # the collector is down for a while: the next batch goes straight to the outbox
    policy.deliver(spans(2))
    assert len(sender.sent) == 1 + QUICK_RETRIES
    assert policy.spooled == 5
    assert policy.idle_due_in() == 5.0


def test_a_permanent_refusal_is_not_retried_and_goes_to_the_outbox(
    outbox: Outbox, clock: Clock
) -> None:
    policy, sender = otlp(outbox, clock, REFUSED)
    batch = spans(2)
    policy.deliver(batch)
    assert len(sender.sent) == 1
    assert (policy.exported, policy.spooled, policy.failed) == (0, 2, 2)
    assert waiting(outbox) == [encode(batch)]


def test_a_long_retry_after_is_not_waited_for_and_sets_when_to_try_again(
    outbox: Outbox, clock: Clock
) -> None:
    throttled = SendResult(False, "HTTP 429", retryable=True, retry_after=60.0)
    policy, sender = otlp(outbox, clock, throttled)
    policy.deliver(spans(1))
    assert len(sender.sent) == 1
    assert policy.spooled == 1
    assert policy.idle_due_in() == 60.0


def test_the_outbox_is_delivered_oldest_first_once_the_collector_is_due_again(
    outbox: Outbox, clock: Clock
) -> None:
    down = SendResult(False, "connection refused", retryable=True, retry_after=None)
    policy, sender = otlp(outbox, clock, *[BUSY] * QUICK_RETRIES, down)
    first, second = spans(2, "first"), spans(3, "second")
    policy.deliver(first)  # fails: down for 1 s (the first backoff)
    policy.deliver(second)  # straight to the outbox
    tries = len(sender.sent)
    assert tries == 1 + QUICK_RETRIES
    assert policy.idle_due_in() == 1.0
    policy.idle()  # not due yet: nothing sent
    assert len(sender.sent) == tries
    clock.now += 1.0
    sender.results = [OK]
    policy.idle()
    assert sender.sent[tries:] == [encode(first)]
    policy.idle()
    assert sender.sent[tries:] == [encode(first), encode(second)]
    assert (policy.from_outbox, waiting(outbox)) == (5, [])
    assert policy.idle_due_in() is not None  # one more turn finds the outbox empty
    policy.idle()
    assert policy.idle_due_in() is None
    assert policy.counts() == (5, 5, 0)


def test_an_earlier_process_outbox_is_delivered(outbox: Outbox, clock: Clock) -> None:
    left = encode(spans(4))
    outbox.spool(left, 4)
    policy, sender = otlp(outbox, clock, OK)
    policy.started()
    policy.idle()
    assert sender.sent == [left]
    assert policy.from_outbox == 4


def test_probes_of_a_down_collector_back_off_to_a_cap(outbox: Outbox, clock: Clock) -> None:
    down = SendResult(False, "connection refused", retryable=True)
    outbox.spool(encode(spans(1)), 1)
    policy, sender = otlp(outbox, clock, down)
    delays = []
    for _ in range(8):
        policy.idle()
        due = policy.idle_due_in()
        assert due is not None
        delays.append(due)
        clock.now += due
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    assert len(sender.sent) == 8  # one attempt per probe
    # a live batch while backing off is one attempt too: the outbox keeps it
    sender.results = [BUSY]
    policy.deliver(spans(1))
    assert len(sender.sent) == 9


def test_an_unwritable_outbox_drops_with_a_count(
    tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rt.set_config(logging_setting="QUIET")
    (tmp_path / "not-a-directory").write_text("")
    unwritable = Outbox(tmp_path / "not-a-directory", ENDPOINT, "http/protobuf", 1 << 30)
    policy, _ = otlp(unwritable, clock, REFUSED)
    policy.deliver(spans(2))
    policy.set_aside(spans(3), over_bound=True)
    assert (policy.spooled, policy.dropped) == (0, 5)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "cannot write" in line]
    assert len(warnings) == 1


def test_stuck_once_a_request_takes_longer_than_a_collector_should(
    outbox: Outbox, clock: Clock
) -> None:
    policy, sender = otlp(outbox, clock, OK)
    sender.gate.clear()
    worker = threading.Thread(target=policy.deliver, args=(spans(2),))
    worker.start()
    try:
        assert sender.sending.wait(BOUND)
        assert not policy.stuck()
        assert policy.waiting_since() == clock.now
        clock.now += STUCK_SECONDS + 0.1
        assert policy.stuck()
    finally:
        sender.gate.set()
        worker.join(BOUND)
    assert not policy.stuck()
    assert policy.waiting_since() is None
    assert policy.exported == 2


def test_at_exit_the_request_in_flight_is_spooled_and_forgotten_if_it_then_succeeds(
    outbox: Outbox, clock: Clock
) -> None:
    policy, sender = otlp(outbox, clock, OK)
    sender.gate.clear()
    in_flight, left = spans(2, "flying"), spans(5, "left")
    worker = threading.Thread(target=policy.deliver, args=(in_flight,))
    worker.start()
    try:
        assert sender.sending.wait(BOUND)
        policy.begin_closing()
        policy.abandon(left, 2, batch_size=4)
        assert policy.spooled == 7
        assert len(waiting(outbox)) == 3  # the request in flight, then 4 + 1 left
    finally:
        sender.gate.set()
        worker.join(BOUND)
    # the collector took the request after all: its spooled copy is removed
    assert (policy.exported, policy.spooled) == (2, 5)
    assert encode(in_flight) not in waiting(outbox)
    assert policy.counts() == (2, 5, 0)


def test_no_quick_retry_while_closing(outbox: Outbox, clock: Clock) -> None:
    policy, sender = otlp(outbox, clock, BUSY, OK)
    policy.begin_closing()
    policy.deliver(spans(1))
    assert len(sender.sent) == 1
    assert policy.spooled == 1
    assert policy.idle_due_in() is None  # and no outbox delivery


def test_one_warning_with_counts_while_running_and_one_at_exit(
    outbox: Outbox, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rt.set_config(logging_setting="QUIET")
    policy, _ = otlp(outbox, clock, OK, REFUSED)
    policy.deliver(spans(4))
    policy.deliver(spans(3))  # refused: spooled, the problem starts now
    policy.after_round()
    assert "did not take" not in capsys.readouterr().err  # not yet: it may pass
    clock.now += ONGOING_PROBLEM_SECONDS
    for _ in range(3):
        policy.after_round()
    ongoing = [line for line in capsys.readouterr().err.splitlines() if "did not take" in line]
    assert len(ongoing) == 1
    assert "(HTTP 400): 4 exported, 3 spooled to the outbox" in ongoing[0]
    assert "0 dropped so far" in ongoing[0]
    policy.report()
    policy.report()
    at_exit = [line for line in capsys.readouterr().err.splitlines() if "did not take" in line]
    assert at_exit == []  # nothing new since the last report
    policy.set_aside(spans(2), over_bound=True)
    policy.report()
    policy.report()
    at_exit = [line for line in capsys.readouterr().err.splitlines() if "did not take" in line]
    assert len(at_exit) == 1
    assert "4 exported, 5 spooled" in at_exit[0]
    assert at_exit[0].endswith("0 dropped at exit; the next process exporting there or "
                               "`railtracks outbox send` delivers them")  # fmt: skip


def test_no_warning_when_everything_was_delivered(
    outbox: Outbox, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rt.set_config(logging_setting="QUIET")
    policy, _ = otlp(outbox, clock, OK)
    policy.deliver(spans(3))
    clock.now += ONGOING_PROBLEM_SECONDS
    policy.after_round()
    policy.report()
    assert "did not take" not in capsys.readouterr().err


class ScriptedExporter(SpanExporter):
    def __init__(self, *outcomes: SpanExportResult | Exception) -> None:
        self.outcomes = list(outcomes)
        self.exported: list[str] = []
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is SpanExportResult.SUCCESS:
            self.exported += [s.name for s in spans]
        return outcome

    def shutdown(self) -> None:
        self.shut_down = True


def test_an_sdk_exporter_counts_what_it_refuses_or_raises_on_as_dropped(
    clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rt.set_config(logging_setting="QUIET")
    exporter = ScriptedExporter(
        SpanExportResult.SUCCESS, SpanExportResult.FAILURE, ConnectionError("gone")
    )
    policy = ExporterDelivery(exporter, "sdk-test", clock=clock)
    assert not policy.keeps_overflow
    policy.deliver(spans(2))
    policy.deliver(spans(3))
    policy.deliver(spans(4))  # raises: a failed export, not a crash
    assert exporter.exported == ["s0", "s1"]
    assert (policy.exported, policy.failed, policy.dropped, policy.spooled) == (2, 7, 7, 0)
    assert policy.idle_due_in() is None
    assert not policy.stuck()
    policy.abandon(spans(5), 1, batch_size=4)
    assert exporter.shut_down
    assert policy.dropped == 13
    policy.report()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "did not take" in line]
    assert len(warnings) == 1
    assert "(export failed: the exporter reported a failure)" in warnings[0]
    assert "2 exported, 0 spooled, 13 dropped at exit" in warnings[0]
    assert "outbox" not in warnings[0]


def test_a_full_queue_is_one_warning_and_every_drop_counted(
    clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rt.set_config(logging_setting="QUIET")
    policy = ExporterDelivery(ScriptedExporter(), "sdk-test", clock=clock)
    for _ in range(5):
        policy.queue_full(10, 1000)
    assert policy.dropped == 5
    warnings = [line for line in capsys.readouterr().err.splitlines() if "is full" in line]
    assert len(warnings) == 1
    assert "export queue for sdk-test is full (10 spans or 1000 bytes)" in warnings[0]


def test_a_bug_below_the_worker_is_counted_as_dropped(clock: Clock) -> None:
    policy = ExporterDelivery(ScriptedExporter(), "sdk-test", clock=clock)
    policy.lost(3, RuntimeError("bug"))
    assert policy.counts() == (0, 0, 3)


def test_a_forked_child_starts_with_fresh_counts_and_a_new_sender(
    outbox: Outbox, clock: Clock
) -> None:
    policy, sender = otlp(outbox, clock, REFUSED)
    policy.deliver(spans(2))
    policy.begin_closing()
    policy.after_fork_in_child()
    assert policy.counts() == (0, 0, 0)
    assert not policy.closing.is_set()
    assert policy.route.sender is not sender


# -- issue 19: sized requests, set aside, in doubt, an untrusted outbox ------------------

TIMED_OUT = SendResult(False, "no answer within 1 s", in_doubt=True)
TOO_LARGE = SendResult(False, "HTTP 413", retryable=False, too_large=True)
BAD_REQUEST = SendResult(False, "HTTP 400", retryable=False, rejected=True)


def test_a_timed_out_request_is_not_retried_and_waits_in_doubt(
    outbox: Outbox, clock: Clock
) -> None:
    policy, sender = otlp(outbox, clock, TIMED_OUT, OK)
    batch = spans(3)
    policy.deliver(batch)
    assert len(sender.sent) == 1  # the collector may have it: never sent again on its own
    (entry,) = outbox.entries()
    assert entry.in_doubt
    assert (policy.spooled, policy.failed) == (3, 3)
    clock.now += 60
    policy.idle()  # the background drain leaves it for `outbox send --in-doubt`
    assert len(sender.sent) == 1
    assert policy.idle_due_in() is None


def test_a_request_too_large_is_cut_in_halves_and_the_limit_lowered(
    outbox: Outbox, clock: Clock
) -> None:
    policy, sender = otlp(outbox, clock, TOO_LARGE, OK)
    batch = spans(8)
    whole = encode(batch)
    policy.deliver(batch)
    assert sender.sent[0] == whole
    assert len(sender.sent) == 3
    halves = [count_spans(sent) for sent in sender.sent[1:]]
    assert sum(halves) == 8
    assert min(halves) >= 1
    assert policy.exported == 8
    assert waiting(outbox) == []
    assert policy.route.limit.max_bytes < 4 * 1024 * 1024


def test_a_single_span_too_large_and_a_batch_refused_for_good_are_set_aside(
    outbox: Outbox, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rt.set_config(logging_setting="QUIET")
    policy, sender = otlp(outbox, clock, TOO_LARGE, BAD_REQUEST, OK)
    policy.deliver(spans(1))
    policy.deliver(spans(4))
    policy.deliver(spans(2))  # the collector is not marked down: sent at once
    assert len(sender.sent) == 3
    assert (policy.exported, policy.set_aside_spans, policy.spooled) == (2, 5, 0)
    reasons = sorted((kept.reason, kept.spans) for kept in outbox.quarantine.entries())
    assert reasons == [("refused", 4), ("too-large", 1)]
    assert all(oct(k.path.stat().st_mode & 0o777) == "0o600" for k in outbox.quarantine.entries())
    policy.report()
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if "set aside" in line]
    assert "5 set aside" in warning


def test_the_background_drain_reads_only_regular_batch_files(
    outbox: Outbox, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rt.set_config(logging_setting="QUIET")
    good = encode(spans(2))
    outbox.spool(b"\xff garbage", 9)  # oldest: not a trace request
    outbox.spool(good, 2)
    outside = tmp_path / "secret.otlp"
    outside.write_bytes(encode(spans(5, "secret")))
    directory = outbox.directory
    (directory / "00000000000000000001-1-000001-5.otlp").symlink_to(outside)
    os.mkfifo(directory / "00000000000000000002-1-000002-5.otlp")
    (directory / "00000000000000000003-1-000003-5.otlp").symlink_to("/dev/zero")
    policy, sender = otlp(outbox, clock, OK)
    for _ in range(4):
        policy.idle()
    assert sender.sent == [good]
    assert policy.from_outbox == 2
    assert [(k.reason, k.spans) for k in outbox.quarantine.entries()] == [("unreadable", 9)]
    assert sorted(outbox.skipped.values()) == ["a FIFO", "a symbolic link", "a symbolic link"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "never read" in line]
    assert len(warnings) == 1


@pytest.mark.parametrize(("answer", "in_doubt"), [(TIMED_OUT, True), (REFUSED, False)])
def test_at_exit_the_request_on_the_wire_waits_in_doubt_until_refused(
    outbox: Outbox, clock: Clock, answer: SendResult, in_doubt: bool
) -> None:
    policy, sender = otlp(outbox, clock, answer)
    sender.gate.clear()
    worker = threading.Thread(target=policy.deliver, args=(spans(2),))
    worker.start()
    try:
        assert sender.sending.wait(BOUND)
        policy.begin_closing()
        policy.abandon([], 2, batch_size=4)
        assert [entry.in_doubt for entry in outbox.entries()] == [True]
    finally:
        sender.gate.set()
        worker.join(BOUND)
    # timed out: the collector may have it; refused: it certainly has not
    assert [entry.in_doubt for entry in outbox.entries()] == [in_doubt]
    assert (policy.spooled, len(sender.sent)) == (2, 1)
