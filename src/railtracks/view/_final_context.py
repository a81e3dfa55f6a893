"""A session's context at its end, as the viewer shows it (SPEC 6 ``final_context``).

A saved run has it in its session record (``Span.final_context``); a run
received live has it in its session span's ``railtracks.final_context.*``
attributes, read the way the saved state reads them (``_runs.state``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._recording import attributes as attr

if TYPE_CHECKING:
    from ._model import Span


def final_context_of(span: Span) -> dict[str, Any] | None:
    """The session's final context; None for a node, or a session span without one.

    ``railtracks.session.context_changed`` false means the start context; a
    span that has neither it nor a ``railtracks.final_context.*`` key (sent by
    an older railtracks) has none.
    """
    if span.role != "session" or span.final_context is not None:
        return span.final_context
    values, prefix = span.attributes, attr.FINAL_CONTEXT_PREFIX
    final = {key[len(prefix) :]: v for key, v in values.items() if key.startswith(prefix)}
    changed = values.get(attr.SESSION_CONTEXT_CHANGED)
    if changed is False and not final:
        return span.context
    return final if changed is not None or final else None
