"""The one place that decides span names, attributes and status (SPEC 3).

Semantic conventions: besides ``railtracks.*``, a session span is an
OpenInference ``CHAIN`` with ``gen_ai.operation.name=invoke_workflow`` and
``gen_ai.workflow.name``; a node span is a ``TOOL`` (a node may set another
``openinference.span.kind`` on its own span while it runs) with
``gen_ai.operation.name=execute_tool``, ``gen_ai.tool.name`` and
``gen_ai.tool.type=function`` (the workflow name is on the session span only:
every attribute is paid for on the wire, per span). Payloads: ``input.value``/``output.value`` are
the *same string object* as ``railtracks.node.input``/``output`` (and the
session's answer), so a span holds each payload once in memory; the saved
state keeps it once too (``railtracks export`` restores the second key). Only
the OTLP wire format, which has no references, carries the two keys apart.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .._settings import LoggingSetting
from . import attributes as attr
from . import limits as _limits
from .encoding import TRUNCATED, ValueEncoder, safe_repr
from .fastspan import set_trusted


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
        attr.OPENINFERENCE_SPAN_KIND: attr.SPAN_KIND_CHAIN,
    }
    if name is not None:
        attributes[attr.SESSION_NAME] = name
        attributes[attr.GEN_AI_WORKFLOW_NAME] = name
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
        attr.GEN_AI_TOOL_TYPE: attr.TOOL_TYPE_FUNCTION,
        attr.OPENINFERENCE_SPAN_KIND: attr.SPAN_KIND_TOOL,
    }
    if session_name is not None:
        attributes[attr.SESSION_NAME] = session_name
    return attributes


def _mime(encoded: str) -> str:
    # A truncated JSON value is no longer JSON: viewers show it as text.
    return attr.MIME_TEXT if encoded.endswith(TRUNCATED) else attr.MIME_JSON


def set_node_input(attributes: dict[str, AttributeValue], encoded: str) -> None:
    """The node's bound arguments (JSON), under railtracks' key and OpenInference's (one object)."""
    attributes[attr.NODE_INPUT] = encoded
    attributes[attr.INPUT_VALUE] = encoded
    attributes[attr.INPUT_MIME_TYPE] = _mime(encoded)


def set_output(span: Span, key: str, encoded: str, status: str | None = None) -> None:
    """A node's output or a session's answer (JSON), also as ``output.value`` (one object).

    ``status``, when given, is set in the same call (one pass of the SDK's checks).
    """
    attributes = {key: encoded, attr.OUTPUT_VALUE: encoded, attr.OUTPUT_MIME_TYPE: _mime(encoded)}
    if status is not None:
        attributes[attr.STATUS] = status
    set_trusted(span, attributes)


def error_type(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def describe(exc: BaseException) -> str:
    """``"{Type}: {message}"``, robust to an exception whose ``str`` raises."""
    message = _message(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a hostile __str__ is described by repr instead
        return safe_repr(exc)


def _stacktrace(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # formatting a hostile traceback must not break the run
        return f"{type(exc).__qualname__}: <traceback unavailable>"


def mark_failed(span: Span, exc: BaseException, encoder: ValueEncoder) -> None:
    """ERROR status, an ``exception`` event and ``error.type``; status ``failed``.

    The event has the semantic-convention keys ``record_exception`` writes,
    with message and stack trace bounded by the value limit like every value.
    """
    span.set_status(Status(StatusCode.ERROR, encoder.truncate(describe(exc))))
    span.add_event(
        "exception",
        {
            "exception.type": type(exc).__qualname__,
            "exception.message": encoder.truncate(_message(exc)),
            "exception.stacktrace": encoder.truncate(_stacktrace(exc)),
            "exception.escaped": "True",
        },
    )
    set_trusted(span, {attr.ERROR_TYPE: error_type(exc), attr.STATUS: attr.STATUS_FAILED})


def mark_interrupted(span: Span, status: str, description: str) -> None:
    """A cancelled or timed-out span: an error whose ``error.type`` is the status itself."""
    span.set_status(Status(StatusCode.ERROR, description))
    set_trusted(span, {attr.ERROR_TYPE: status, attr.STATUS: status})


def end_session_span(
    span: Span,
    status: str,
    error: BaseException | None,
    answer_json: str | None,
    encoder: ValueEncoder,
    *,
    end_attributes: Mapping[str, AttributeValue],
) -> None:
    """End a session's span with its final status, and its answer or its error.

    ``end_attributes`` (the final context) are set first, in one call with the
    status of a completed session.
    """
    if status == attr.STATUS_COMPLETED:
        set_trusted(span, {**end_attributes, attr.STATUS: status})
        if answer_json is not None:
            set_output(span, attr.SESSION_ANSWER, answer_json)
        span.end()
        return
    if end_attributes:
        set_trusted(span, end_attributes)
    if status == attr.STATUS_FAILED:
        assert error is not None  # a failed outcome always has its exception
        mark_failed(span, error, encoder)
    elif status == attr.STATUS_TIMEOUT:
        mark_interrupted(span, status, describe(error or TimeoutError()))
    else:
        mark_interrupted(span, status, "CancelledError: session cancelled")
    span.end()


def context_change_event(
    span: Span,
    operation: str,
    changes: Mapping[str, Any],
    setting: LoggingSetting,
    encoder: ValueEncoder,
    *,
    extra: Mapping[str, AttributeValue] | None = None,
) -> None:
    """Record ``railtracks.context.change``: keys always, values only when VERBOSE.

    ``extra`` attributes (the recorded values resume needs) are added as given.
    """
    if not span.is_recording():
        return
    limit = _limits.max_event_attributes()
    keys = [encoder.key(key) for _, key in zip(range(limit), changes, strict=False)]
    attributes: dict[str, AttributeValue] = {
        attr.CONTEXT_CHANGE_OPERATION: operation,
        attr.CONTEXT_CHANGE_KEYS: tuple(keys),
    }
    dropped = len(changes) - len(keys)
    if setting is LoggingSetting.VERBOSE and operation != "delete":
        values, cut = encoder.context_attributes(attr.CONTEXT_PREFIX, changes, limit)
        attributes.update(values)
        dropped = max(dropped, cut)
    if dropped:
        attributes[attr.DROPPED_CONTEXT_KEYS] = dropped
    if extra:
        attributes.update(extra)
    _limits.add_bounded_event(span, attr.EVENT_CONTEXT_CHANGE, attributes)
