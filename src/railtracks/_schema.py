"""Validating saved states against the published JSON Schema (``state.schema.json``).

Saved states are untrusted input (SPEC 7): ``show``, ``runs``, ``export`` and
``rt.load_state`` validate a file against the schema before reading a field
of it. This is a small validator for the part of JSON Schema 2020-12 the
schema uses (``type``, ``const``, ``enum``, ``pattern``, ``required``,
``properties``, ``additionalProperties``, ``unevaluatedProperties: false``
over ``allOf``, ``items``, ``oneOf``, ``allOf``, ``minimum``,
``exclusiveMinimum``, local ``$ref``), rather than a runtime dependency on
``jsonschema`` (the test suite checks the same files with ``jsonschema`` too).

Two things it does that a generic validator does not:

* JSON types are strict: ``true`` is a boolean, never the integer 1, so
  ``"schema_version": true`` is rejected (Python's ``True == 1``);
* the call tree is walked with a work list, not recursion: a crafted file
  nested 100,000 levels deep is a clear error, never a ``RecursionError``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from importlib import resources
from typing import Any, Final

# References to these definitions are checked from the work list, not recursively.
_DEFERRED: Final = frozenset({"#/$defs/node"})


class SchemaError(ValueError):
    """The document does not match the schema; the message says where and why."""


def _is_integer(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return (type(value) is int) or (type(value) is float and math.isfinite(value))


_TYPES: Final[dict[str, Callable[[object], bool]]] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "integer": _is_integer,
    "number": _is_number,
    "null": lambda v: v is None,
}


def _same(a: object, b: object) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` equals ``1.0``."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _where(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "the document"


@functools.cache
def published_schema() -> dict[str, Any]:
    """The schema shipped with the package."""
    text = resources.files("railtracks").joinpath("state.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class Validator:
    """Checks documents against one schema; raises ``SchemaError`` at the first problem."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._root = schema
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._evaluated: dict[int, frozenset[str]] = {}
        self._pending: list[tuple[Any, dict[str, Any], tuple[str | int, ...]]] = []

    def validate(self, document: object) -> None:
        self._pending = [(document, self._root, ())]
        while self._pending:
            instance, schema, path = self._pending.pop()
            problem = self._check(instance, schema, path)
            if problem is not None:
                self._pending = []
                raise SchemaError(problem)

    def _resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/"):
            raise SchemaError(f"unsupported reference {ref!r} in the schema")
        node: Any = self._root
        for part in ref[2:].split("/"):
            node = node[part]
        return node  # type: ignore[no-any-return]  # a sub-schema

    def _evaluated_names(self, schema: dict[str, Any]) -> frozenset[str]:
        """Property names ``unevaluatedProperties`` sees as evaluated (own and allOf's)."""
        known = self._evaluated.get(id(schema))
        if known is None:
            names = set(schema.get("properties", {}))
            for part in schema.get("allOf", []):
                target = self._resolve(part["$ref"]) if "$ref" in part else part
                names.update(self._evaluated_names(target))
            known = self._evaluated[id(schema)] = frozenset(names)
        return known

    def _check(  # noqa: PLR0911, PLR0912  # one clause per keyword
        self, instance: Any, schema: dict[str, Any], path: tuple[str | int, ...]
    ) -> str | None:
        ref = schema.get("$ref")
        if ref is not None:
            if ref in _DEFERRED and path:
                self._pending.append((instance, self._resolve(ref), path))
                return None
            problem = self._check(instance, self._resolve(ref), path)
            if problem is not None:
                return problem
        kind = schema.get("type")
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else kind
            if not any(_TYPES[k](instance) for k in kinds):
                return f"{_where(path)}: expected {' or '.join(kinds)}, got {_json_type(instance)}"
        if "const" in schema and not _same(instance, schema["const"]):
            return f"{_where(path)}: expected {json.dumps(schema['const'])}"
        if "enum" in schema and not any(_same(instance, v) for v in schema["enum"]):
            return f"{_where(path)}: expected one of {', '.join(map(json.dumps, schema['enum']))}"
        if type(instance) is str and "pattern" in schema:
            pattern = self._patterns.get(schema["pattern"])
            if pattern is None:
                pattern = self._patterns[schema["pattern"]] = re.compile(schema["pattern"])
            if pattern.search(instance) is None:
                return f"{_where(path)}: does not match {schema['pattern']}"
        if _is_number(instance):
            if "minimum" in schema and instance < schema["minimum"]:
                return f"{_where(path)}: below {schema['minimum']}"
            if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
                return f"{_where(path)}: not above {schema['exclusiveMinimum']}"
        for part in schema.get("allOf", ()):
            problem = self._check(instance, part, path)
            if problem is not None:
                return problem
        if "oneOf" in schema:
            matching = sum(self._check(instance, part, path) is None for part in schema["oneOf"])
            if matching != 1:
                return f"{_where(path)}: matches {matching} of the allowed forms, not exactly one"
        if type(instance) is dict:
            return self._check_object(instance, schema, path)
        if type(instance) is list and "items" in schema:
            items = schema["items"]
            for index, item in enumerate(instance):
                problem = self._check(item, items, (*path, index))
                if problem is not None:
                    return problem
        return None

    def _check_object(
        self, instance: dict[str, Any], schema: dict[str, Any], path: tuple[str | int, ...]
    ) -> str | None:
        for name in schema.get("required", ()):
            if name not in instance:
                return f"{_where(path)}: missing {name!r}"
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, value in instance.items():
            sub = properties.get(name)
            if sub is not None:
                problem = self._check(value, sub, (*path, name))
            elif extra is False:
                problem = f"{_where(path)}: unexpected field {name!r}"
            elif isinstance(extra, dict):
                problem = self._check(value, extra, (*path, name))
            else:
                problem = None
            if problem is not None:
                return problem
        if schema.get("unevaluatedProperties") is False:
            allowed = self._evaluated_names(schema)
            for name in instance:
                if name not in allowed:
                    return f"{_where(path)}: unexpected field {name!r}"
        return None


def _json_type(value: object) -> str:
    for name, test in _TYPES.items():
        if name != "number" and test(value):
            return name
    return "number" if isinstance(value, float) else type(value).__name__


def validate_state(document: object) -> None:
    """Raise ``SchemaError`` unless ``document`` is a valid saved state."""
    Validator(published_schema()).validate(document)
