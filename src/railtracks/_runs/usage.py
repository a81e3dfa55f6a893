"""The ``usage`` of each node and of the session in a saved state (SPEC 15).

Computed from the spans when the state is assembled (on the state writer's
thread, never on the node-call path), by the same rules as the totals set on
spans as they end (``_recording.usage_rollup``): each model call (a span with
GenAI or OpenInference token counts, or an ``rt.record_usage`` event) counts
for its span and every ancestor, and a model-call span is the whole call (the
counts of spans under it are not added again). Spans re-emitted from another
process are here like local ones, so their usage is in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from .._logs.log import warn_once
from .._recording import attributes as attr
from .._recording.compact import FinishedSpan
from .._recording.usage import Counts, Tally, model_call, recorded_calls
from .._recording.usage_cost import Prices

PRICE_TABLE_WAIT: Final = 5.0  # seconds the state may wait for genai-prices to load
_MAX_DEPTH: Final = 100_000  # a parent chain longer than the session: malformed ids
# A model's figures in ``railtracks.usage.by_model``, in ``Counts``' argument order.
_FIELDS: Final = ("calls", "input_tokens", "output_tokens", "cached_input_tokens",
                  "reasoning_tokens")  # fmt: skip
_MAX_COUNT: Final = 10**15


def _own(span: FinishedSpan) -> tuple[Tally | None, bool]:
    """``(the span's own calls or None, whether the span is itself a model call)``."""
    call = model_call(span.attributes)
    tally: Tally | None = None
    if call is not None:
        tally = Tally()
        tally.add(*call)
    if span.raw_events:
        recorded = recorded_calls((name, values) for name, _, values in span.raw_events)
        if recorded:
            tally = tally or Tally()
            tally.merge(recorded)
    return tally, call is not None


class StateUsage:
    """Every span's usage (its own calls and its descendants'), and the session's."""

    def __init__(
        self, spans: Sequence[FinishedSpan], session_span: FinishedSpan | None, prices: Prices
    ) -> None:
        self._prices = prices
        self.by_span: dict[int, Tally] = {}
        self.session = Tally()
        try:
            self._sum(spans, session_span)
        except Exception as exc:  # the state is saved all the same, without usage
            self.by_span, self.session = {}, Tally()
            warn_once("state-usage", f"summing model usage for the state failed: {exc!r}")

    def _sum(self, spans: Sequence[FinishedSpan], session_span: FinishedSpan | None) -> None:
        owned: list[tuple[FinishedSpan, Tally]] = []
        calls: set[int] = set()
        for span in spans:
            tally, is_call = _own(span)
            if tally is not None:
                owned.append((span, tally))
                if is_call:
                    calls.add(span.span_id)
        if owned:
            parents = {span.span_id: span.parent_id for span in spans}
            for span, tally in owned:
                self._add_up(span.span_id, tally, parents, calls)
        if session_span is not None and session_span.raw_events:  # rt.record_usage outside nodes
            own, _ = _own(session_span)
            if own is not None:
                self.session.merge(own)

    def _add_up(
        self, span_id: int, tally: Tally, parents: dict[int, int | None], calls: set[int]
    ) -> None:
        self._tally(span_id).merge(tally)
        current: int | None = parents.get(span_id)
        for _ in range(_MAX_DEPTH):
            if current is None or current not in parents:
                self.session.merge(tally)  # reached the top of the session's spans
                return
            if current in calls:
                return  # a model call's own counts are the whole call
            self._tally(current).merge(tally)
            current = parents[current]

    def _tally(self, span_id: int) -> Tally:
        found = self.by_span.get(span_id)
        if found is None:
            found = self.by_span[span_id] = Tally()
        return found

    def record_of(self, span_id: int) -> dict[str, Any] | None:
        tally = self.by_span.get(span_id)
        return None if tally is None else self._record(tally)

    def session_record(self) -> dict[str, Any] | None:
        return self._record(self.session) if self.session else None

    def _record(self, tally: Tally) -> dict[str, Any] | None:
        try:
            return tally.record(self._prices, PRICE_TABLE_WAIT)
        except Exception as exc:  # the state is saved all the same, without this usage
            warn_once("state-usage", f"summing model usage for the state failed: {exc!r}")
            return None

    def nodes_with_usage(
        self, record_of: Callable[[FinishedSpan], dict[str, Any]]
    ) -> Callable[[FinishedSpan], dict[str, Any]]:
        """``record_of`` whose records carry ``usage`` where the span has some."""
        if not self.by_span:
            return record_of

        def with_usage(span: FinishedSpan) -> dict[str, Any]:
            record = record_of(span)
            usage = self.record_of(span.span_id)
            if usage is not None:
                record["usage"] = usage
            return record

        return with_usage


def add_session_usage(session: dict[str, Any] | None, usage: StateUsage) -> None:
    """The session record's ``usage`` (left out when no model was called)."""
    if session is None:
        return
    record = usage.session_record()
    if record is not None:
        session["usage"] = record


def usage_from_attributes(attributes: Mapping[str, Any], prices: Prices) -> dict[str, Any] | None:
    """A node's or session's ``usage`` from the totals its span carries as it ended.

    For a state assembled from a journal, whose spans are never all in memory:
    the span's ``railtracks.usage.by_model`` (set by the roll-up as it ended,
    its descendants' calls included) is read back, as untrusted input, and
    priced again like the in-memory path. None when absent or malformed.
    """
    text = attributes.get(attr.USAGE_BY_MODEL)
    try:
        tally = _tally_of(text)
    except ValueError:
        return None
    if not tally:
        return None
    try:
        return tally.record(prices, PRICE_TABLE_WAIT)
    except Exception as exc:  # the state is saved all the same, without this usage
        warn_once("state-usage", f"summing model usage for the state failed: {exc!r}")
        return None


def _tally_of(text: object) -> Tally:
    """The figures of a ``railtracks.usage.by_model`` value (empty when there is none).

    ValueError when the value is malformed.
    """
    models = json.loads(text) if isinstance(text, str) else None
    tally = Tally()
    if not isinstance(models, dict):
        return tally  # empty: no usage
    for model, figures in models.items():
        values = [figures.get(field) for field in _FIELDS] if isinstance(figures, dict) else []
        counts = [v for v in values if type(v) is int and 0 <= v <= _MAX_COUNT]
        if len(counts) != len(_FIELDS):
            raise ValueError(f"bad figures for model {model!r}")
        tally.add(model, Counts(*counts))
    return tally
