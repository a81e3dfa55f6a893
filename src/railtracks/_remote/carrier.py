"""A carrier of the current session, for any transport (SPEC 12).

A carrier holds the W3C trace context (``traceparent``, ``tracestate``,
``baggage``) and railtracks' session fields: identifier, name, context,
deadline and ``logging_setting``. In-process executors ship it as a Python
object (the context keeps its types); text transports use its headers form,
``rt.session_carrier()``, where the context travels as JSON.

The deadline is absolute (seconds since the epoch): a call that waited in a
queue does not get more time than the session has left. This assumes the
machines' clocks agree (NTP), as distributed tracing already does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeGuard

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .._runtime.options import validate_option
from .._runtime.session import Session
from .._settings import LoggingSetting, parse_logging_setting
from ..errors import CarrierError, ConfigurationError
from .admission import note_carrier

HEADER_SESSION: Final = "railtracks-session"
HEADER_CONTEXT: Final = "railtracks-context"
W3C_HEADERS: Final = ("traceparent", "tracestate", "baggage")
# Big enough for a real context, small enough that a hostile header costs nothing.
MAX_HEADER_CHARS: Final = 1_000_000

_TRACE_CONTEXT = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()


@dataclasses.dataclass(frozen=True, slots=True)
class SessionCarrier:
    """The current session, as it crosses a process boundary."""

    w3c: dict[str, str]
    session_id: str
    name: str | None
    context: dict[str, Any]
    deadline: float | None  # seconds since the epoch
    timeout: float | None  # the session's own timeout, for the error message
    logging_setting: str

    def to_headers(self) -> dict[str, str]:
        """Text form: W3C headers plus ``railtracks-session`` and ``railtracks-context`` (JSON).

        Context values that JSON cannot represent are left out of this form.
        """
        fields = {
            "id": self.session_id,
            "name": self.name,
            "deadline": self.deadline,
            "timeout": self.timeout,
            "logging_setting": self.logging_setting,
        }
        headers = dict(self.w3c)
        headers[HEADER_SESSION] = json.dumps(fields, ensure_ascii=True, separators=(",", ":"))
        headers[HEADER_CONTEXT] = json.dumps(
            _json_values(self.context), ensure_ascii=True, separators=(",", ":")
        )
        return headers


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteCall:
    """One node call, ready to be shipped: the function, its arguments, the session carrier.

    What an executor's ``run_call`` receives (``_runtime.executors.NodeExecutor``).
    """

    node_name: str
    func: Callable[..., Any]
    is_async: bool
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    carrier: SessionCarrier


def _json_values(context: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in context.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            continue
        kept[str(key)] = value
    return kept


def capture(session: Session) -> SessionCarrier:
    """The carrier of ``session`` as seen from the current span."""
    w3c: dict[str, str] = {}
    current = otel_context.get_current()
    _TRACE_CONTEXT.inject(w3c, current)
    _BAGGAGE.inject(w3c, current)
    note_carrier(session, trace.get_current_span(current).get_span_context().span_id)
    left = session.time_left()
    return SessionCarrier(
        w3c=w3c,
        session_id=session.identifier,
        name=session.name,
        context=session.context_store.snapshot(),
        deadline=None if left is None else time.time() + left,
        timeout=session.options.timeout,
        logging_setting=session.logging_setting.name,
    )


def from_headers(headers: object) -> SessionCarrier:
    """Read a carrier from text headers (any case); ``CarrierError`` when it is not one.

    ``headers`` is a mapping or any object with ``items()`` (``http.server``'s
    headers, say); whatever it is, a bad one is a ``CarrierError``.
    """
    lowered = _text_headers(headers)
    raw_session = lowered.get(HEADER_SESSION)
    if raw_session is None:
        raise CarrierError(f"not a railtracks session carrier: no {HEADER_SESSION!r} header")
    fields = _load_object(HEADER_SESSION, raw_session)
    context = _load_object(HEADER_CONTEXT, lowered.get(HEADER_CONTEXT, "{}"))
    return SessionCarrier(
        w3c={key: lowered[key] for key in W3C_HEADERS if key in lowered},
        session_id=_session_id(fields.get("id")),
        name=_name(fields.get("name")),
        context=context,
        deadline=_seconds(fields.get("deadline"), "deadline"),
        timeout=_seconds(fields.get("timeout"), "timeout"),
        logging_setting=_setting(fields.get("logging_setting")).name,
    )


def _text_headers(headers: object) -> dict[str, str]:
    """The string-valued headers, keys lowered; other entries are ignored."""
    items = getattr(headers, "items", None)
    if isinstance(headers, str | bytes) or not callable(items):
        raise CarrierError(f"carrier: headers must be a mapping, not {type(headers).__name__}")
    lowered: dict[str, str] = {}
    try:
        for entry in items():
            key, value = entry
            if isinstance(key, str) and isinstance(value, str):
                lowered[key.lower()] = value
    except Exception as exc:  # a hostile object's items() or entries
        raise CarrierError(f"carrier: unreadable headers ({type(exc).__name__})") from None
    return lowered


def _load_object(header: str, raw: str) -> dict[str, Any]:
    if len(raw) > MAX_HEADER_CHARS:
        raise CarrierError(f"{header}: longer than {MAX_HEADER_CHARS} characters")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CarrierError(f"{header}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CarrierError(f"{header}: expected a JSON object")
    return value


def _session_id(value: object) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise CarrierError(f"carrier: session id {value!r} is not a UUID") from None


def _name(value: object) -> str | None:
    try:
        name: str | None = validate_option("name", value)
    except ConfigurationError as exc:
        raise CarrierError(f"carrier: {exc}") from None
    return name


def _seconds(value: object, field: str) -> float | None:
    if value is None:
        return None
    seconds = float(value) if _is_number(value) else math.nan
    if not math.isfinite(seconds):
        shown = repr(value)[:40]
        raise CarrierError(f"carrier: {field} must be a number of seconds, got {shown}")
    return seconds


def _is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number a float can hold (a 400-digit integer cannot)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _setting(value: object) -> LoggingSetting:
    try:
        return parse_logging_setting(value)
    except ConfigurationError as exc:
        raise CarrierError(f"carrier: {exc}") from None
