"""Token usage summed up the span tree as spans end, off the node-call path (SPEC 15).

Children end before their parents, so a span's usage is complete when it
ends: a model call's span (``usage.model_call``) adds its figures to its
parent's entry, a node's span adds its entry's total, and a node's or a
session's span, as it ends, gets its total as ``railtracks.usage.*``
attributes (``close``, called just before ``end()``: an ended span takes no
attribute). Entries exist only for spans above a model call, so a run that
calls no model pays one empty-dict check per node.

A span with token counts of its own is taken as the whole call: counts on
spans under it (an SDK's HTTP-level instrumentation under a framework's
model-call span) are not added again. Spans that come back from another
process (a segment reply) end here through the processors like local ones,
so their usage is summed the same way.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import AttributeValue

from . import attributes as attr
from .fastspan import RailtracksSpan
from .usage import Counts, Tally, model_call
from .usage_cost import TABLE, Prices

_SCOPE: Final = "railtracks"
# (model, one call's counts, the call span's attributes or None for rt.record_usage)
CallListener = Callable[[str, Counts, Mapping[str, Any] | None], None]
# (node name, session name, the node's own calls: not its descendants')
NodeListener = Callable[[str, str, Tally], None]


class _Entry:
    """Usage under one open span: ``own`` reaches the nearest node, ``total`` everything."""

    __slots__ = ("calls", "own", "total")

    def __init__(self) -> None:
        self.own = Tally()
        self.total = Tally()
        # the model calls under it, told to the listeners when they reach a node: a
        # call found inside another call's span (which is the whole call) never is
        self.calls: list[tuple[str, Counts, Mapping[str, Any] | None]] = []


def _events(span: ReadableSpan) -> Iterable[tuple[str, Mapping[str, Any]]]:
    return ((event.name, event.attributes or {}) for event in span.events)


def _recorded(span: ReadableSpan) -> list[tuple[str, Counts]]:
    """The ``rt.record_usage`` calls on a railtracks span, one by one."""
    calls = []
    for name, attributes in _events(span):
        if name == attr.EVENT_USAGE:
            call = model_call(attributes)
            if call is not None:
                calls.append(call)
    return calls


def _is_railtracks(span: ReadableSpan, attributes: Mapping[str, Any]) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == _SCOPE and attr.SESSION_ID in attributes


class UsageRollup(SpanProcessor):
    """Entries by open span id; ``pending`` is read (not written) by the node-call path."""

    def __init__(self) -> None:
        self.pending: dict[int, _Entry] = {}
        self._closed: dict[int, _Entry] = {}  # closed by ``close``, propagated by ``on_end``
        self._lock = threading.Lock()
        self._call_listeners: list[CallListener] = []
        self._node_listeners: list[NodeListener] = []
        self.listener_failures = 0  # metrics listeners that raised, counted

    def listen(self, on_call: CallListener, on_node: NodeListener) -> None:
        """Be told of each model call and of each node's own usage (the metrics)."""
        with self._lock:
            self._call_listeners.append(on_call)
            self._node_listeners.append(on_node)

    def unlisten(self, on_call: CallListener, on_node: NodeListener) -> None:
        with self._lock:
            self._call_listeners = [f for f in self._call_listeners if f is not on_call]
            self._node_listeners = [f for f in self._node_listeners if f is not on_node]

    def note_recorded(self, span: object, span_id: int) -> None:
        """An ``rt.record_usage`` event was added to this open span: read it when it ends."""
        TABLE.warm()
        with self._lock:
            if span_id in self.pending:
                return
            self.pending[span_id] = _Entry()
        self._drop_with(span, span_id)

    def _drop_with(self, span: object, span_id: int) -> None:
        """Forget ``span_id``'s entry when ``span`` is freed without ending through here.

        A node's span on a remote worker ends into its segment's reply, not
        into these processors: without this its entry would stay forever.
        """
        with contextlib.suppress(TypeError):  # no weak reference: a span that ends here anyway
            weakref.finalize(span, self._drop, span_id)

    def _drop(self, span_id: int) -> None:
        with self._lock:
            self.pending.pop(span_id, None)
            self._closed.pop(span_id, None)

    def close(self, span: ReadableSpan, prices: Prices) -> dict[str, AttributeValue]:
        """The ``railtracks.usage.*`` attributes of a node's or session's span about to end."""
        span_id = span.context.span_id if span.context is not None else 0
        with self._lock:
            entry = self.pending.pop(span_id, None)
        if entry is None:
            return {}
        calls = _recorded(span) if span.events else []
        for model, counts in calls:
            entry.own.add(model, counts)
            entry.total.add(model, counts)
            self._tell_call(model, counts, None)
        with self._lock:
            self._closed[span_id] = entry
        self._drop_with(span, span_id)
        return entry.total.span_attributes(prices) if entry.total else {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if (
            type(span) is RailtracksSpan
            and not self.pending
            and not self._closed
            and type(span._events) is tuple  # no event at all, so no rt.record_usage
        ):
            return
        context = span.context
        if context is None:
            return
        attributes = span.attributes or {}
        if _is_railtracks(span, attributes):
            self._end_own(span, context.span_id, attributes)
        else:
            self._end_foreign(span, context.span_id, attributes)

    def _end_own(self, span: ReadableSpan, span_id: int, attributes: Mapping[str, Any]) -> None:
        entry = self._closed.pop(span_id, None) if self._closed else None
        if entry is None:
            # not closed by ``close``: ended by its session, or re-emitted from a segment
            with self._lock:
                entry = self.pending.pop(span_id, None)
            calls = _recorded(span) if span.events else []
            if entry is None and not calls:
                return
            entry = entry or _Entry()
            for model, counts in calls:
                entry.own.add(model, counts)
                entry.total.add(model, counts)
                self._tell_call(model, counts, None)
        for call in entry.calls:
            self._tell_call(*call)
        node = attributes.get(attr.NODE_NAME)
        if entry.own and isinstance(node, str):
            session = attributes.get(attr.SESSION_NAME)
            name = session if isinstance(session, str) else attr.UNNAMED_SESSION
            for listener in self._node_listeners:
                try:
                    listener(node, name, entry.own)
                except Exception:
                    self.listener_failures += 1
        if entry.total:
            self._add_to_parent(span, None, entry.total, [])

    def _end_foreign(self, span: ReadableSpan, span_id: int, attributes: Mapping[str, Any]) -> None:
        with self._lock:
            entry = self.pending.pop(span_id, None) if self.pending else None
        call = model_call(attributes)
        if call is not None:  # the whole call: what is under it is part of it
            TABLE.warm()  # a model call: its price may be wanted soon
            tally = Tally()
            tally.add(*call)
            self._add_to_parent(span, tally, tally, [(*call, dict(attributes))])
        elif entry is not None:
            self._add_to_parent(span, entry.own, entry.total, entry.calls)

    def _add_to_parent(
        self,
        span: ReadableSpan,
        own: Tally | None,
        total: Tally,
        calls: list[tuple[str, Counts, Mapping[str, Any] | None]],
    ) -> None:
        parent = span.parent
        if parent is None:
            return
        with self._lock:
            entry = self.pending.get(parent.span_id)
            if entry is None:
                entry = self.pending[parent.span_id] = _Entry()
            if own is not None:
                entry.own.merge(own)
            entry.total.merge(total)
            entry.calls.extend(calls)

    def _tell_call(self, model: str, counts: Counts, attributes: Mapping[str, Any] | None) -> None:
        for listener in self._call_listeners:
            try:
                listener(model, counts, attributes)
            except Exception:  # a metrics failure never stops the sums (the fan-out warns)
                self.listener_failures += 1

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


ROLLUP: Final = UsageRollup()
