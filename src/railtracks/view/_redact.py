"""Redaction of everything the viewer shows, by key (SPEC 3).

Saved states are already redacted by the process that wrote them, but a
state file or an OTLP payload can come from anywhere: the viewer applies the
same rules again, in this one pass: railtracks' key rule
(``ValueEncoder.is_sensitive``) and its credential shapes inside any string
(``_config.scrub_text``: URL passwords, ``Bearer`` tokens, provider keys...).
"""

from __future__ import annotations

import json
from typing import Any, Final

from .._config import CONFIG, scrub_text
from .._recording import attributes as attr
from .._recording.encoding import REDACTED

# railtracks' own identity keys are never redacted (SPEC 3).
_NEVER_SENSITIVE: Final = frozenset({attr.SESSION_ID, attr.OPENINFERENCE_SESSION_ID})
_MAX_DEPTH: Final = 64


def is_sensitive(key: str) -> bool:
    """Whether a value under ``key`` must be shown as ``[REDACTED]``."""
    if key in _NEVER_SENSITIVE:
        return False
    return CONFIG.encoder.is_sensitive(key)


def redact(value: Any, depth: int = 0) -> Any:  # noqa: PLR0911  # one exit per kind of value
    """``value`` with values under sensitive keys, and credentials inside strings, replaced."""
    if isinstance(value, dict):
        if depth > _MAX_DEPTH:
            return REDACTED  # too deep to check: nothing unchecked is shown
        return {
            key: REDACTED if is_sensitive(str(key)) else redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        if depth > _MAX_DEPTH:
            return REDACTED
        return [redact(item, depth + 1) for item in value]
    if not isinstance(value, str):
        return value
    if value[:1] in ("{", "[") and len(value) < 1_000_000:
        # JSON travelling as a string attribute (input.value, a raw payload): look inside
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):  # too deep to parse: shown as scrubbed text
            return scrub_text(value)
        cleaned = redact(parsed, depth + 1)
        return value if cleaned == parsed else json.dumps(cleaned, ensure_ascii=False)
    return scrub_text(value)


def redact_mapping(values: Any) -> dict[str, Any]:
    """A mapping of attributes (or context) redacted by key; anything else becomes ``{}``."""
    if not isinstance(values, dict):
        return {}
    result = redact(values)
    assert isinstance(result, dict)
    return result
