"""How a recorded value is rebuilt to one annotation, worked out once per annotation.

``_reuse.rebuild`` describes what is supported. A plan is a function of the
parsed value (and its depth) that returns it rebuilt or raises ``Miss``
saying why; the path inside the value is added as the ``Miss`` goes back up
through the containers, so a value that fits costs no path strings.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import itertools
import json
import types
import typing
import uuid
from collections.abc import Callable, Iterable
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


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 200 characters (it may quote the value)."""
    return " ".join(str(exc).split())[:200]


# (value, depth) -> the value rebuilt, or Miss
Plan = Callable[[Any, int], Any]


class Miss(Exception):  # not an error: where (innermost first) and why
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
        self.where: list[str] = []


def _at(miss: Miss, segment: str) -> Miss:
    miss.where.append(segment)
    return miss


def _fail(expected: object, value: object) -> Miss:
    shown = getattr(expected, "__qualname__", None) or repr(expected)
    return Miss(f"expected {shown}, found JSON {type(value).__name__}")


def any_plan(value: Any, depth: int) -> Any:
    return value


_PLANS: Final[dict[Any, Plan]] = {}
_MAX_PLANS: Final = 4096


def plan_of(hint: Any) -> Plan:
    """The plan of ``hint`` (cached)."""
    try:
        found = _PLANS.get(hint)
    except TypeError:  # an unhashable annotation: planned every time
        return _make(hint)
    if found is None:
        found = _make(hint)
        if len(_PLANS) < _MAX_PLANS:
            _PLANS[hint] = found
    return found


def _make(hint: Any) -> Plan:  # noqa: PLR0911  # one exit per kind
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return any_plan
    if hint is None or hint is type(None):
        return _none
    origin = get_origin(hint)
    if origin is typing.Annotated:
        return plan_of(get_args(hint)[0])
    if origin is Union or origin is types.UnionType:
        return _union(get_args(hint))
    if origin is Literal:
        return _literal(get_args(hint))
    if origin is not None:
        return _generic(origin, get_args(hint))
    if isinstance(hint, type):
        return _class(hint)
    return _refuse(f"cannot rebuild to {hint!r}")


def _refuse(why: str) -> Plan:
    def refuse(value: Any, depth: int) -> Any:
        raise Miss(why)

    return refuse


def _none(value: Any, depth: int) -> Any:
    if value is not None:
        raise _fail(None, value)
    return None


def _literal(choices: tuple[Any, ...]) -> Plan:
    def literal(value: Any, depth: int) -> Any:
        if value not in choices:
            raise Miss(f"{value!r} is not one of {choices!r}")
        return value

    return literal


def _union(members: tuple[Any, ...]) -> Plan:
    plans = [plan_of(m) for m in sorted(members, key=lambda m: m is not type(None))]  # None first

    def union(value: Any, depth: int) -> Any:
        for plan in plans:
            try:
                return plan(value, depth)
            except Miss:
                continue
        raise Miss(f"fits none of {members!r}")

    return union


def _deep(depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise Miss("nested too deeply")


def _generic(origin: Any, args: tuple[Any, ...]) -> Plan:
    if origin in _SEQUENCES:
        return _sequence(origin, plan_of(args[0] if args else Any))
    if origin is tuple:
        return _tuple(args)
    if origin in _MAPPINGS:
        key_hint, item_hint = (*args, Any, Any)[:2]
        return _mapping(key_hint, plan_of(item_hint))
    if isinstance(origin, type):  # a generic dataclass or model: Box[int]
        return _class(origin)
    return _refuse(f"cannot rebuild to {origin!r}")


def _sequence(origin: Any, item: Plan) -> Plan:
    make = _SEQUENCES[origin]

    def sequence(value: Any, depth: int) -> Any:
        _deep(depth)
        if not isinstance(value, list):
            raise _fail(origin, value)
        if item is any_plan:
            return make(value)
        items = []
        for index, one in enumerate(value):
            try:
                items.append(item(one, depth + 1))
            except Miss as miss:
                raise _at(miss, f"[{index}]") from None
        return make(items)

    return sequence


def _tuple(args: tuple[Any, ...]) -> Plan:
    repeated = len(args) == 2 and args[1] is Ellipsis  # tuple[X, ...]
    plans = [plan_of(args[0])] if repeated else [plan_of(a) for a in args]

    def fixed(value: Any, depth: int) -> tuple[Any, ...]:
        _deep(depth)
        if not isinstance(value, list):
            raise _fail(tuple, value)
        hints: Iterable[Plan]
        if repeated or not args:
            hints = itertools.repeat(plans[0] if repeated else any_plan)
        else:
            if len(args) != len(value):
                raise Miss(f"expected {len(args)} items, found {len(value)}")
            hints = plans
        items = []
        for index, (one, plan) in enumerate(zip(value, hints, strict=False)):
            try:
                items.append(plan(one, depth + 1))
            except Miss as miss:
                raise _at(miss, f"[{index}]") from None
        return tuple(items)

    return fixed


def _mapping(key_hint: Any, item: Plan) -> Plan:
    plain_keys = key_hint is Any or key_hint is str
    key_plan = None if plain_keys else plan_of(key_hint)

    def mapping(value: Any, depth: int) -> dict[Any, Any]:
        _deep(depth)
        if not isinstance(value, dict):
            raise _fail(dict, value)
        out = {}
        for key, one in value.items():
            built = key if key_plan is None else _key(key, key_hint, key_plan)
            try:
                out[built] = item(one, depth + 1)
            except Miss as miss:
                raise _at(miss, f".{key}") from None
        return out

    return mapping


def _key(key: str, hint: Any, plan: Plan) -> Any:
    try:
        parsed = json.loads(key) if hint in (int, float, bool) else key
    except ValueError:
        raise Miss(f"key {key[:40]!r} is not a {hint!r}") from None
    try:
        return plan(parsed, 0)
    except Miss as miss:
        raise _at(miss, "<key>") from None


def _class(cls: type) -> Plan:  # noqa: PLR0911  # one exit per kind
    if issubclass(cls, enum.Enum):
        return _enum(cls)
    if cls in (bool, int, float, str):
        return _SCALARS[cls]
    if cls in (dt.datetime, dt.date, dt.time, dt.timedelta, uuid.UUID, decimal.Decimal):
        return functools.partial(_parsed, cls)
    if dataclasses.is_dataclass(cls):
        return _Fields(cls, dataclass=True)
    if _is_typeddict(cls):
        return _Fields(cls, dataclass=False)
    validate = getattr(cls, "model_validate", None)
    if callable(validate):  # pydantic v2
        return _model(cls, validate)
    if cls in (list, dict, tuple, set, frozenset):
        return _generic(cls, ())
    return _refuse(f"cannot rebuild a {cls.__qualname__}")


def _enum(cls: type[enum.Enum]) -> Plan:
    def member(value: Any, depth: int) -> Any:
        try:
            return cls(value)
        except Exception:  # not one of its values
            raise Miss(f"{value!r} is not a {cls.__qualname__}") from None

    return member


def _model(cls: type, validate: Callable[[Any], Any]) -> Plan:
    def model(value: Any, depth: int) -> Any:
        try:
            return validate(value)
        except Exception as exc:  # a ValidationError: say where, not the whole report
            raise Miss(f"not a valid {cls.__qualname__} ({one_line(exc)})") from None

    return model


class _Fields:
    """A dataclass's or a TypedDict's plan; its fields planned at first use (they may
    name the class itself)."""

    __slots__ = ("_cls", "_dataclass", "_fields", "_required")

    def __init__(self, cls: type, *, dataclass: bool) -> None:
        self._cls = cls
        self._dataclass = dataclass
        self._fields: dict[str, tuple[Plan, bool]] | None = None
        self._required: frozenset[str] = frozenset()

    def _plan_fields(self) -> dict[str, tuple[Plan, bool]]:
        cls = self._cls
        try:
            hints = get_type_hints(cls)
        except Exception:  # an unresolvable forward reference
            raise Miss(f"the annotations of {cls.__qualname__} do not resolve") from None
        if not self._dataclass:
            self._required = getattr(cls, "__required_keys__", frozenset())
            self._fields = {key: (plan_of(hint), False) for key, hint in hints.items()}
            return self._fields
        fields: dict[str, tuple[Plan, bool]] = {}
        for field in dataclasses.fields(cls):
            if field.init:
                required = (
                    field.default is dataclasses.MISSING
                    and field.default_factory is dataclasses.MISSING
                )
                fields[field.name] = (plan_of(hints.get(field.name, Any)), required)
        self._fields = fields
        return fields

    def __call__(self, value: Any, depth: int) -> Any:
        _deep(depth)
        cls = self._cls
        if not isinstance(value, dict):
            raise _fail(cls, value)
        fields = self._fields if self._fields is not None else self._plan_fields()
        if not self._dataclass:
            return self._typeddict(value, fields, depth)
        kwargs = {}
        for name, (plan, required) in fields.items():
            if name not in value:
                if required:
                    raise Miss(f"field {name!r} is missing")
                continue
            try:
                kwargs[name] = plan(value[name], depth + 1)
            except Miss as miss:
                raise _at(miss, f".{name}") from None
        try:
            return cls(**kwargs)
        except Exception as exc:  # __post_init__ refusing the values
            raise Miss(f"{cls.__qualname__}() refused it ({one_line(exc)})") from None

    def _typeddict(
        self, value: dict[str, Any], fields: dict[str, tuple[Plan, bool]], depth: int
    ) -> dict[str, Any]:
        missing = [key for key in self._required if key not in value]
        if missing:
            raise Miss(f"key {sorted(missing)[0]!r} is missing")
        out = {}
        for key, item in value.items():
            plan = fields[key][0] if key in fields else any_plan
            try:
                out[key] = plan(item, depth + 1)
            except Miss as miss:
                raise _at(miss, f".{key}") from None
        return out


def _is_typeddict(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__total__")


def _exactly(cls: type) -> Plan:
    def scalar(value: Any, depth: int) -> Any:
        if type(value) is not cls:
            raise _fail(cls, value)
        return value

    return scalar


def _float(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    if kind is str and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise _fail(float, value)


_SCALARS: Final[dict[type, Plan]] = {
    bool: _exactly(bool),
    int: _exactly(int),
    str: _exactly(str),
    float: _float,
}


def _parsed(cls: type, value: Any, depth: int) -> Any:
    if type(value) is not str:
        raise _fail(cls, value)
    try:
        if cls is dt.timedelta:
            return dt.timedelta(seconds=float(value))
        if cls in (dt.datetime, dt.date, dt.time):
            return cls.fromisoformat(value)
        return cls(value)
    except (ValueError, ArithmeticError, OverflowError):
        raise Miss(f"{value[:60]!r} is not a {cls.__qualname__}") from None
