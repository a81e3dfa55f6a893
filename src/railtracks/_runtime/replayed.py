"""Running a replayed call: its recorded output, its context changes applied again, a link.

The replayed call's span stays a span like any other (the node's input,
output and status), marked ``railtracks.node.replayed`` and linked to the
span that recorded the output; the context changes the original call (and
the calls under it, which do not run now) made are applied in their
recorded order and recorded on this span as changes of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import Link, SpanContext, TraceFlags

from .._recording.fastspan import RailtracksSpan
from .recording import record_change
from .replay import Answer

if TYPE_CHECKING:
    from .session import Session


def replay_answer(session: Session, span: trace.Span, answer: Answer) -> Any:
    """Link ``span`` to the original, apply the recorded context changes, return the value."""
    if answer.span_id and answer.trace_id and span.is_recording():
        original = SpanContext(answer.trace_id, answer.span_id, True, _SAMPLED)
        if type(span) is RailtracksSpan:  # what add_link makes, less its checks of a valid link
            span._add_link(Link(original, _NO_ATTRIBUTES))
        else:
            span.add_link(original)
    store = session.context_store
    for operation, values in answer.changes:
        if operation == "delete":
            keys = values if isinstance(values, list) else []
            changes = {
                key: None for key in keys if isinstance(key, str) and store.get(key, _NO) is not _NO
            }
            for key in changes:
                store.delete(key)
        else:
            changes = values if isinstance(values, dict) else {}
            store.update(changes)
        if changes:
            record_change(span, operation, changes, session)
    session.replayed_calls += 1
    return answer.value


_NO = object()
_SAMPLED = TraceFlags(1)
_NO_ATTRIBUTES = BoundedAttributes(0, None, immutable=True)  # shared: empty and immutable
