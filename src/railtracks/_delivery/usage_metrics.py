"""Model-call metrics (SPEC 15): the GenAI token histogram and a railtracks tokens counter.

``gen_ai.client.token.usage`` follows the GenAI metric conventions: a
histogram of tokens per model call, unit ``{token}``, with
``gen_ai.token.type`` (``input`` or ``output``), ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model`` and
``gen_ai.response.model`` where the call's span says them, and the
conventions' advised buckets. ``railtracks.tokens`` counts tokens by
``railtracks.usage.model``, ``railtracks.node.name`` (the node that made the
calls), ``railtracks.session.name`` and ``gen_ai.token.type``: in Prometheus
``railtracks_tokens_total``. Both are fed by ``_recording.usage_rollup`` as
spans end (a model call is rare next to a node call: recorded at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.metrics import Meter

from .._logs.log import warn_once
from .._recording import attributes as attr
from .._recording.usage import Counts, Tally, provider_of
from .._recording.usage_rollup import ROLLUP
from .per_meter import PerMeter

TOKEN_USAGE: Final = "gen_ai.client.token.usage"
TOKENS: Final = "railtracks.tokens"
USAGE_MODEL: Final = "railtracks.usage.model"
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
_DEFAULT_OPERATION: Final = "chat"


def _call_labels(model: str, attributes: Mapping[str, Any] | None) -> dict[str, str]:
    labels = {attr.GEN_AI_OPERATION_NAME: _DEFAULT_OPERATION, attr.GEN_AI_REQUEST_MODEL: model}
    if attributes is None:  # rt.record_usage: the model the user named
        return labels
    for key in (attr.GEN_AI_OPERATION_NAME, attr.GEN_AI_REQUEST_MODEL, attr.GEN_AI_RESPONSE_MODEL):
        value = attributes.get(key)
        if isinstance(value, str) and value:
            labels[key] = value[:200]
    provider = provider_of(attributes)
    if provider is not None:
        labels[attr.GEN_AI_PROVIDER_NAME] = provider
    return labels


class UsageMetrics:
    """The two instruments of one meter, fed by the usage roll-up while it listens."""

    def __init__(self, meter: Meter) -> None:
        self._histogram = meter.create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=[float(b) for b in TOKEN_BUCKETS],
        )
        self._counter = meter.create_counter(
            TOKENS, unit="{token}", description="Tokens of model calls, by model and node"
        )

    def on_call(self, model: str, counts: Counts, attributes: Mapping[str, Any] | None) -> None:
        try:
            self._record_call(model, counts, attributes)
        except Exception as exc:  # metrics never change a run: one warning
            warn_once("usage-metrics", f"recording token metrics failed: {exc!r}")

    def _record_call(
        self, model: str, counts: Counts, attributes: Mapping[str, Any] | None
    ) -> None:
        labels = _call_labels(model, attributes)
        self._histogram.record(counts.input_tokens, {**labels, attr.GEN_AI_TOKEN_TYPE: "input"})
        self._histogram.record(counts.output_tokens, {**labels, attr.GEN_AI_TOKEN_TYPE: "output"})

    def on_node(self, node: str, session: str, own: Tally) -> None:
        try:
            self._count_node(node, session, own)
        except Exception as exc:  # metrics never change a run: one warning
            warn_once("usage-metrics", f"recording token metrics failed: {exc!r}")

    def _count_node(self, node: str, session: str, own: Tally) -> None:
        for model, counts in own.models.items():
            labels = {USAGE_MODEL: model, attr.NODE_NAME: node, attr.SESSION_NAME: session}
            for kind, tokens in (("input", counts.input_tokens), ("output", counts.output_tokens)):
                if tokens:
                    self._counter.add(tokens, {**labels, attr.GEN_AI_TOKEN_TYPE: kind})

    def start(self) -> None:
        ROLLUP.listen(self.on_call, self.on_node)

    def stop(self) -> None:
        ROLLUP.unlisten(self.on_call, self.on_node)


_USAGE_METRICS: Final = PerMeter(UsageMetrics)


def usage_metrics(meter: Meter) -> UsageMetrics:
    """The usage instruments of ``meter`` (made once per meter), listening."""
    found = _USAGE_METRICS.get(meter)
    found.stop()  # listening once, however many pipelines were built on this meter
    found.start()
    return found
