"""Turning arbitrary Python values into bounded, safe span attribute values.

Rules (SPEC 3): ``str``/``bool``/``int``/``float`` stay as they are, homogeneous
lists of those become OpenTelemetry arrays, anything else becomes compact JSON.
Objects JSON cannot handle fall back to ``repr``; a ``repr`` that raises is
replaced by a placeholder. Every string is cut to the configured limit with a
marker, ``...[truncated]``. Nothing in this module raises into the caller.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

REDACTED: Final = "[REDACTED]"
TRUNCATED: Final = "...[truncated]"
DEFAULT_VALUE_LIMIT: Final = 4096
DEFAULT_REDACT_PATTERN: Final = (
    r"password|passwd|secret|token|api[_-]?key|authorization|auth|credential|cookie|private[_-]?key"
)
_MAX_SANITISE_DEPTH: Final = 32
_SCALARS: Final = (str, bool, int, float)
_INT64_MIN: Final = -(2**63)
_INT64_END: Final = 2**63


def safe_repr(value: object) -> str:
    """``repr(value)``, or a placeholder naming its type when ``repr`` raises."""
    try:
        return repr(value)
    except Exception:  # a hostile __repr__ must never break a run
        return f"<unrepresentable {type(value).__qualname__}>"


def safe_str(value: object) -> str:
    """``str(value)`` (a string as it is), or its safe repr when ``str`` raises."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:  # a hostile __str__ must never break a run
        return safe_repr(value)


def _json_default(value: object) -> Any:
    """Last resort for objects the JSON encoder does not know."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            return dataclasses.asdict(value)
        except Exception:  # asdict deep-copies fields, which can fail
            return safe_repr(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # pydantic v2 models, without importing pydantic
        try:
            return model_dump(mode="json")
        except Exception:  # a model_dump that fails is treated like any object
            return safe_repr(value)
    if isinstance(value, set | frozenset):
        return [_sanitise(v, 1) for v in value]
    return safe_repr(value)


def _sanitise(value: object, depth: int) -> Any:
    """Rebuild ``value`` from JSON-safe parts (string keys, no cycles, bounded depth)."""
    if value is None or isinstance(value, _SCALARS):
        return value
    if depth > _MAX_SANITISE_DEPTH:
        return safe_repr(value)
    if isinstance(value, Mapping):
        try:
            items = list(value.items())
        except Exception:  # a mapping whose iteration raises is shown by repr
            return safe_repr(value)
        return {
            (k if isinstance(k, str) else safe_repr(k)): _sanitise(v, depth + 1) for k, v in items
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_sanitise(v, depth + 1) for v in value]
    return _sanitise(_json_default(value), depth + 1) if depth < _MAX_SANITISE_DEPTH else None


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def to_json(value: object) -> str:
    """Compact JSON for any value; never raises."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError):
        # non-string dict keys, cycles, or pathological nesting
        try:
            return _ENCODER.encode(_sanitise(value, 0))
        except Exception:  # nothing left to try: describe the object instead
            return json.dumps(safe_repr(value))
    except Exception:  # a user object raising from inside the encoder
        return json.dumps(safe_repr(value))


class ValueEncoder:
    """Encodes values for span attributes under one limit and one redaction rule."""

    __slots__ = ("_marker_room", "_redact", "_sensitive_cache", "limit")

    def __init__(
        self, limit: int = DEFAULT_VALUE_LIMIT, redact_pattern: str = DEFAULT_REDACT_PATTERN
    ) -> None:
        self.limit = limit
        self._marker_room = len(TRUNCATED)
        self._redact: Callable[[str], re.Match[str] | None] = re.compile(
            redact_pattern, re.IGNORECASE
        ).search
        self._sensitive_cache: dict[str, bool] = {}

    def truncate(self, text: str) -> str:
        """``text`` cut so that, marker included, it fits the limit."""
        if len(text) <= self.limit:
            return text
        keep = max(self.limit - self._marker_room, 0)
        return text[:keep] + TRUNCATED

    def json(self, value: object) -> str:
        """Compact, truncated JSON of ``value``.

        Strings longer than the limit, at the top or inside a mapping or list
        (two levels down), are cut before encoding: a 20 MB argument costs its
        first few kilobytes, not a full encoding that would be thrown away.
        """
        return self.truncate(to_json(self._shortened(value, 2)))

    def _needs_shortening(self, value: object) -> bool:
        kind = type(value)
        return (kind is str and len(value) > self.limit) or kind is dict or kind is list  # type: ignore[arg-type]  # a str when measured

    def _shortened(self, value: object, depth: int) -> object:
        if type(value) is str:
            return value if len(value) <= self.limit else value[: self.limit + 1]
        if depth and type(value) is dict and any(map(self._needs_shortening, value.values())):
            return {k: self._shortened(v, depth - 1) for k, v in value.items()}
        if depth and type(value) is list and any(map(self._needs_shortening, value)):
            return [self._shortened(v, depth - 1) for v in value]
        return value

    def encode(self, value: object) -> AttributeValue:
        """The attribute value for ``value`` per SPEC 3."""
        kind = type(value)
        if kind is str:
            return self.truncate(value)  # type: ignore[arg-type]  # checked by `kind is str`
        if kind is int:
            # OTLP carries int64: a bigger int would be dropped by the exporter
            return value if _INT64_MIN <= value < _INT64_END else str(value)  # type: ignore[operator,return-value]  # an int
        if kind is bool or kind is float:
            return value  # type: ignore[return-value]  # checked by the `kind is` tests
        if kind is list or kind is tuple:
            array = self._array(value)  # type: ignore[arg-type]  # checked by `kind is`
            if array is not None:
                return array
        return self.json(value)

    def _array(self, values: Sequence[object]) -> AttributeValue | None:  # noqa: PLR0911  # one exit per rule
        if not values:
            return None
        first = type(values[0])
        if first not in (str, bool, int, float) or any(type(v) is not first for v in values):
            return None
        if first is str:
            if sum(len(str(v)) for v in values) > self.limit:
                return None
            return tuple(values)  # type: ignore[arg-type]  # homogeneous str
        if len(values) * 8 > self.limit:
            return None
        if first is int and not all(_INT64_MIN <= v < _INT64_END for v in values):  # type: ignore[operator]  # all int
            return None
        return tuple(values)  # type: ignore[arg-type]  # homogeneous scalars

    def is_sensitive(self, key: str) -> bool:
        """Whether a context key's value must never leave the process."""
        cached = self._sensitive_cache.get(key)
        if cached is None:
            cached = self._redact(key) is not None
            if len(self._sensitive_cache) < 4096:
                self._sensitive_cache[key] = cached
        return cached

    def redacted(self, key: str, value: object) -> object:
        return REDACTED if self.is_sensitive(key) else value

    def context_attributes(
        self, prefix: str, context: Mapping[str, Any]
    ) -> dict[str, AttributeValue]:
        """``{prefix + key: encoded value}`` for a context mapping, sensitive keys redacted."""
        attributes: dict[str, AttributeValue] = {}
        for key, value in context.items():
            name = safe_str(key)
            attributes[prefix + name] = REDACTED if self.is_sensitive(name) else self.encode(value)
        return attributes
