"""Token usage of model calls: read from spans, summed by model (SPEC 15).

A model call is any span another instrumentation made with the GenAI
conventions' token counts (``gen_ai.usage.input_tokens``/``output_tokens``, or
their older ``prompt_tokens``/``completion_tokens`` names), or OpenInference's
(``llm.token_count.*``), and each ``rt.record_usage`` event on a node's span.
A ``Tally`` sums such calls by model; ``record`` makes the JSON-ready form the
state, the viewer and the CLI show, ``span_attributes`` the ``railtracks.usage.*``
attributes a node's span gets when it ends. Cost is exact (``Decimal``), from
the prices ``usage_cost`` finds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from . import attributes as attr
from .usage_cost import Prices, cost_of

UNKNOWN_MODEL: Final = "unknown"
# (input, output, cached input, reasoning) keys, in the order tried: the GenAI
# conventions first, then their older names, then OpenInference's.
_INPUT_KEYS: Final = (attr.GEN_AI_INPUT_TOKENS, attr.GEN_AI_PROMPT_TOKENS, attr.LLM_PROMPT_TOKENS)
_OUTPUT_KEYS: Final = (
    attr.GEN_AI_OUTPUT_TOKENS,
    attr.GEN_AI_COMPLETION_TOKENS,
    attr.LLM_COMPLETION_TOKENS,
)
_CACHED_KEYS: Final = (attr.GEN_AI_CACHE_READ_TOKENS, attr.LLM_CACHE_READ_TOKENS)
_REASONING_KEYS: Final = (attr.GEN_AI_REASONING_TOKENS, attr.LLM_REASONING_TOKENS)
# The model asked for names a call (as prices are configured); else the one that answered.
_MODEL_KEYS: Final = (attr.GEN_AI_REQUEST_MODEL, attr.GEN_AI_RESPONSE_MODEL, attr.LLM_MODEL_NAME)
_PROVIDER_KEYS: Final = (attr.GEN_AI_PROVIDER_NAME, attr.GEN_AI_SYSTEM, attr.LLM_PROVIDER)
MAX_TOKENS: Final = 10**15  # past this a count is not a count: hostile or broken input


class Counts:
    """One model's figures: calls and tokens (cached and reasoning are parts of input/output)."""

    __slots__ = (
        "cached_input_tokens",
        "calls",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
    )

    def __init__(
        self, calls: int = 0, input_tokens: int = 0, output_tokens: int = 0, cached: int = 0,
        reasoning: int = 0,
    ) -> None:  # fmt: skip
        self.calls = calls
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cached_input_tokens = cached
        self.reasoning_tokens = reasoning

    def add(self, other: Counts) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.reasoning_tokens += other.reasoning_tokens

    def fields(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


class Tally:
    """Figures by model, summed (``add``, ``merge``); empty until a call is added."""

    __slots__ = ("models",)

    def __init__(self) -> None:
        self.models: dict[str, Counts] = {}

    def __bool__(self) -> bool:
        return bool(self.models)

    def add(self, model: str, counts: Counts) -> None:
        found = self.models.get(model)
        if found is None:
            found = self.models[model] = Counts()
        found.add(counts)

    def merge(self, other: Tally) -> None:
        for model, counts in other.models.items():
            self.add(model, counts)

    def total(self) -> Counts:
        total = Counts()
        for counts in self.models.values():
            total.add(counts)
        return total

    def record(self, prices: Prices, wait: float = 0.0) -> dict[str, Any]:
        """The JSON-ready usage: totals, ``cost_usd`` (a decimal string, or None) and ``models``."""
        models: dict[str, Any] = {}
        cost = Decimal(0)
        priced = False
        for model in sorted(self.models):
            counts = self.models[model]
            price = cost_of(model, counts.input_tokens, counts.output_tokens,
                            counts.cached_input_tokens, prices, wait=wait)  # fmt: skip
            models[model] = {**counts.fields(), "cost_usd": _decimal_text(price)}
            if price is not None:
                cost += price
                priced = True
        record: dict[str, Any] = {
            **self.total().fields(),
            "cost_usd": _decimal_text(cost) if priced else None,
            "models": models,
        }
        unpriced = [model for model, found in models.items() if found["cost_usd"] is None]
        if priced and unpriced:  # the cost is of the other models only: say so
            record["unpriced_models"] = unpriced
        return record

    def span_attributes(self, prices: Prices) -> dict[str, AttributeValue]:
        """The ``railtracks.usage.*`` attributes of a node or session span that ends."""
        record = self.record(prices)
        attributes: dict[str, AttributeValue] = {
            attr.USAGE_CALLS: record["calls"],
            attr.USAGE_INPUT_TOKENS: record["input_tokens"],
            attr.USAGE_OUTPUT_TOKENS: record["output_tokens"],
            attr.USAGE_CACHED_INPUT_TOKENS: record["cached_input_tokens"],
            attr.USAGE_REASONING_TOKENS: record["reasoning_tokens"],
            attr.USAGE_MODELS: tuple(record["models"]),
            attr.USAGE_BY_MODEL: json.dumps(record["models"], separators=(",", ":")),
        }
        if record["cost_usd"] is not None:
            attributes[attr.USAGE_COST_USD] = record["cost_usd"]
        if "unpriced_models" in record:
            attributes[attr.USAGE_UNPRICED_MODELS] = tuple(record["unpriced_models"])
        return attributes


def _decimal_text(value: Decimal | None) -> str | None:
    """``value`` as a plain decimal string (no exponent, no trailing zeros), or None."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _count(attributes: Mapping[str, Any], keys: Iterable[str]) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None  # not a count: the span does not follow the conventions
        if value != value or value < 0 or value > MAX_TOKENS:  # noqa: PLR0124  # NaN
            return None
        return int(value)
    return None


def _text(attributes: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


def model_call(attributes: Mapping[str, Any]) -> tuple[str, Counts] | None:
    """``(model, counts of one call)`` when ``attributes`` carry token counts, else None."""
    inputs = _count(attributes, _INPUT_KEYS)
    outputs = _count(attributes, _OUTPUT_KEYS)
    if inputs is None and outputs is None:
        return None
    counts = Counts(
        1,
        inputs or 0,
        outputs or 0,
        _count(attributes, _CACHED_KEYS) or 0,
        _count(attributes, _REASONING_KEYS) or 0,
    )
    return _text(attributes, _MODEL_KEYS) or UNKNOWN_MODEL, counts


def provider_of(attributes: Mapping[str, Any]) -> str | None:
    """The call's provider: ``gen_ai.provider.name``, ``gen_ai.system`` or ``llm.provider``."""
    return _text(attributes, _PROVIDER_KEYS)


def recorded_calls(events: Iterable[tuple[str, Mapping[str, Any]]]) -> Tally:
    """The ``rt.record_usage`` calls among a span's ``(event name, attributes)``."""
    tally = Tally()
    for name, attributes in events:
        if name == attr.EVENT_USAGE:
            call = model_call(attributes)
            if call is not None:
                tally.add(*call)
    return tally


def usage_event(
    model: str, input_tokens: int, output_tokens: int, cached: int, reasoning: int
) -> dict[str, AttributeValue]:
    """The attributes of one ``rt.record_usage`` event (``model_call`` reads them back)."""
    attributes: dict[str, AttributeValue] = {
        attr.GEN_AI_REQUEST_MODEL: model,
        attr.GEN_AI_INPUT_TOKENS: input_tokens,
        attr.GEN_AI_OUTPUT_TOKENS: output_tokens,
    }
    if cached:
        attributes[attr.GEN_AI_CACHE_READ_TOKENS] = cached
    if reasoning:
        attributes[attr.GEN_AI_REASONING_TOKENS] = reasoning
    return attributes
