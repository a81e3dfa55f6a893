"""``rt.record_usage``: a model call no instrumentation sees, counted on the current node."""

from __future__ import annotations

from opentelemetry import trace

from .._recording import attributes as attr
from .._recording.usage import MAX_TOKENS, usage_event
from .._recording.usage_rollup import ROLLUP
from .current import require_session


def _tokens(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"record_usage({name}=...): expected an int, got {value!r}")
    if value < 0 or value > MAX_TOKENS:
        raise ValueError(f"record_usage({name}=...): expected a count >= 0, got {value!r}")
    return value


def record_usage(
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> None:
    """Count one model call no instrumentation sees, on the current node (async or sync).

    It is summed like an instrumented call: into the node, its ancestors and
    the session, by ``model``, with its cost when the model has a price.
    ``cached_input_tokens`` and ``reasoning_tokens`` are parts of
    ``input_tokens`` and ``output_tokens``. Raises ``ContextError`` outside a
    session, ``TypeError``/``ValueError`` for a bad argument.
    """
    require_session("rt.record_usage")
    if not isinstance(model, str) or not model.strip():
        raise TypeError(f"record_usage(model=...): expected a model name, got {model!r}")
    event = usage_event(
        model.strip()[:200],
        _tokens("input_tokens", input_tokens),
        _tokens("output_tokens", output_tokens),
        _tokens("cached_input_tokens", cached_input_tokens),
        _tokens("reasoning_tokens", reasoning_tokens),
    )
    span = trace.get_current_span()
    if not span.is_recording():
        return  # the session's spans are not recorded here: nothing to sum
    span.add_event(attr.EVENT_USAGE, event)
    ROLLUP.note_recorded(span, span.get_span_context().span_id)
