"""Turning arbitrary Python values into bounded, safe, secret-free attribute values.

Rules (SPEC 3): ``str``/``bool``/``int``/``float`` stay as they are, homogeneous
lists of those become OpenTelemetry arrays, anything else becomes compact JSON.
Objects JSON cannot handle fall back to ``repr``; a ``repr`` that raises is
replaced by a placeholder. Every string is cut to the configured limit with a
marker, ``...[truncated]``. Nothing in this module raises into the caller.

Secrets (``_recording.scrub``): a value under a sensitive key, at any depth, becomes
``[REDACTED]``, and credential shapes inside every string are replaced.

Strict JSON (SPEC 6): what comes out is valid RFC 8259 in strict UTF-8, so the
span attributes, the OTLP payload and the saved state agree:

* ``NaN``, ``Infinity``, ``-Infinity`` are written as those strings;
* a lone surrogate (an undecodable file name, say) becomes U+FFFD;
* an integer outside int64 (OTLP's integer) is an attribute's decimal string;
  inside JSON (inputs, outputs) it stays a JSON number; past the 4,300 digits
  Python will print, either is written as a ``0x`` hexadecimal string.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from .scrub import DEFAULT_KEY_PATTERN, REDACTED, Scrubber

__all__ = ["DEFAULT_REDACT_PATTERN", "REDACTED", "TRUNCATED", "ValueEncoder", "to_json"]

TRUNCATED: Final = "...[truncated]"
DEFAULT_VALUE_LIMIT: Final = 4096
DEFAULT_REDACT_PATTERN: Final = DEFAULT_KEY_PATTERN
KEY_LIMIT: Final = 256
"""Longest context key kept as written; a longer one is cut with the marker."""
_MAX_SANITISE_DEPTH: Final = 32
_SCALARS: Final = (str, bool, int, float)
_INT64_MIN: Final = -(2**63)
_INT64_END: Final = 2**63
# The fast path of ``ValueEncoder.json``: dicts this small, keys this short.
_FLAT_ITEMS: Final = 16
_FLAT_KEY: Final = 64
_FLAT_KEYS_KEPT: Final = 4096
# Python refuses to print an int of more than 4,300 decimal digits (about 14,284 bits).
_DECIMAL_BITS: Final = 14_000
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
# Scrubbing sees this much beyond the limit, so a credential cut by truncation
# is still recognised whole (a 4 KB RSA key block fits).
_SCRUB_MARGIN: Final = 4096


def safe_repr(value: object) -> str:
    """``repr(value)``, or a placeholder naming its type when ``repr`` raises."""
    try:
        return repr(value)
    except Exception:  # a hostile __repr__ (or a 5,000-digit int) must never break a run
        return f"<unrepresentable {type(value).__qualname__}>"


def safe_str(value: object) -> str:
    """``str(value)`` (a string as it is), or its safe repr when ``str`` raises."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:  # a hostile __str__ must never break a run
        return safe_repr(value)


def strict_text(text: str) -> str:
    """``text`` encodable as strict UTF-8: lone surrogates become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def strict_int(value: int) -> int | str:
    """``value`` when it fits int64, else its decimal (or, when huge, ``0x`` hex) string."""
    if _INT64_MIN <= value < _INT64_END:
        return value
    try:
        return str(value)
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        return hex(value)


def json_int(value: int) -> int | str:
    """``value`` as a JSON number, or its ``0x`` hex string past what Python prints in decimal."""
    return value if value.bit_length() < _DECIMAL_BITS else hex(value)


def strict_float(value: float) -> float | str:
    """``value`` when finite, else ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _json_default(value: object) -> Any:
    """Last resort for objects the JSON encoder does not know."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        except Exception:  # a property raising, say: shown by repr
            return safe_repr(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # pydantic v2 models, without importing pydantic
        try:
            return model_dump(mode="json")
        except Exception:  # a model_dump that fails is treated like any object
            return safe_repr(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return safe_repr(value)


def _json_key(key: object) -> str:
    return key if type(key) is str else safe_repr(key)


_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
)


def to_json(value: object) -> str:
    """Compact, strict JSON for a value already made of JSON parts; never raises."""
    try:
        return _ENCODER.encode(value)
    except Exception:  # a value that did not go through the cleaner
        return _ENCODER.encode(_Cleaner(Scrubber(enabled=False), 1 << 62).clean(value, 0))


class _Cleaner:
    """One walk over a value: JSON parts only, secrets out, strict, within a size budget.

    The budget (about the limit, in characters) stops the walk once the JSON
    would be cut anyway, so a 100,000-item list costs its first few kilobytes.
    """

    __slots__ = ("budget", "cut", "scrubber", "text_limit")

    def __init__(self, scrubber: Scrubber, budget: int) -> None:
        self.scrubber = scrubber
        self.budget = budget
        self.text_limit = budget + _SCRUB_MARGIN
        self.cut = False

    def text(self, value: str) -> str:
        if len(value) > self.text_limit:
            value = value[: self.text_limit]
            self.cut = True
        return strict_text(self.scrubber.text(value))

    def clean(self, value: object, depth: int) -> Any:  # noqa: PLR0911  # one exit per kind
        kind = type(value)
        if kind is str:
            text = self.text(value)  # type: ignore[arg-type]  # checked by `kind is str`
            self.budget -= len(text) + 2
            return text
        if value is None or kind is bool:
            self.budget -= 5
            return value
        if isinstance(value, int):
            self.budget -= 8
            return json_int(int(value))
        if isinstance(value, float):
            self.budget -= 8
            return strict_float(float(value))
        if isinstance(value, str):  # a str subclass
            return self.clean(str.__str__(value), depth)
        if depth >= _MAX_SANITISE_DEPTH:
            return self.text(safe_repr(value))
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, list | tuple | set | frozenset):
            return self._sequence(value, depth)
        return self.clean(_json_default(value), depth + 1)

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> Any:
        try:
            items = list(value.items())
        except Exception:  # a mapping whose iteration raises is shown by repr
            return self.text(safe_repr(value))
        out: dict[str, Any] = {}
        sensitive = self.scrubber.is_sensitive
        for key, item in items:
            if self.budget <= 0:
                self.cut = True
                break
            raw = _json_key(key)
            name = self.text(raw)
            self.budget -= len(name) + 3
            # a key too long to judge whole is treated as sensitive
            hidden = len(raw) > self.text_limit or sensitive(name)
            out[name] = REDACTED if hidden else self.clean(item, depth + 1)
        return out

    def _sequence(self, value: Sequence[Any] | set[Any] | frozenset[Any], depth: int) -> Any:
        out: list[Any] = []
        try:
            for item in value:
                if self.budget <= 0:
                    self.cut = True
                    break
                out.append(self.clean(item, depth + 1))
                self.budget -= 1
        except Exception:  # a set changed by another thread, a hostile __iter__
            return self.text(safe_repr(value))
        return out


class ValueEncoder:
    """Encodes values for span attributes under one limit and one set of secret rules."""

    __slots__ = ("_marker_room", "_plain_keys", "limit", "scrubber")

    def __init__(
        self,
        limit: int = DEFAULT_VALUE_LIMIT,
        redact_pattern: str = DEFAULT_REDACT_PATTERN,
        secret_patterns: Sequence[str] = (),
        *,
        redact: bool = True,
    ) -> None:
        self.limit = limit
        self._marker_room = len(TRUNCATED)
        self.scrubber = Scrubber(redact_pattern, secret_patterns, enabled=redact)
        self._plain_keys: dict[str, bool] = {}

    def truncate(self, text: str) -> str:
        """Untrusted text (an exception message, say) scrubbed, strict and cut to the limit."""
        if len(text) > self.limit + _SCRUB_MARGIN:
            text = text[: self.limit + _SCRUB_MARGIN]
        return self._cut(strict_text(self.scrubber.text(text)))

    def _cut(self, text: str, *, force: bool = False) -> str:
        if len(text) <= self.limit and not force:
            return text
        keep = max(self.limit - self._marker_room, 0)
        return text[:keep] + TRUNCATED

    def clean(self, value: object) -> tuple[Any, bool]:
        """``(JSON-ready copy of value, whether something was cut)``, secrets redacted."""
        cleaner = _Cleaner(self.scrubber, self.limit)
        try:
            return cleaner.clean(value, 0), cleaner.cut
        except RecursionError:  # deeper than the stack, through __iter__ or model_dump
            return f"<too deeply nested {type(value).__qualname__}>", True

    def json(self, value: object) -> str:
        """Compact, strict, truncated JSON of ``value``, secrets redacted."""
        kind = type(value)
        if kind is int and _INT64_MIN <= value < _INT64_END:  # type: ignore[operator]  # an int
            return self._cut(int.__repr__(value))
        if kind is dict:
            flat = self._flat_json(value)  # type: ignore[arg-type]  # a dict
            if flat is not None:
                return flat
        elif value is None or kind is bool:
            return self._cut(_ENCODER.encode(value))
        return self.cleaned_json(value)

    def cleaned_json(self, value: object) -> str:
        """``json`` the long way, through the cleaner, whatever the value."""
        cleaned, cut = self.clean(value)
        text = to_json(cleaned)
        return self._cut(text, force=cut and not text.endswith(TRUNCATED))

    def _flat_json(self, value: dict[Any, Any]) -> str | None:
        """The JSON of a small dict of plain keys and numbers, or ``None`` to take the long way.

        Bound arguments are mostly this (``{"x": 1}``), and nothing in it needs
        the cleaner: plain keys (``_plain_key``) are written as they are, ints
        within int64, bools and ``None`` too, and none of them can hold a secret.
        """
        if len(value) > _FLAT_ITEMS:
            return None
        plain = self._plain_keys
        for key, item in value.items():
            known = plain.get(key) if type(key) is str else False
            if known is None:
                known = self._plain_key(key)
            if not known or not (
                item is None
                or type(item) is bool
                or (type(item) is int and _INT64_MIN <= item < _INT64_END)
            ):
                return None
        text = _ENCODER.encode(value)
        return text if len(text) <= self.limit else None

    def _plain_key(self, key: str) -> bool:
        """A key the cleaner would write as it is: short ASCII, not sensitive, no secret in it."""
        plain = (
            key.isascii()
            and len(key) <= _FLAT_KEY
            and not self.scrubber.is_sensitive(key)
            and self.scrubber.text(key) == key
        )
        if len(self._plain_keys) < _FLAT_KEYS_KEPT:
            self._plain_keys[key] = plain
        return plain

    def encode(self, value: object) -> AttributeValue:
        """The attribute value for ``value`` per SPEC 3."""
        kind = type(value)
        if kind is str:
            return self.truncate(value)  # type: ignore[arg-type]  # checked by `kind is str`
        if kind is int:
            number = strict_int(value)  # type: ignore[arg-type]  # checked by `kind is int`
            return self._cut(number) if type(number) is str else number
        if kind is float:
            return strict_float(value)  # type: ignore[arg-type]  # checked by `kind is float`
        if kind is bool:
            return value  # type: ignore[return-value]  # checked by `kind is bool`
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
            if sum(len(v) for v in values) > self.limit:  # type: ignore[arg-type,misc]  # all str
                return None
            return tuple(self.truncate(v) for v in values)  # type: ignore[arg-type]  # all str
        if len(values) * 8 > self.limit:
            return None
        if first is int and not all(_INT64_MIN <= v < _INT64_END for v in values):  # type: ignore[operator]  # all int
            return None
        if first is float and not all(math.isfinite(v) for v in values):  # type: ignore[arg-type]  # all float
            return None
        return tuple(values)  # type: ignore[arg-type]  # homogeneous scalars

    def is_sensitive(self, key: str) -> bool:
        """Whether the value under ``key`` must never leave the process."""
        return self.scrubber.is_sensitive(key)

    def redacted(self, key: str, value: object) -> object:
        return REDACTED if self.is_sensitive(key) else value

    def key(self, key: object) -> str:
        """A context key fit for an attribute name: scrubbed, strict, at most KEY_LIMIT."""
        text = strict_text(self.scrubber.text(safe_str(key)[: KEY_LIMIT + _SCRUB_MARGIN]))
        if len(text) > KEY_LIMIT:
            text = text[: KEY_LIMIT - self._marker_room] + TRUNCATED
        return text

    def context_attributes(
        self, prefix: str, context: Mapping[str, Any], max_keys: int | None = None
    ) -> tuple[dict[str, AttributeValue], int]:
        """``({prefix + key: encoded value}, keys left out)``; sensitive keys redacted.

        At most ``max_keys`` keys are kept (the first ones, in the mapping's
        order); the others are counted, never silently dropped.
        """
        attributes: dict[str, AttributeValue] = {}
        dropped = 0
        for key, value in context.items():
            if max_keys is not None and len(attributes) >= max_keys:
                dropped += 1
                continue
            raw = safe_str(key)
            full = prefix + self.key(raw)
            if full in attributes:  # two long keys cut to the same name
                dropped += 1
                continue
            # judged on the whole key, not the cut one; a key too long to check is redacted
            sensitive = len(raw) > KEY_LIMIT + _SCRUB_MARGIN or self.is_sensitive(raw)
            attributes[full] = REDACTED if sensitive else self.encode(value)
        return attributes, dropped
