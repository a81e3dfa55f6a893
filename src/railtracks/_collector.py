"""Collects each session's finished spans: the one source the state is built from."""

from __future__ import annotations

import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ._attributes import SESSION_ID


class SessionSpanCollector(SpanProcessor):
    """Keeps the finished spans of every open session, keyed by ``railtracks.session.id``."""

    def __init__(self) -> None:
        self._buffers: dict[str, list[ReadableSpan]] = {}
        self._lock = threading.Lock()

    def open(self, session_id: str) -> None:
        with self._lock:
            self._buffers[session_id] = []

    def close(self, session_id: str) -> list[ReadableSpan]:
        """Stop collecting for a session and hand back its spans in end order."""
        with self._lock:
            return self._buffers.pop(session_id, [])

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes
        if attributes is None:
            return
        session_id = attributes.get(SESSION_ID)
        if type(session_id) is not str:
            return
        buffer = self._buffers.get(session_id)
        if buffer is not None:
            buffer.append(span)  # list.append is atomic under the GIL: no lock on the hot path

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
