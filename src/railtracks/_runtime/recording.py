"""What a node span records so that its call can be replayed later (SPEC 14).

On every call of a run that can be used again (``reusable``) or that
replays one: ``railtracks.node.args_digest``. On completion, when
``railtracks.node.output`` is not the output's full JSON (cut at the value
limit, or a value whose shown form is not its recorded form: a datetime, an
enum, a dataclass), ``railtracks.node.recorded_output`` holds it; when the
output cannot be recorded (a secret in it, past the per-value bound, no JSON
form), ``railtracks.node.unreplayable`` says why.

A context change event carries its values the same way
(``railtracks.context.recorded``), so a replayed call can apply it again,
but only in a run that can be used again (``reusable``): SPEC 3 puts context
values on spans at ``VERBOSE`` only, so a session that saves no state and is
not ``VERBOSE`` records the keys of a change and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from .._recording import attributes as attr
from .._recording import spans as _spans
from .._recording.encoding import ValueEncoder
from .._reuse.recorded import Unrecordable, plain_json, record_json
from .._settings import LoggingSetting

if TYPE_CHECKING:
    from .session import Session

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


def reusable(session: Session) -> bool:
    """Whether the session's run can be used again: it saves its state, or is ``VERBOSE``
    (its spans then carry the values anyway), so it records what resume needs.

    A remote segment records it always: it cannot know whether its caller saves.
    """
    return (
        session.options.save_state
        or session.remote_part
        or session.logging_setting is LoggingSetting.VERBOSE
    )


def record_change(
    span: trace.Span, operation: str, changes: Mapping[str, Any], session: Session
) -> None:
    """The ``railtracks.context.change`` event of one change; its recorded values when the
    run can be used again (``reusable``)."""
    if not span.is_recording():
        return
    encoder = session.encoder
    extra = change_attributes(operation, changes, encoder) if reusable(session) else None
    _spans.context_change_event(
        span, operation, changes, session.logging_setting, encoder, extra=extra
    )
