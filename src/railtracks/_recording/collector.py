"""Collects each session's finished spans: the one source the state is built from.

A span belongs to a session by trace membership and parentage, not only by
railtracks' own attributes: a span carrying ``railtracks.session.id`` (the
session span, its nodes) belongs to that session, and any other span (an HTTP
client's, a manual ``start_as_current_span``) belongs to the session of its
parent. Nested sessions carry their own identifier, so their spans, and the
foreign spans under them, stay theirs. Spans are kept in their compact form
(``_recording.compact``): a long session must not fill the garbage collector's heap.

A session saved to disk opens with a *journal queue* (SPEC 13): every record
of its spans is appended to that queue too, and every railtracks span of it
that is running is in the journal's *running* dict (span id -> span) until it
ends (the journal thread, ``_runs.journal``, writes both out and empties the
queue). A span that ended is never held there: it is freed at once. Such a session
keeps at most ``keep`` records in memory (``Session.spans`` of a small
session); its state is built from the journal, never from what is kept here.
Past ``keep``, a span is queued as the text of its journal line
(``compact.journal_text``): made once, with no record to make and free.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .attributes import SESSION_ID
from .compact import JournalText, Record, attribute_dict, journal_text, record


def _session_of_live_parent(parent_id: int, parent_context: Context | None) -> str | None:
    """The session of the span object the child was started under, when it is a railtracks span."""
    parent = trace.get_current_span(parent_context)
    if parent.get_span_context().span_id != parent_id:
        return None
    attributes = getattr(parent, "attributes", None)  # a NonRecordingSpan has none
    session_id = attributes.get(SESSION_ID) if attributes is not None else None
    return session_id if type(session_id) is str else None


class SessionSpanCollector(SpanProcessor):
    """Keeps the finished spans of every open session, keyed by ``railtracks.session.id``."""

    def __init__(self) -> None:
        self._buffers: dict[str, list[Record]] = {}
        # span id -> session id for every open span of other instrumentation in
        # an open session: its children find their session through it (a
        # railtracks span names its session itself). An entry goes when its
        # span ends, so closing a session of any size touches only what is open.
        self._owners: dict[int, str] = {}
        self._open: dict[str, set[int]] = {}
        # session id -> (its journal queue, the most records kept in its buffer, its running spans)
        self._journals: dict[str, tuple[deque[Any], int, dict[int, Any]]] = {}
        self._lock = threading.Lock()

    def open(
        self,
        session_id: str,
        journal: deque[Any] | None = None,
        keep: int = 0,
        running: dict[int, Any] | None = None,
    ) -> None:
        """Collect a session's spans (also into ``journal``, keeping ``keep`` records, if given)."""
        with self._lock:
            self._buffers[session_id] = []
            self._open[session_id] = set()
            if journal is not None:
                self._journals[session_id] = (journal, keep, {} if running is None else running)

    def close(self, session_id: str) -> list[Record]:
        """Stop collecting for a session and hand back its spans in end order."""
        with self._lock:
            owners = self._owners
            self._journals.pop(session_id, None)
            for span_id in self._open.pop(session_id, ()):
                if owners.get(span_id) == session_id:
                    del owners[span_id]
            return self._buffers.pop(session_id, [])

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        own_session = attribute_dict(span).get(SESSION_ID)
        if type(own_session) is str:
            # railtracks' own span: its attribute names its session again at the end
            if self._journals:
                journal = self._journals.get(own_session)
                if journal is not None:  # dict updates are atomic under the GIL: no lock needed
                    journal[2][span.get_span_context().span_id] = span
            return
        # another instrumentation's span (from whatever provider a host installed: read
        # defensively): its session is its parent's
        parent = getattr(span, "parent", None)
        context = getattr(span, "context", None)
        if parent is None or context is None:
            return
        session_id = self._owners.get(parent.span_id) or _session_of_live_parent(
            parent.span_id, parent_context
        )
        if session_id is None:
            return
        still_open = self._open.get(session_id)
        if still_open is None:  # not an open session (already closed, or never opened here)
            return
        span_id = context.span_id
        self._owners[span_id] = session_id  # dict and set updates are atomic under the GIL
        still_open.add(span_id)

    def on_end(self, span: ReadableSpan) -> None:
        session_id = None
        if self._owners:  # only other instrumentation's spans are entered there
            context = getattr(span, "context", None)
            if context is not None:
                session_id = self._owners.pop(context.span_id, None)
                if session_id is not None:
                    still_open = self._open.get(session_id)
                    if still_open is not None:
                        still_open.discard(context.span_id)
        if session_id is not None:
            self._keep(session_id, span)
            return
        if not self._buffers:  # no session open
            return
        # railtracks' own span, found by its attribute
        session_id = attribute_dict(span).get(SESSION_ID)
        if type(session_id) is str:
            self._keep(session_id, span)

    def _keep(self, session_id: str, span: ReadableSpan) -> None:
        buffer = self._buffers.get(session_id)
        if buffer is None:
            return
        journal = self._journals.get(session_id) if self._journals else None
        if journal is None:
            buffer.append(record(span))  # list.append is atomic: no lock needed
            return
        item: Record | JournalText
        if len(buffer) < journal[1]:
            item = record(span)
            buffer.append(item)
        else:  # not kept: only its journal line's text is made (once, here)
            item = journal_text(span) or record(span)
        # off the running spans before it is queued (both hold the span id at [2]), so
        # the journal never writes it as started after it ended
        journal[2].pop(item[2], None)
        journal[0].append(item)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
