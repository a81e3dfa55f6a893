"""Rebuilding a recorded value to a node's return annotation (SPEC 14 "Recorded values").

The recorded JSON is untrusted: every step checks the shape it is given and
raises ``Unrebuildable`` (one line, the path inside the value) rather than
building something the annotation does not describe. Supported: ``Any`` and
no annotation (plain JSON values), ``None``, ``bool``/``int``/``float``/
``str``, ``Optional``/unions (first member that fits), ``Literal``, enums,
``datetime``/``date``/``time``/``timedelta``/``UUID``/``Decimal``,
dataclasses, TypedDicts, pydantic models (``model_validate``), and ``list``/
``tuple``/``set``/``frozenset``/``dict`` and their abstract forms of these.
Nothing is ever unpickled or imported by name.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as dt
import decimal
import enum
import json
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, Final, Literal, Union, get_args, get_origin, get_type_hints

_NON_FINITE: Final = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_MAX_DEPTH: Final = 64
_SEQUENCES: Final = {
    list: list,
    cabc.Sequence: list,
    cabc.MutableSequence: list,
    cabc.Iterable: list,
    cabc.Collection: list,
    set: set,
    cabc.Set: set,
    cabc.MutableSet: set,
    frozenset: frozenset,
}
_MAPPINGS: Final = (dict, cabc.Mapping, cabc.MutableMapping)


class Unrebuildable(Exception):  # a reason, shown in one warning
    """The recorded value does not fit the annotation; the message says where and why."""


def return_annotation(func: Callable[..., Any]) -> Any:
    """The resolved return annotation of ``func`` (``Any`` when absent or unresolvable)."""
    target = getattr(func, "__func__", func)
    try:
        hints = get_type_hints(target)
    except Exception:  # a forward reference that does not resolve: rebuild as plain JSON
        hints = {}
    return hints.get("return", Any)


def rebuild(text: str, annotation: Any) -> Any:
    """The value of recorded JSON ``text`` as ``annotation`` describes; ``Unrebuildable`` if not."""
    try:
        value = json.loads(text, parse_constant=_reject)
    except RecursionError:
        raise Unrebuildable("the recorded value is nested too deeply") from None
    except ValueError as exc:
        raise Unrebuildable(f"the recorded value is not JSON ({_one_line(exc)})") from None
    return rebuild_value(value, annotation)


def rebuild_value(value: Any, annotation: Any) -> Any:
    """An already parsed recorded value as ``annotation`` describes; ``Unrebuildable`` if not."""
    try:
        return _Rebuilder().build(value, annotation, "$", 0)
    except RecursionError:
        raise Unrebuildable("the recorded value is nested too deeply") from None


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 200 characters (it may quote the value)."""
    return " ".join(str(exc).split())[:200]


def _fail(path: str, expected: object, value: object) -> Unrebuildable:
    shown = getattr(expected, "__qualname__", None) or repr(expected)
    return Unrebuildable(f"at {path}: expected {shown}, found JSON {type(value).__name__}")


class _Rebuilder:
    def build(self, value: Any, hint: Any, path: str, depth: int) -> Any:  # noqa: PLR0911  # one exit per kind
        if depth > _MAX_DEPTH:
            raise Unrebuildable(f"at {path}: nested too deeply")
        if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
            return value
        if hint is None or hint is type(None):
            if value is not None:
                raise _fail(path, None, value)
            return None
        origin = get_origin(hint)
        if origin is typing.Annotated:
            return self.build(value, get_args(hint)[0], path, depth)
        if origin is Union or origin is types.UnionType:
            return self._union(value, get_args(hint), path, depth)
        if origin is Literal:
            if value not in get_args(hint):
                raise Unrebuildable(f"at {path}: {value!r} is not one of {get_args(hint)!r}")
            return value
        if origin is not None:
            return self._generic(value, origin, get_args(hint), path, depth)
        if isinstance(hint, type):
            return self._class(value, hint, path, depth)
        raise Unrebuildable(f"at {path}: cannot rebuild to {hint!r}")

    def _union(self, value: Any, members: tuple[Any, ...], path: str, depth: int) -> Any:
        ordered = sorted(members, key=lambda m: m is not type(None))  # None first: exact
        for member in ordered:
            try:
                return self.build(value, member, path, depth)
            except Unrebuildable:
                continue
        raise Unrebuildable(f"at {path}: fits none of {members!r}")

    def _generic(
        self, value: Any, origin: Any, args: tuple[Any, ...], path: str, depth: int
    ) -> Any:
        if origin in _SEQUENCES:
            if not isinstance(value, list):
                raise _fail(path, origin, value)
            item = args[0] if args else Any
            items = [self.build(v, item, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
            return _SEQUENCES[origin](items)
        if origin is tuple:
            return self._tuple(value, args, path, depth)
        if origin in _MAPPINGS:
            if not isinstance(value, dict):
                raise _fail(path, dict, value)
            key_hint, item_hint = (*args, Any, Any)[:2]
            return {
                self._key(k, key_hint, path): self.build(v, item_hint, f"{path}.{k}", depth + 1)
                for k, v in value.items()
            }
        if isinstance(origin, type):  # a generic dataclass or model: Box[int]
            return self._class(value, origin, path, depth)
        raise Unrebuildable(f"at {path}: cannot rebuild to {origin!r}")

    def _tuple(self, value: Any, args: tuple[Any, ...], path: str, depth: int) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _fail(path, tuple, value)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]
            hints = [args[0]] * len(value)
        elif not args:
            hints = [Any] * len(value)
        else:
            if len(args) != len(value):
                raise Unrebuildable(f"at {path}: expected {len(args)} items, found {len(value)}")
            hints = list(args)
        return tuple(
            self.build(v, h, f"{path}[{i}]", depth + 1)
            for i, (v, h) in enumerate(zip(value, hints, strict=True))
        )

    def _key(self, key: str, hint: Any, path: str) -> Any:
        if hint is Any or hint is str:
            return key
        try:
            parsed = json.loads(key) if hint in (int, float, bool) else key
        except ValueError:
            raise Unrebuildable(f"at {path}: key {key[:40]!r} is not a {hint!r}") from None
        return self.build(parsed, hint, f"{path}<key>", 0)

    def _class(self, value: Any, cls: type, path: str, depth: int) -> Any:  # noqa: PLR0911  # one exit per kind
        if issubclass(cls, enum.Enum):
            try:
                return cls(value)
            except Exception:  # not one of its values
                raise Unrebuildable(f"at {path}: {value!r} is not a {cls.__qualname__}") from None
        if cls in (bool, int, float, str):
            return _scalar(value, cls, path)
        if cls in (dt.datetime, dt.date, dt.time, dt.timedelta, uuid.UUID, decimal.Decimal):
            return _parsed(value, cls, path)
        if dataclasses.is_dataclass(cls):
            return self._dataclass(value, cls, path, depth)
        if _is_typeddict(cls):
            return self._typeddict(value, cls, path, depth)
        validate = getattr(cls, "model_validate", None)
        if callable(validate):  # pydantic v2
            try:
                return validate(value)
            except Exception as exc:  # a ValidationError: say where, not the whole report
                raise Unrebuildable(
                    f"at {path}: not a valid {cls.__qualname__} ({_one_line(exc)})"
                ) from None
        if cls in (list, dict, tuple, set, frozenset):
            return self._generic(value, cls, (), path, depth)
        raise Unrebuildable(f"at {path}: cannot rebuild a {cls.__qualname__}")

    def _dataclass(self, value: Any, cls: type, path: str, depth: int) -> Any:
        if not isinstance(value, dict):
            raise _fail(path, cls, value)
        hints = _hints(cls, path)
        kwargs = {}
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            if field.name not in value:
                if (
                    field.default is dataclasses.MISSING
                    and field.default_factory is dataclasses.MISSING
                ):
                    raise Unrebuildable(f"at {path}: field {field.name!r} is missing")
                continue
            hint = hints.get(field.name, Any)
            kwargs[field.name] = self.build(
                value[field.name], hint, f"{path}.{field.name}", depth + 1
            )
        try:
            return cls(**kwargs)
        except Exception as exc:  # __post_init__ refusing the values
            raise Unrebuildable(
                f"at {path}: {cls.__qualname__}() refused it ({_one_line(exc)})"
            ) from None

    def _typeddict(self, value: Any, cls: type, path: str, depth: int) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(path, cls, value)
        hints = _hints(cls, path)
        required: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
        missing = [key for key in required if key not in value]
        if missing:
            raise Unrebuildable(f"at {path}: key {sorted(missing)[0]!r} is missing")
        return {
            key: self.build(item, hints.get(key, Any), f"{path}.{key}", depth + 1)
            for key, item in value.items()
        }


def _hints(cls: type, path: str) -> dict[str, Any]:
    try:
        return get_type_hints(cls)
    except Exception:  # an unresolvable forward reference
        raise Unrebuildable(
            f"at {path}: the annotations of {cls.__qualname__} do not resolve"
        ) from None


def _is_typeddict(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__total__")


def _scalar(value: Any, cls: type, path: str) -> Any:
    if cls is float and type(value) is str and value in _NON_FINITE:
        return _NON_FINITE[value]
    if cls is float and type(value) is int:
        return float(value)
    if type(value) is not cls:
        raise _fail(path, cls, value)
    return value


def _parsed(value: Any, cls: type, path: str) -> Any:
    if type(value) is not str:
        raise _fail(path, cls, value)
    try:
        if cls is dt.timedelta:
            return dt.timedelta(seconds=float(value))
        if cls in (dt.datetime, dt.date, dt.time):
            return cls.fromisoformat(value)
        return cls(value)
    except (ValueError, ArithmeticError, OverflowError):
        raise Unrebuildable(f"at {path}: {value[:60]!r} is not a {cls.__qualname__}") from None
