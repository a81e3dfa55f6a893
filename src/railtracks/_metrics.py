"""Run metrics derived from finished spans (SPEC 5).

``railtracks.session.duration`` and ``railtracks.node.duration`` histograms in
seconds (buckets from 1 ms to 5 min), ``railtracks.sessions`` and
``railtracks.node.calls`` counters; attributes ``railtracks.session.name``
(``unnamed`` when the session has none), ``railtracks.node.name`` and
``railtracks.status``.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.context import Context
from opentelemetry.metrics import Meter
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from . import _attributes as attr

SECONDS_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
SESSION_DURATION: Final = "railtracks.session.duration"
NODE_DURATION: Final = "railtracks.node.duration"
SESSIONS: Final = "railtracks.sessions"
NODE_CALLS: Final = "railtracks.node.calls"
_SCOPE: Final = "railtracks"


class MetricsSpanProcessor(SpanProcessor):
    """Records the four railtracks instruments as railtracks spans end."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
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
        self._sessions = meter.create_counter(SESSIONS, description="Finished railtracks sessions")
        self._node_calls = meter.create_counter(NODE_CALLS, description="Finished node calls")

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if scope is None or scope.name != _SCOPE or span.start_time is None or not span.end_time:
            return
        attributes = span.attributes or {}
        labels = {
            attr.SESSION_NAME: str(attributes.get(attr.SESSION_NAME, attr.UNNAMED_SESSION)),
            attr.STATUS: str(attributes.get(attr.STATUS, attr.STATUS_COMPLETED)),
        }
        seconds = (span.end_time - span.start_time) / 1e9
        node = attributes.get(attr.NODE_NAME)
        if node is None:
            self._session_duration.record(seconds, labels)
            self._sessions.add(1, labels)
        else:
            labels[attr.NODE_NAME] = str(node)
            self._node_duration.record(seconds, labels)
            self._node_calls.add(1, labels)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
