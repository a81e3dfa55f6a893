"""Untrusted values as the viewer shows them: redacted, bounded, typed or dropped.

Saved states, OTLP files and spans received live all reach the page through
these: a value of the wrong type becomes a default, never an error, and
anything that could hold a secret is redacted on the way (``shown``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from .._config import scrub_text
from .._recording import attributes as attr
from .._recording.encoding import REDACTED
from ._redact import is_sensitive, redact

STATUSES: Final = frozenset(
    {
        attr.STATUS_COMPLETED,
        attr.STATUS_FAILED,
        attr.STATUS_TIMEOUT,
        attr.STATUS_CANCELLED,
        attr.STATUS_RUNNING,
        attr.STATUS_CRASHED,  # the run journal (SPEC 13): a run whose process died
        attr.STATUS_UNFINISHED,
    }
)
_SPAN_KINDS: Final = frozenset({"INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"})
_MAX_TEXT: Final = 256
MAX_DEPTH: Final = 64  # as deep as ``redact`` looks


def shown(value: Any) -> Any:
    """``redact(value)``, for any value: nesting too deep to parse is shown as scrubbed text.

    ``redact`` parses JSON-looking strings to redact by key inside them; a
    string nested deeper than the JSON parser goes (``"[" * 1500``) is not
    JSON to the viewer: it is shown as the text it is, with credential shapes
    scrubbed, never a reason to fail.
    """
    try:
        return redact(value)
    except RecursionError:
        return _shown_deep(value, 0)


def _shown_deep(value: Any, depth: int) -> Any:
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        return REDACTED  # too deep to check, as in ``redact``
    if isinstance(value, dict):
        return {
            key: REDACTED if is_sensitive(str(key)) else _shown_deep(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_shown_deep(item, depth + 1) for item in value]
    if isinstance(value, str):
        try:
            return redact(value, depth)
        except RecursionError:
            return scrub_text(value)
    return value


def shown_mapping(values: Any) -> dict[str, Any]:
    """A mapping of attributes (or context) as ``shown``; anything else becomes ``{}``."""
    if not isinstance(values, dict) or not values:
        return {}
    result = shown(values)
    assert isinstance(result, dict)
    return result


def text(value: Any, default: str = "") -> str:
    """A short display string from an untrusted value."""
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if value is None:
        return default
    return str(value)[:_MAX_TEXT]


def nanos(value: Any) -> int | None:
    """A unix-nanosecond time from an untrusted value (int, or a decimal string as in OTLP/JSON)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and 0 < value < 2**63:
        return value
    return None


def iso(unix_nano: int | None) -> str | None:
    if unix_nano is None:
        return None
    moment = dt.datetime.fromtimestamp(unix_nano / 1e9, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def status_of(value: Any, failed: bool) -> str:
    if isinstance(value, str) and value in STATUSES:
        return value
    return attr.STATUS_FAILED if failed else attr.STATUS_COMPLETED


def events_of(value: Any) -> list[dict[str, Any]]:
    """Events from an untrusted list: name, time and redacted attributes each."""
    if not isinstance(value, list):
        return []
    result = []
    for event in value:
        if isinstance(event, dict):
            time = nanos(event.get("time_unix_nano"))
            result.append(
                {
                    "name": text(event.get("name"), "event"),
                    "time": iso(time),
                    "time_unix_nano": str(time) if time is not None else None,
                    "attributes": shown_mapping(event.get("attributes")),
                }
            )
    return result


def error_of(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    kind, message = value.get("type"), value.get("message")
    return {
        "type": kind if isinstance(kind, str) else None,
        "message": shown(message) if isinstance(message, str) else None,
    }


def kind_of(value: Any) -> str:
    return value if isinstance(value, str) and value in _SPAN_KINDS else "INTERNAL"
