"""Model calls in the viewer (SPEC 15): usage badges and totals, prompts and completions.

A saved span's usage is its state record's ``usage``; a live span's is read
from its attributes (``railtracks.usage.*`` on a node or session, the GenAI or
OpenInference counts on a model call's span). A model call's
``gen_ai.input.messages``/``gen_ai.output.messages`` (already redacted, as
every attribute the viewer holds) become a conversation: a list of
``{"role", "text"}``, text only, that the page shows with ``textContent``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from .._recording import attributes as attr
from .._recording.usage import model_call

if TYPE_CHECKING:  # _model calls these: no import cycle at run time
    from ._model import Span

_MAX_MESSAGES: Final = 200
_MAX_TEXT: Final = 20_000


def _int(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


def _cost(value: object) -> str | None:
    return value if isinstance(value, str) and value.replace(".", "", 1).isdigit() else None


def _from_record(usage: object) -> dict[str, Any] | None:
    if not isinstance(usage, dict) or not _int(usage.get("calls")):
        return None
    models = usage.get("models")
    return {
        "calls": _int(usage.get("calls")),
        "input_tokens": _int(usage.get("input_tokens")),
        "output_tokens": _int(usage.get("output_tokens")),
        "cost_usd": _cost(usage.get("cost_usd")),
        "unpriced": bool(usage.get("unpriced_models")),  # the cost counts the other models
        "models": _models(models),
    }


def _models(models: object) -> dict[str, Any]:
    if not isinstance(models, dict):
        return {}
    return {
        str(name)[:200]: {
            "calls": _int(figures.get("calls")),
            "input_tokens": _int(figures.get("input_tokens")),
            "output_tokens": _int(figures.get("output_tokens")),
            "cost_usd": _cost(figures.get("cost_usd")),
        }
        for name, figures in list(models.items())[:50]
        if isinstance(figures, dict)
    }


def _from_attributes(attributes: dict[str, Any]) -> dict[str, Any] | None:
    if _int(attributes.get(attr.USAGE_CALLS)):
        by_model = attributes.get(attr.USAGE_BY_MODEL)
        try:
            models = json.loads(by_model) if isinstance(by_model, str) else by_model
        except ValueError:
            models = None
        return {
            "calls": _int(attributes.get(attr.USAGE_CALLS)),
            "input_tokens": _int(attributes.get(attr.USAGE_INPUT_TOKENS)),
            "output_tokens": _int(attributes.get(attr.USAGE_OUTPUT_TOKENS)),
            "cost_usd": _cost(attributes.get(attr.USAGE_COST_USD)),
            "unpriced": bool(attributes.get(attr.USAGE_UNPRICED_MODELS)),
            "models": _models(models),
        }
    call = model_call(attributes)
    if call is None:
        return None
    model, counts = call
    figures = {"calls": 1, "input_tokens": counts.input_tokens,
               "output_tokens": counts.output_tokens, "cost_usd": None}  # fmt: skip
    return {**figures, "unpriced": False, "models": {model: dict(figures)}}


def usage_of(span: Span) -> dict[str, Any] | None:
    """The span's usage (its own calls and its descendants'), or None without any."""
    record = span.raw
    if record is not None:
        return _from_record(record.get("usage"))
    if "usage" in span.extra:
        return _from_record(span.extra["usage"])
    return _from_attributes(span.attributes)


def badge(span: Span) -> str | None:
    """The waterfall's usage badge: ``"1,234 tok · $0.0012"``, or None."""
    usage = usage_of(span)
    if usage is None:
        return None
    text = f"{usage['input_tokens'] + usage['output_tokens']:,} tok"
    if usage["cost_usd"] is None:
        return text
    return f"{text} · ${usage['cost_usd']}{' + unpriced' if usage['unpriced'] else ''}"


def _text_of(message: dict[str, Any]) -> str:
    parts = message.get("parts")
    if isinstance(parts, list):  # the GenAI conventions' messages: typed parts
        texts = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            content = part.get("content")
            if content is None and part.get("type") == "tool_call":
                content = f"tool call {part.get('name')}({json.dumps(part.get('arguments'))})"
            if content is not None:
                texts.append(content if isinstance(content, str) else json.dumps(content))
        return "\n".join(texts)
    content = message.get("content")  # the older {"role", "content"} shape
    return content if isinstance(content, str) else json.dumps(content)


def _messages(value: object) -> list[dict[str, str]] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list):
        return None
    return [
        {"role": str(message.get("role") or "message")[:40], "text": _text_of(message)[:_MAX_TEXT]}
        for message in value[:_MAX_MESSAGES]
        if isinstance(message, dict)
    ]


def conversation(span: Span) -> dict[str, Any] | None:
    """``{"input": [...], "output": [...]}`` of a model call's messages, or None."""
    attributes = span.attributes
    found = {
        "input": _messages(attributes.get(attr.GEN_AI_INPUT_MESSAGES)),
        "output": _messages(attributes.get(attr.GEN_AI_OUTPUT_MESSAGES)),
    }
    return found if any(v is not None for v in found.values()) else None
