"""What a node span records so that its call can be replayed later (SPEC 14).

On every call: ``railtracks.node.args_digest``. On completion, when
``railtracks.node.output`` is not the output's full JSON (cut at the value
limit, or a value whose shown form is not its recorded form: a datetime, an
enum, a dataclass), ``railtracks.node.recorded_output`` holds it; when the
output cannot be recorded (a secret in it, past the per-value bound, no JSON
form), ``railtracks.node.unreplayable`` says why. A context change event
carries its values the same way (``railtracks.context.recorded``), so a
replayed call can apply it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from .._recording import attributes as attr
from .._recording import spans as _spans
from .._recording.encoding import ValueEncoder
from .._reuse.recorded import Unrecordable, plain_json, record_json
from .._settings import LoggingSetting

_INT64_MIN: Final = -(2**63)
_INT64_END: Final = 2**63


def output_attributes(
    result: object, shown: str, encoder: ValueEncoder
) -> dict[str, AttributeValue] | None:
    """The attributes that record ``result`` in full, or None when ``shown`` already does."""
    kind = type(result)
    if result is None or kind is bool or (kind is int and _INT64_MIN <= result < _INT64_END):  # type: ignore[operator]  # an int
        return None  # its shown JSON is exact
    if shown == plain_json(result):
        return None  # shown whole (not cut, nothing redacted), and JSON is its form
    try:
        recorded = record_json(result, encoder.scrubber)
    except Unrecordable as exc:
        return {attr.NODE_UNREPLAYABLE: exc.reason[:200]}
    return None if recorded == shown else {attr.NODE_RECORDED_OUTPUT: recorded}


def change_attributes(
    operation: str, changes: Mapping[str, Any], encoder: ValueEncoder
) -> dict[str, AttributeValue]:
    """The recorded values of one context change (for a delete: its keys)."""
    values: object = list(changes) if operation == "delete" else dict(changes)
    try:
        return {attr.CONTEXT_CHANGE_RECORDED: record_json(values, encoder.scrubber)}
    except Unrecordable as exc:
        return {attr.CONTEXT_CHANGE_UNREPLAYABLE: exc.reason[:200]}


def record_change(
    span: trace.Span,
    operation: str,
    changes: Mapping[str, Any],
    setting: LoggingSetting,
    encoder: ValueEncoder,
) -> None:
    """The ``railtracks.context.change`` event of one change, with its recorded values."""
    if not span.is_recording():
        return
    extra = change_attributes(operation, changes, encoder)
    _spans.context_change_event(span, operation, changes, setting, encoder, extra=extra)
