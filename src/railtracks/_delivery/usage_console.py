"""The usage part of a console line (SPEC 15): a node's or session's model calls, summed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._recording import attributes as attr


def _count(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def usage_text(attributes: Mapping[str, Any]) -> str | None:
    """``"3 model calls, 2,107 in / 43 out tokens, $0.00034185"``, or None without usage."""
    calls = _count(attributes.get(attr.USAGE_CALLS))
    if not calls:
        return None
    inputs = _count(attributes.get(attr.USAGE_INPUT_TOKENS)) or 0
    outputs = _count(attributes.get(attr.USAGE_OUTPUT_TOKENS)) or 0
    noun = "model call" if calls == 1 else "model calls"
    text = f"{calls} {noun}, {inputs:,} in / {outputs:,} out tokens"
    cost = attributes.get(attr.USAGE_COST_USD)
    if isinstance(cost, str) and cost.replace(".", "", 1).isdigit():
        text += f", ${cost}"
        unpriced = attributes.get(attr.USAGE_UNPRICED_MODELS)
        if isinstance(unpriced, tuple | list) and unpriced:
            text += " + unpriced " + ", ".join(str(model) for model in unpriced[:3])
    return text


def usage_segment(attributes: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The line segment for ``attributes`` (none when the span has no usage)."""
    text = usage_text(attributes)
    return [] if text is None else [(f" [{text}]", "dim")]
