"""The batch processor's queue and worker thread alone, with a fake sink (issue 18).

No OTLP, no spans: items are ints. Every wait is on an event or a condition
with a generous bound; nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from railtracks._delivery.otlp.batch_queue import BatchQueue

BOUND = 10.0  # seconds: only reached when the behaviour under test is broken


class FakeSink:
    """Records what the queue hands it; can hold the worker at ``started`` or in ``deliver``."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.delivered: list[list[int]] = []
        self.set_aside_batches: list[tuple[list[int], bool]] = []
        self.lost_items: list[tuple[int, str]] = []
        self.idle_turns = 0
        self.due: float | None = None
        self.is_stuck = False
        self.fail_next = False
        self.start_gate = threading.Event()
        self.start_gate.set()
        self.deliver_gate = threading.Event()
        self.deliver_gate.set()
        self.delivering = threading.Event()
        self.waiting = threading.Event()  # the worker is about to wait for work

    def started(self) -> None:
        assert self.start_gate.wait(BOUND)

    def deliver(self, items: list[int]) -> None:
        self.delivering.set()
        assert self.deliver_gate.wait(BOUND)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("a bug in the sink")
        with self.changed:
            self.delivered.append(items)
            self.changed.notify_all()

    def idle(self) -> None:
        with self.changed:
            self.idle_turns += 1
            self.due = None
            self.changed.notify_all()

    def idle_due_in(self) -> float | None:
        self.waiting.set()
        return self.due

    def stuck(self) -> bool:
        return self.is_stuck

    def set_aside(self, items: list[int], over_bound: bool) -> None:
        with self.changed:
            self.set_aside_batches.append((items, over_bound))
            self.changed.notify_all()

    def lost(self, items: int, error: Exception) -> None:
        with self.changed:
            self.lost_items.append((items, str(error)))
            self.changed.notify_all()

    def after_round(self) -> None:
        return None

    def wait_for(self, predicate: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, BOUND)

    def handled(self) -> list[int]:
        with self.changed:
            aside = [i for items, _ in self.set_aside_batches for i in items]
            return aside + [i for items in self.delivered for i in items]


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def make(sink: FakeSink) -> Iterator[Callable[..., BatchQueue[int]]]:
    made: list[BatchQueue[int]] = []

    def make(**options: object) -> BatchQueue[int]:
        settings: dict[str, object] = {
            "name": "test-queue",
            "max_queue_size": 1000,
            "max_queue_bytes": 1 << 30,
            "max_export_batch_size": 4,
            "schedule_delay": 600.0,  # no tick during a test: only wakes deliver
            "keep_overflow": False,
        }
        queue: BatchQueue[int] = BatchQueue(sink, **{**settings, **options})  # type: ignore[arg-type]
        made.append(queue)
        return queue

    yield make
    sink.start_gate.set()
    sink.deliver_gate.set()
    for queue in made:
        queue.stop()
        queue.join(BOUND)


def test_a_full_batch_wakes_the_worker_without_waiting_for_the_tick(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    queue = make()
    assert sink.waiting.wait(BOUND)  # the worker waits up to schedule_delay (600 s)
    for i in range(4):
        assert queue.put(i, 10, False)
    sink.wait_for(lambda: bool(sink.delivered))
    assert sink.delivered == [[0, 1, 2, 3]]


def test_batches_are_at_most_the_batch_size_and_keep_the_order(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    sink.start_gate.clear()  # the worker has not started: everything queues first
    queue = make()
    for i in range(10):
        assert queue.put(i, 10, False)
    assert len(queue) == 10
    sink.start_gate.set()
    assert queue.flush(BOUND)
    assert sink.delivered == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_an_urgent_item_wakes_the_worker(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    queue = make()
    assert sink.waiting.wait(BOUND)
    assert queue.put(1, 10, False)
    assert queue.put(2, 10, True)  # a session ended
    sink.wait_for(lambda: bool(sink.delivered))
    assert sink.delivered == [[1, 2]]


def test_flush_delivers_what_is_queued_and_says_whether_it_finished(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    queue = make()
    assert sink.waiting.wait(BOUND)
    assert queue.put(1, 10, False)
    assert queue.put(2, 10, False)
    assert queue.flush(BOUND)
    assert sink.delivered == [[1, 2]]
    sink.deliver_gate.clear()  # the next batch hangs in the sink
    sink.delivering.clear()
    assert queue.put(3, 10, True)
    assert sink.delivering.wait(BOUND)
    assert queue.in_flight == 1
    assert not queue.flush(0.01)  # still in flight: not flushed, and flush returns
    sink.deliver_gate.set()
    assert queue.flush(BOUND)
    assert sink.delivered == [[1, 2], [3]]
    assert queue.in_flight == 0


def test_stop_hands_back_what_is_queued_and_in_flight_and_the_worker_ends(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    queue = make(max_export_batch_size=2)
    assert sink.waiting.wait(BOUND)
    sink.deliver_gate.clear()
    assert queue.put(0, 10, False)
    assert queue.put(1, 10, False)  # a full batch: the worker takes it and hangs
    assert sink.delivering.wait(BOUND)
    for i in range(2, 5):
        assert queue.put(i, 10, False)
    left, in_flight = queue.stop()
    assert (left, in_flight) == ([2, 3, 4], 2)
    assert len(queue) == 0
    sink.deliver_gate.set()
    queue.join(BOUND)
    assert not queue._worker.is_alive()
    assert sink.delivered == [[0, 1]]  # only the batch in flight: the rest was handed back


def test_a_flushed_queue_stops_with_nothing_left(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    queue = make()
    for i in range(6):
        assert queue.put(i, 10, False)
    assert queue.flush(BOUND)
    assert queue.stop() == ([], 0)
    queue.join(BOUND)
    assert not queue._worker.is_alive()
    assert sink.handled() == list(range(6))


def test_a_bounded_queue_refuses_beyond_its_span_bound(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    sink.start_gate.clear()
    queue = make(max_queue_size=3)
    verdicts = [queue.put(i, 10, False) for i in range(5)]
    assert verdicts == [True, True, True, False, False]
    sink.start_gate.set()
    assert queue.flush(BOUND)
    assert sink.handled() == [0, 1, 2]
    assert sink.set_aside_batches == []


def test_a_bounded_queue_refuses_beyond_its_byte_bound(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    sink.start_gate.clear()
    queue = make(max_queue_bytes=100)
    verdicts = [queue.put(i, 60, False) for i in range(4)]
    assert verdicts == [True, True, False, False]  # 120 bytes queued is over 100
    sink.start_gate.set()
    assert queue.flush(BOUND)
    assert sink.handled() == [0, 1]
    assert queue.put(9, 60, True)  # delivered: the bytes were given back
    assert queue.flush(BOUND)
    assert sink.handled() == [0, 1, 9]


def test_overflow_kept_by_the_sink_is_set_aside_oldest_first_never_refused(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    sink.start_gate.clear()
    queue = make(max_queue_size=4, max_export_batch_size=2, keep_overflow=True)
    assert all(queue.put(i, 10, False) for i in range(6))
    sink.wait_for(lambda: bool(sink.set_aside_batches))
    sink.start_gate.set()
    assert queue.flush(BOUND)
    sink.wait_for(lambda: len(sink.handled()) == 6)
    assert sorted(sink.handled()) == list(range(6))
    aside = [i for items, _ in sink.set_aside_batches for i in items]
    assert aside == list(range(len(aside)))  # the oldest went aside
    assert all(over for _, over in sink.set_aside_batches)


def test_full_batches_are_set_aside_while_the_sink_is_stuck(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    queue = make(max_export_batch_size=2, keep_overflow=True)
    assert sink.waiting.wait(BOUND)
    sink.deliver_gate.clear()
    assert queue.put(0, 10, False)
    assert queue.put(1, 10, False)
    assert sink.delivering.wait(BOUND)  # [0, 1] hangs in the sink
    sink.is_stuck = True
    for i in range(2, 6):  # at two full batches queued behind the stuck sink
        assert queue.put(i, 10, False)
    sink.wait_for(lambda: len(sink.set_aside_batches) == 2)
    assert sink.set_aside_batches == [([2, 3], False), ([4, 5], False)]
    sink.is_stuck = False
    sink.deliver_gate.set()
    assert queue.flush(BOUND)
    assert sink.delivered == [[0, 1]]


def test_the_worker_outlives_a_sink_that_raises(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    queue = make()
    sink.fail_next = True
    assert queue.put(1, 10, True)
    sink.wait_for(lambda: bool(sink.lost_items))
    assert sink.lost_items == [(1, "a bug in the sink")]
    assert queue.put(2, 10, True)
    assert queue.flush(BOUND)
    assert sink.delivered == [[2]]


def test_the_sink_gets_its_idle_turn_when_it_asks_for_one(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    sink.due = 0.0  # e.g. the collector is due to be probed again now
    make()
    sink.wait_for(lambda: sink.idle_turns >= 1)  # long before the 600 s tick
    assert sink.delivered == []


def test_a_restarted_queue_forgets_what_was_queued(
    sink: FakeSink, make: Callable[..., BatchQueue[int]]
) -> None:
    sink.start_gate.clear()
    queue = make()
    assert queue.put(1, 10, False)
    queue.start()  # as in a forked child: the parent's items are the parent's
    sink.start_gate.set()
    assert queue.put(2, 10, True)
    assert queue.flush(BOUND)
    assert sink.handled() == [2]
