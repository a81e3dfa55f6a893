"""The sampler of railtracks' own providers: export as sampled, record everything.

Sampling decides what is exported, never what railtracks records for its
console and state (SPEC 5): a span the configured sampler would drop is still
recorded, unsampled.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class RecordLocallySampler(Sampler):
    """Defers to ``inner`` for export, but turns DROP into RECORD_ONLY."""

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    @property
    def inner(self) -> Sampler:
        """The sampler that decides what is exported."""
        return self._inner

    def should_sample(  # noqa: PLR0917  # the signature is the SDK's Sampler interface
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if self._inner is DEFAULT_ON:  # the default, decided here without three more calls
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, None)
            decision = (
                Decision.RECORD_AND_SAMPLE if parent.trace_flags.sampled else Decision.RECORD_ONLY
            )
            return SamplingResult(decision, attributes, parent.trace_state)
        result = self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP:
            # A DROP result carries no attributes (the SDK's samplers return
            # None): the span keeps the ones it was started with.
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordLocally{{{self._inner.get_description()}}}"
