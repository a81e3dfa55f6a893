"""The one place that decides span names, attributes and status (SPEC 3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from . import _attributes as attr
from ._encoding import ValueEncoder, safe_repr
from ._settings import LoggingSetting


def session_span_name(name: str | None) -> str:
    return f"session {name}" if name else "session"


def session_attributes(
    *,
    identifier: str,
    name: str | None,
    timeout: float | None,
    setting: LoggingSetting,
    save_state: bool,
    context_attributes: Mapping[str, AttributeValue],
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        attr.SESSION_ID: identifier,
        attr.OPENINFERENCE_SESSION_ID: identifier,
        attr.LOGGING_SETTING: setting.name,
        attr.SESSION_SAVE_STATE: save_state,
        attr.GEN_AI_OPERATION_NAME: attr.OPERATION_WORKFLOW,
    }
    if name is not None:
        attributes[attr.SESSION_NAME] = name
    if timeout is not None:
        attributes[attr.SESSION_TIMEOUT] = timeout
    attributes.update(context_attributes)
    return attributes


def node_base_attributes(
    node_name: str, session_id: str, session_name: str | None
) -> dict[str, AttributeValue]:
    """Attributes every call of one node in one session shares."""
    attributes: dict[str, AttributeValue] = {
        attr.NODE_NAME: node_name,
        attr.NODE_KIND: attr.NODE_KIND_FUNCTION,
        attr.SESSION_ID: session_id,
        attr.OPENINFERENCE_SESSION_ID: session_id,
        attr.GEN_AI_OPERATION_NAME: attr.OPERATION_TOOL,
        attr.GEN_AI_TOOL_NAME: node_name,
    }
    if session_name is not None:
        attributes[attr.SESSION_NAME] = session_name
    return attributes


def error_type(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def describe(exc: BaseException) -> str:
    """``"{Type}: {message}"``, robust to an exception whose ``str`` raises."""
    try:
        message = str(exc)
    except Exception:  # a hostile __str__ is described by repr instead
        message = safe_repr(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def mark_failed(span: Span, exc: BaseException) -> None:
    """ERROR status, an ``exception`` event and ``error.type``; status ``failed``."""
    span.set_status(Status(StatusCode.ERROR, describe(exc)))
    try:
        span.record_exception(exc, escaped=True)
    except Exception:  # formatting a hostile traceback must not break the run
        span.add_event("exception", {"exception.type": error_type(exc)})
    span.set_attribute(attr.ERROR_TYPE, error_type(exc))
    span.set_attribute(attr.STATUS, attr.STATUS_FAILED)


def mark_interrupted(span: Span, status: str, description: str) -> None:
    """A cancelled or timed-out span: an error whose ``error.type`` is the status itself."""
    span.set_status(Status(StatusCode.ERROR, description))
    span.set_attribute(attr.ERROR_TYPE, status)
    span.set_attribute(attr.STATUS, status)


def context_change_event(
    span: Span,
    operation: str,
    changes: Mapping[str, Any],
    setting: LoggingSetting,
    encoder: ValueEncoder,
) -> None:
    """Record ``railtracks.context.change``: keys always, values only when VERBOSE."""
    if not span.is_recording():
        return
    attributes: dict[str, AttributeValue] = {
        attr.CONTEXT_CHANGE_OPERATION: operation,
        attr.CONTEXT_CHANGE_KEYS: tuple(str(key) for key in changes),
    }
    if setting is LoggingSetting.VERBOSE and operation != "delete":
        attributes.update(encoder.context_attributes(attr.CONTEXT_PREFIX, changes))
    span.add_event(attr.EVENT_CONTEXT_CHANGE, attributes)
