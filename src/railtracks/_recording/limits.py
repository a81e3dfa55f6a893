"""Bounds that keep railtracks' identity on every span (SPEC 3 "Limits never lose identity").

The SDK keeps at most ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` attributes (default
128) per span and evicts the *oldest* one when a new key arrives past it: a
session with 119 context keys used to lose ``railtracks.session.id``. Context
keys are therefore bounded by railtracks itself, leaving room for its own
attributes (identity, input, output, status, error, semantic conventions); a
session span's final context (written at its end) shares that room with its
start context. The SDK's event limit likewise keeps room for the ``exception``
event. What a bound cuts is counted on the span (``railtracks.dropped.*``) and
in the state.
"""

from __future__ import annotations

import os
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from . import attributes as attr

RESERVED_ATTRIBUTES: Final = 40
"""Attribute slots kept for railtracks' own keys and other instrumentation's semconv keys."""
RESERVED_EVENTS: Final = 8
"""Event slots kept for the ``exception`` event and the last log records."""
MAX_CONTEXT_KEYS: Final = 1024
"""Context keys on one span even when the SDK limit is lifted."""
_SDK_DEFAULT: Final = 128


def _env_limit(*names: str) -> int | None:
    for name in names:
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:  # the SDK warns about it and uses its default
                return _SDK_DEFAULT
            return None if value < 0 else value
    return _SDK_DEFAULT


def _attribute_limit() -> int | None:
    # read each time (a context's attributes are built once per change): tests and
    # applications may set the variable after import
    return _env_limit("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT")


def max_context_attributes() -> int:
    """How many context keys one span carries, leaving room for railtracks' own."""
    limit = _attribute_limit()
    if limit is None:
        return MAX_CONTEXT_KEYS
    return max(0, min(MAX_CONTEXT_KEYS, limit - RESERVED_ATTRIBUTES))


def max_final_context_attributes(start_attributes: int) -> int:
    """How many final-context keys a session span carries after ``start_attributes`` context ones.

    The start and the final context share the context keys' room, so the span
    stays within the SDK's limit and its identity attributes are never evicted.
    """
    return max(0, max_context_attributes() - start_attributes)


def max_event_attributes() -> int:
    """How many context keys one change event carries, leaving room for its own keys."""
    return max_context_attributes()


def _event_room(span: Any) -> int | None:
    limits = getattr(span, "_limits", None)
    maximum = getattr(limits, "max_events", None)
    if not isinstance(maximum, int) or maximum < 0:
        return None  # no SDK span or no limit: the SDK keeps every event
    events = getattr(span, "_events", None)
    count = len(events) if events is not None else 0
    return maximum - RESERVED_EVENTS - count


def add_bounded_event(
    span: trace.Span, name: str, attributes: dict[str, AttributeValue], *, reserved: bool = False
) -> bool:
    """Add an event unless the span's event limit is near; count it when left out.

    ``reserved`` events (log records of WARNING and up) may use the room kept
    back for them. Returns whether the event was added.
    """
    if not span.is_recording():
        return False
    room = _event_room(span)
    if room is not None and room + (RESERVED_EVENTS - 1 if reserved else 0) <= 0:
        current = getattr(span, "attributes", None) or {}
        dropped = current.get(attr.DROPPED_EVENTS, 0)
        span.set_attribute(attr.DROPPED_EVENTS, (dropped if isinstance(dropped, int) else 0) + 1)
        return False
    span.add_event(name, attributes)
    return True
