"""Recorded values: a node's output in full as JSON, and the digest of its arguments (SPEC 14).

A recorded value is what resume and replay hand back instead of running a
call, so it is written faithfully rather than for display: a dataclass as
its fields, a pydantic model as ``model_dump(mode="json")``, an enum as its
value, ``datetime``/``date``/``time`` in ISO 8601, ``UUID`` and ``Decimal``
as strings, sets and tuples as lists. ``_reuse.rebuild`` turns it back into
the node's return type. A value that holds a secret (a sensitive key, a
credential shape in a string: the same rules as every value) is never
recorded, and neither is one past the per-value bound or one JSON cannot
express: such a call is marked unreplayable, with the reason, and runs live.

The arguments digest is the hex SHA-256 of the canonical JSON (sorted keys,
no spaces) of the bound arguments encoded the same way, except that a value
under a sensitive key counts as ``[REDACTED]`` (a low-entropy password is
never hashed) and an argument JSON cannot express counts by its type name
only. Strings are hashed as they are: a credential shape inside one is
high-entropy by nature, and its hash shows nothing of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from .._recording.encoding import REDACTED
from .._recording.scrub import Scrubber

DEFAULT_MAX_RECORDED_BYTES: Final = 16 * 1024 * 1024
MAX_RECORDED_ENV: Final = "RAILTRACKS_MAX_RECORDED_BYTES"
_MAX_DEPTH: Final = 64
_INT_DIGITS: Final = 4000
REASON_REDACTED: Final = "redacted"
REASON_TOO_LARGE: Final = "too large"
_CANONICAL: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)
_COMPACT: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_FLAT_TYPES: Final = frozenset({str, int, float, bool, type(None)})


def _no_default(value: object) -> Any:
    raise TypeError(type(value).__qualname__)


def _one_shot(sort_keys: bool) -> Callable[[object], str]:
    """A JSON encoder for JSON's own types, made once: ``JSONEncoder.encode`` makes one
    per call, which is most of its cost on a small value. No cycle check (RecursionError)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the standard encoder
        return (_CANONICAL if sort_keys else _COMPACT).encode
    encode = make(
        None, _no_default, json.encoder.encode_basestring, None, ":", ",", sort_keys, False, False
    )
    return functools.partial(_joined, encode)


def _joined(encode: Callable[[object, int], list[str]], value: object) -> str:
    return "".join(encode(value, 0))


_canonical_flat: Final = _one_shot(sort_keys=True)
_compact_plain: Final = _one_shot(sort_keys=False)


def max_recorded_bytes() -> int:
    """The per-value bound: ``RAILTRACKS_MAX_RECORDED_BYTES`` or 16 MiB (a bad value: 16 MiB)."""
    raw = os.environ.get(MAX_RECORDED_ENV)
    if raw is None:
        return DEFAULT_MAX_RECORDED_BYTES
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_RECORDED_BYTES
    return value if value > 0 else DEFAULT_MAX_RECORDED_BYTES


class Unrecordable(Exception):  # a reason, not an error the user sees
    """Why a value cannot be recorded: ``reason`` is what the span says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Walker:
    """One walk of a value into JSON parts, with a size budget and the secret rules.

    ``lenient`` (arguments) redacts secrets and names unencodable objects by
    type; otherwise (outputs) either raises ``Unrecordable``.
    """

    __slots__ = ("budget", "lenient", "scrubber")

    def __init__(self, scrubber: Scrubber, budget: int, *, lenient: bool) -> None:
        self.scrubber = scrubber
        self.budget = budget
        self.lenient = lenient

    def _spend(self, size: int) -> None:
        self.budget -= size
        if self.budget < 0:
            raise Unrecordable(REASON_TOO_LARGE)

    def text(self, value: str) -> str:
        self._spend(len(value) + 2)
        if self.lenient:  # arguments: hashed, never shown (see the module docstring)
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Unrecordable("unencodable: a string with a lone surrogate") from None
        if self.scrubber.text(value) != value:
            if self.lenient:
                return REDACTED
            raise Unrecordable(REASON_REDACTED)
        return value

    def walk(self, value: object, depth: int) -> Any:  # noqa: PLR0911  # one exit per kind
        kind = type(value)
        if kind is str:
            return self.text(value)  # type: ignore[arg-type]  # checked by `kind is str`
        if value is None or kind is bool:
            self._spend(5)
            return value
        if kind is int:
            return self._int(value)  # type: ignore[arg-type]  # checked by `kind is int`
        if kind is float:
            return self._float(value)  # type: ignore[arg-type]  # checked by `kind is float`
        if depth >= _MAX_DEPTH:
            return self._unencodable(value, "nested too deeply")
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, list | tuple | set | frozenset):
            return [self.walk(item, depth + 1) for item in value]
        return self._special(value, depth)

    def _int(self, value: int) -> Any:
        self._spend(8)
        if value.bit_length() > _INT_DIGITS * 3:
            return self._unencodable(value, "an integer too long to print")
        return value

    def _float(self, value: float) -> Any:
        self._spend(8)
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = self._key(key)
            if self.scrubber.is_sensitive(name):
                if not self.lenient:
                    raise Unrecordable(REASON_REDACTED)
                out[name] = REDACTED
                continue
            out[name] = self.walk(item, depth + 1)
        return out

    def _key(self, key: object) -> str:
        if isinstance(key, enum.Enum):
            key = key.value
        if type(key) is str:
            return self.text(key)
        if key is None or type(key) in (bool, int, float):
            return self.text(json.dumps(key))
        if isinstance(key, uuid.UUID | decimal.Decimal | dt.date | dt.time):
            return self.text(_scalar_text(key))
        return self.text(str(self._unencodable(key, "a key of this type")))

    def _special(self, value: object, depth: int) -> Any:  # noqa: PLR0911  # one exit per kind
        if isinstance(value, enum.Enum):
            return self.walk(value.value, depth + 1)
        if isinstance(value, bool | int | float | str):  # subclasses: IntEnum handled above
            return self.walk((bool, int, float, str)[_base_index(value)](value), depth)
        if isinstance(value, uuid.UUID | decimal.Decimal | dt.date | dt.time | dt.timedelta):
            return self.text(_scalar_text(value))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return self._mapping(fields, depth)
        model_dump = getattr(value, "model_dump", None)
        if callable(model_dump):  # pydantic v2, without importing it
            try:
                dumped = model_dump(mode="json")
            except Exception:  # a model that cannot dump itself is not recordable
                return self._unencodable(value, "its model_dump failed")
            return self.walk(dumped, depth + 1)
        return self._unencodable(value, "no JSON form")

    def _unencodable(self, value: object, why: str) -> str:
        name = type(value).__qualname__
        if self.lenient:
            return f"<{name}>"
        raise Unrecordable(f"unencodable: {name} ({why})")


def _base_index(value: object) -> int:
    for index, base in enumerate((bool, int, float, str)):
        if isinstance(value, base):
            return index
    return 3  # not reached: the caller checked isinstance


def _scalar_text(value: object) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value.total_seconds())
    return str(value)


def plain_json(value: object) -> str | None:
    """``value``'s JSON when it is made of JSON's own types only, else None (fast, no checks)."""
    try:
        return _compact_plain(value)
    except (TypeError, ValueError, RecursionError):
        return None


def record_json(value: object, scrubber: Scrubber, limit: int | None = None) -> str:
    """The recorded form of ``value`` as compact JSON; ``Unrecordable`` saying why not."""
    budget = max_recorded_bytes() if limit is None else limit
    try:
        parts = _Walker(scrubber, budget, lenient=False).walk(value, 0)
    except RecursionError:
        raise Unrecordable("unencodable: nested too deeply") from None
    except Unrecordable:
        raise
    except Exception as exc:  # a hostile __iter__, property or __eq__: not recordable
        raise Unrecordable(f"unencodable: {type(exc).__name__} while reading it") from None
    text = _COMPACT.encode(parts)
    if len(text) > budget:
        raise Unrecordable(REASON_TOO_LARGE)
    return text


def _flat_canonical(bound: Mapping[str, Any], scrubber: Scrubber) -> str | None:
    """The canonical JSON of the common arguments (plain keys, scalars or lists of them)
    in one C call, or None to take the walk (which gives the same text for these)."""
    if type(bound) is not dict:
        return None
    for key, value in bound.items():
        if type(key) is not str or scrubber.is_sensitive(key):
            return None
        kind = type(value)
        if kind not in _FLAT_TYPES and (
            kind is not list or any(type(item) not in _FLAT_TYPES for item in value)
        ):
            return None
    try:
        return _canonical_flat(bound)
    except ValueError:  # NaN or Infinity: the walk writes them as strings
        return None


def canonical_arguments(bound: Mapping[str, Any], scrubber: Scrubber) -> str:
    """The canonical JSON of bound arguments: sorted keys, secrets redacted, never raises."""
    flat = _flat_canonical(bound, scrubber)
    if flat is not None:
        return flat
    walker = _Walker(scrubber, 1 << 62, lenient=True)
    try:
        parts = walker.walk(bound, 0)
    except Exception as exc:  # hostile objects: the call is keyed by the failure's type
        parts = f"<unreadable arguments: {type(exc).__name__}>"
    return _CANONICAL.encode(parts)


def arguments_digest(bound: Mapping[str, Any], scrubber: Scrubber) -> str:
    """Hex SHA-256 of ``canonical_arguments`` (the call key's arguments digest)."""
    text = _flat_canonical(bound, scrubber) or canonical_arguments(bound, scrubber)
    return _sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


_sha256: Final = hashlib.sha256
