"""Usage as ``show`` and ``runs`` print it (SPEC 15), from a saved state's ``usage`` records."""

from __future__ import annotations

from typing import Any


def _int(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


def _cost(usage: dict[str, Any]) -> str | None:
    cost = usage.get("cost_usd")
    return f"${cost}" if isinstance(cost, str) and cost.replace(".", "", 1).isdigit() else None


def usage_summary(usage: object) -> str | None:
    """``"3 model calls, 2,107 in / 43 out tokens, $0.00031485"`` of a record, or None."""
    if not isinstance(usage, dict) or not _int(usage.get("calls")):
        return None
    calls = _int(usage.get("calls"))
    text = (
        f"{calls} model call{'' if calls == 1 else 's'}, "
        f"{_int(usage.get('input_tokens')):,} in / {_int(usage.get('output_tokens')):,} out tokens"
    )
    cost = _cost(usage)
    if cost is not None:
        text += f", {cost}"
        unpriced = usage.get("unpriced_models")
        if isinstance(unpriced, list) and unpriced:
            text += " + unpriced " + ", ".join(str(model) for model in unpriced[:3])
    return text


def usage_suffix(record: dict[str, Any]) -> str:
    """What a tree line of ``show`` gets for a node's or session's usage ("" without any)."""
    summary = usage_summary(record.get("usage"))
    return "" if summary is None else f"  [{summary}]"


def usage_by_model(session: dict[str, Any]) -> list[str]:
    """``show``'s lines under the session: one per model, with its calls, tokens and cost."""
    usage = session.get("usage")
    models = usage.get("models") if isinstance(usage, dict) else None
    if not isinstance(models, dict):
        return []
    lines = []
    for model, figures in models.items():
        summary = usage_summary(figures)
        if summary is not None:
            lines.append(f"  model {model}: {summary}")
    return lines


def usage_cells(session: dict[str, Any]) -> list[str]:
    """The TOKENS and COST cells of a ``runs`` row: input + output tokens, and USD."""
    usage = session.get("usage")
    if not isinstance(usage, dict) or not _int(usage.get("calls")):
        return ["-", "-"]
    tokens = _int(usage.get("input_tokens")) + _int(usage.get("output_tokens"))
    return [f"{tokens:,}", _cost(usage) or "-"]
