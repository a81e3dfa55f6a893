"""Run metrics derived from finished spans (SPEC 5), recorded off the hot path.

``railtracks.session.duration`` and ``railtracks.node.duration`` histograms in
seconds (buckets from 1 ms to 5 min), ``railtracks.sessions`` and
``railtracks.node.calls`` counters; attributes ``railtracks.session.name``
(``unnamed`` when the session has none), ``railtracks.node.name`` and
``railtracks.status``.

An SDK instrument call made inside a sampled span costs more than the span
itself (attribute hashing, the trace-based exemplar filter, a lock per
storage). So a span's end only appends ``(labels, seconds)`` to a queue; the
queue is drained into the histograms when a metric reader collects (the
counters are observable, and their callback is that moment), and the
counters report totals kept in a plain dict. A reader that never collects
cannot make the queue grow without bound: past ``MAX_PENDING`` entries each
new one is recorded at once, as before.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from typing import Final

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .._recording import attributes as attr
from .per_meter import PerMeter
from .usage_metrics import usage_metrics

SECONDS_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
SESSION_DURATION: Final = "railtracks.session.duration"
NODE_DURATION: Final = "railtracks.node.duration"
SESSIONS: Final = "railtracks.sessions"
NODE_CALLS: Final = "railtracks.node.calls"
MAX_PENDING: Final = 1_000_000
_SCOPE: Final = "railtracks"

# (session name, status, node name or None for a session)
_Key = tuple[str, str, str | None]


def _labels(key: _Key) -> dict[str, str]:
    session_name, status, node = key
    labels = {attr.SESSION_NAME: session_name, attr.STATUS: status}
    if node is not None:
        labels[attr.NODE_NAME] = node
    return labels


class _RunMetrics:
    """The instruments of one meter, the queue of durations and the totals behind the counters.

    One per meter: a pipeline rebuilt on a host's meter provider gets the same
    meter back, whose observable counters cannot be registered a second time.
    """

    def __init__(self, meter: Meter) -> None:
        self._session_duration = meter.create_histogram(
            SESSION_DURATION,
            unit="s",
            description="Wall-clock duration of railtracks sessions",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self._node_duration = meter.create_histogram(
            NODE_DURATION,
            unit="s",
            description="Duration of railtracks node calls",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.pending: collections.deque[tuple[_Key, float]] = collections.deque()
        self._totals: dict[_Key, int] = {}
        self._labels: dict[_Key, dict[str, str]] = {}
        self._lock = threading.Lock()
        meter.create_observable_counter(
            SESSIONS,
            callbacks=[self._observe_sessions],
            description="Finished railtracks sessions",
        )
        meter.create_observable_counter(
            NODE_CALLS, callbacks=[self._observe_node_calls], description="Finished node calls"
        )

    def add(self, key: _Key, seconds: float) -> None:
        pending = self.pending
        pending.append((key, seconds))  # deque.append is atomic: no lock on the hot path
        if len(pending) > MAX_PENDING:
            with self._lock:
                if pending:
                    self._record(*pending.popleft())

    def _record(self, key: _Key, seconds: float) -> None:
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = _labels(key)
        self._totals[key] = self._totals.get(key, 0) + 1
        histogram = self._session_duration if key[2] is None else self._node_duration
        histogram.record(seconds, labels)

    def drain(self) -> None:
        """Record every queued duration (a reader is collecting, or a flush)."""
        with self._lock:
            pending = self.pending
            for _ in range(len(pending)):
                self._record(*pending.popleft())

    def _observe(self, sessions: bool) -> list[Observation]:
        self.drain()
        with self._lock:
            return [
                Observation(total, self._labels[key])
                for key, total in self._totals.items()
                if (key[2] is None) is sessions
            ]

    def _observe_sessions(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(sessions=True)

    def _observe_node_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(sessions=False)


RUN_METRICS: Final = PerMeter(_RunMetrics)


class MetricsSpanProcessor(SpanProcessor):
    """Queues each railtracks span's duration; the meter's readers see it when they collect."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._metrics = RUN_METRICS.get(meter)
        self._usage = usage_metrics(meter)  # model calls' tokens (SPEC 15)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        start, end = span.start_time, span.end_time
        if scope is None or scope.name != _SCOPE or start is None or not end:
            return
        attributes = span.attributes or {}
        node = attributes.get(attr.NODE_NAME)
        key: _Key = (
            str(attributes.get(attr.SESSION_NAME, attr.UNNAMED_SESSION)),
            str(attributes.get(attr.STATUS, attr.STATUS_COMPLETED)),
            None if node is None else str(node),
        )
        self._metrics.add(key, (end - start) / 1e9)

    def shutdown(self) -> None:
        self._usage.stop()
        self._metrics.drain()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._metrics.drain()
        return True
