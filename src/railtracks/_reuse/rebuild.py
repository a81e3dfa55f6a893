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

import functools
import json
from collections.abc import Callable
from typing import Any, get_type_hints

from .plans import Miss, Plan, any_plan, one_line, plan_of


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


def parse_recorded(text: str) -> Any:
    """Recorded JSON ``text`` parsed (no NaN or Infinity); ``Unrebuildable`` if it is not JSON."""
    try:
        return json.loads(text, parse_constant=_reject)
    except RecursionError:
        raise Unrebuildable("the recorded value is nested too deeply") from None
    except ValueError as exc:
        raise Unrebuildable(f"the recorded value is not JSON ({one_line(exc)})") from None


def rebuild(text: str, annotation: Any) -> Any:
    """The value of recorded JSON ``text`` as ``annotation`` describes; ``Unrebuildable`` if not."""
    return rebuilder(annotation)(parse_recorded(text))


def rebuild_value(value: Any, annotation: Any) -> Any:
    """An already parsed recorded value as ``annotation`` describes; ``Unrebuildable`` if not."""
    return rebuilder(annotation)(value)


def rebuilder(annotation: Any) -> Callable[[Any], Any]:
    """What rebuilds a parsed recorded value to ``annotation``, worked out once per annotation.

    Raises ``Unrebuildable`` (``at $.path: why``) for a value that does not fit.
    """
    plan = plan_of(annotation)
    return _unchanged if plan is any_plan else functools.partial(_build, plan)


def _build(plan: Plan, value: Any) -> Any:
    try:
        return plan(value, 0)
    except Miss as miss:
        where = "$" + "".join(reversed(miss.where))
        raise Unrebuildable(f"at {where}: {miss.why}") from None
    except RecursionError:
        raise Unrebuildable("the recorded value is nested too deeply") from None


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unchanged(value: Any) -> Any:
    return value
