"""Collects each session's finished spans: the one source the state is built from.

A span belongs to a session by trace membership and parentage, not only by
railtracks' own attributes: a span carrying ``railtracks.session.id`` (the
session span, its nodes) belongs to that session, and any other span (an HTTP
client's, a manual ``start_as_current_span``) belongs to the session of its
parent. Nested sessions carry their own identifier, so their spans, and the
foreign spans under them, stay theirs. Spans are kept in their compact form
(``_compact``): a long session must not fill the garbage collector's heap.
"""

from __future__ import annotations

import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ._attributes import SESSION_ID
from ._compact import FinishedSpan


class SessionSpanCollector(SpanProcessor):
    """Keeps the finished spans of every open session, keyed by ``railtracks.session.id``."""

    def __init__(self) -> None:
        self._buffers: dict[str, list[FinishedSpan]] = {}
        # span id -> session id for every open span of an open session: a span
        # finds its session through its parent's entry. An entry goes when its
        # span ends, so closing a session of any size touches only what is open.
        self._owners: dict[int, str] = {}
        self._open: dict[str, set[int]] = {}
        self._lock = threading.Lock()

    def open(self, session_id: str) -> None:
        with self._lock:
            self._buffers[session_id] = []
            self._open[session_id] = set()

    def close(self, session_id: str) -> list[FinishedSpan]:
        """Stop collecting for a session and hand back its spans in end order."""
        with self._lock:
            owners = self._owners
            for span_id in self._open.pop(session_id, ()):
                if owners.get(span_id) == session_id:
                    del owners[span_id]
            return self._buffers.pop(session_id, [])

    def _session_of(self, span: ReadableSpan) -> str | None:
        attributes = span.attributes
        session_id = attributes.get(SESSION_ID) if attributes is not None else None
        if type(session_id) is str:
            return session_id
        parent = span.parent
        return self._owners.get(parent.span_id) if parent is not None else None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        session_id = self._session_of(span)
        if session_id is None:
            return
        still_open = self._open.get(session_id)
        if still_open is None:  # not an open session (already closed, or never opened here)
            return
        span_id = span.context.span_id
        self._owners[span_id] = session_id  # dict and set updates are atomic under the GIL
        still_open.add(span_id)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        span_id = context.span_id if context is not None else None
        session_id = self._owners.pop(span_id, None) if span_id is not None else None
        if session_id is None:
            session_id = self._session_of(span)
            if session_id is None:
                return
        else:
            still_open = self._open.get(session_id)
            if still_open is not None:
                still_open.discard(span_id)
        buffer = self._buffers.get(session_id)
        if buffer is not None:
            buffer.append(FinishedSpan(span))  # list.append is atomic: no lock on the hot path

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
