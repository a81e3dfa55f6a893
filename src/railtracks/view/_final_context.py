"""A session's context at its end, as the viewer shows it (SPEC 6 ``final_context``).

A saved run has it in its session record (``Span.final_context``; a state
written before railtracks recorded it has none); a run received live has it in
its session span's attributes, read the way the saved state reads them
(``_runs.state``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._recording import attributes as attr

if TYPE_CHECKING:
    from ._model import Span


def final_context_of(span: Span) -> dict[str, Any] | None:
    """A live session span's final context; None for a node.

    A session span with neither ``railtracks.session.context_changed`` nor a
    ``railtracks.final_context.*`` key ended with the context it started with.
    """
    if span.role != "session" or span.final_context is not None:
        return span.final_context
    values, prefix = span.attributes, attr.FINAL_CONTEXT_PREFIX
    final = {key[len(prefix) :]: v for key, v in values.items() if key.startswith(prefix)}
    if final or values.get(attr.SESSION_CONTEXT_CHANGED) is True:
        return final
    return span.context
