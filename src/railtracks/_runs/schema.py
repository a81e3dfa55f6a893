"""Validating saved states against the published JSON Schema (``state.schema.json``).

Saved states are untrusted input (SPEC 7): ``show``, ``runs``, ``export`` and
``rt.load_state`` validate a file against the schema before reading a field
of it. This is a small validator for the part of JSON Schema 2020-12 the
schema uses (``type``, ``const``, ``enum``, ``pattern``, ``required``,
``properties``, ``additionalProperties``, ``unevaluatedProperties: false``
over ``allOf``, ``items``, ``oneOf``, ``allOf``, ``if``/``then``/``else``,
``minimum``, ``exclusiveMinimum``, local ``$ref``, the boolean schemas),
rather than a runtime dependency on ``jsonschema`` (the test suite checks
the same files with ``jsonschema`` too).

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
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any, Final

from .fastcheck import node_check

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


# A location in the document, built only as deep as the walk goes: (parent, key).
Path = tuple[Any, str | int] | None
# A problem is formatted only when reported: oneOf tries forms that are expected to fail.
Problem = Callable[[], str]
Check = Callable[[Any, Path], Problem | None]


def _where(path: Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)) or "the document"


@functools.cache
def published_schema() -> dict[str, Any]:
    """The schema shipped with the package."""
    text = resources.files("railtracks").joinpath("state.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class Validator:
    """Checks documents against one schema; raises ``SchemaError`` at the first problem.

    The schema is compiled once into small closures, one per keyword, so a
    100,000-node state is checked at a few microseconds per field.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self._root = schema
        self._compiled: dict[int, Check] = {}
        self._evaluated: dict[int, frozenset[str]] = {}
        self._pending: list[tuple[Check, Any, Path]] = []
        self._check = self._compile(schema)

    def validate(self, document: object) -> None:
        pending = self._pending
        pending.clear()
        pending.append((self._check, document, None))
        while pending:
            check, instance, path = pending.pop()
            problem = check(instance, path)
            if problem is not None:
                pending.clear()
                raise SchemaError(problem())

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

    def _compile(self, schema: dict[str, Any] | bool) -> Check:
        if schema is True:
            return lambda instance, path: None
        if schema is False:
            return lambda instance, path: lambda: f"{_where(path)}: not allowed here"
        known = self._compiled.get(id(schema))
        if known is not None:
            return known
        slot: list[Check] = []
        # a forward reference, for schemas that refer to themselves
        self._compiled[id(schema)] = lambda instance, path: slot[0](instance, path)  # noqa: PLW0108  # slot is filled below
        checks = self._keyword_checks(schema)
        if not checks:
            compiled: Check = lambda instance, path: None  # noqa: E731  # the empty schema
        elif len(checks) == 1:
            compiled = checks[0]
        else:
            all_checks = tuple(checks)

            def compiled(instance: Any, path: Path) -> Problem | None:
                for check in all_checks:
                    problem = check(instance, path)
                    if problem is not None:
                        return problem
                return None

        slot.append(compiled)
        self._compiled[id(schema)] = compiled
        return compiled

    def _keyword_checks(self, schema: dict[str, Any]) -> list[Check]:  # noqa: PLR0912, PLR0915  # one clause per keyword
        checks: list[Check] = []
        ref = schema.get("$ref")
        if ref is not None:
            target = self._compile(self._resolve(ref))
            if ref in _DEFERRED:
                pending = self._pending
                target = node_check(target, pending, self._root["$defs"])  # plain nodes: fast

                def deferred(instance: Any, path: Path) -> None:
                    pending.append((target, instance, path))

                checks.append(deferred)
            else:
                checks.append(target)
        kind = schema.get("type")
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            tests = tuple(_TYPES[k] for k in kinds)
            expected = " or ".join(kinds)

            def typed(instance: Any, path: Path) -> Problem | None:
                for test in tests:
                    if test(instance):
                        return None
                return lambda: f"{_where(path)}: expected {expected}, got {_json_type(instance)}"

            checks.append(typed)
        if "const" in schema:
            constant = schema["const"]
            checks.append(
                lambda i, p: (
                    None
                    if _same(i, constant)
                    else (lambda: f"{_where(p)}: expected {json.dumps(constant)}")
                )
            )
        if "enum" in schema:
            options = tuple(schema["enum"])
            hashable = frozenset(o for o in options if type(o) is str)
            shown = ", ".join(map(json.dumps, options))

            def member(instance: Any, path: Path) -> Problem | None:
                if type(instance) is str and instance in hashable:
                    return None
                if any(_same(instance, option) for option in options):
                    return None
                return lambda: f"{_where(path)}: expected one of {shown}"

            checks.append(member)
        if "pattern" in schema:
            source = schema["pattern"]
            search = re.compile(source).search
            checks.append(
                lambda i, p: (
                    (lambda: f"{_where(p)}: does not match {source}")
                    if type(i) is str and search(i) is None
                    else None
                )
            )
        if "minimum" in schema:
            low = schema["minimum"]
            checks.append(
                lambda i, p: (
                    (lambda: f"{_where(p)}: below {low}") if _is_number(i) and i < low else None
                )
            )
        if "exclusiveMinimum" in schema:
            above = schema["exclusiveMinimum"]
            checks.append(
                lambda i, p: (
                    (lambda: f"{_where(p)}: not above {above}")
                    if _is_number(i) and i <= above
                    else None
                )
            )
        checks.extend(self._compile(part) for part in schema.get("allOf", ()))
        if "oneOf" in schema:
            forms = tuple(self._compile(part) for part in schema["oneOf"])

            def one_of(instance: Any, path: Path) -> Problem | None:
                matching = sum(form(instance, path) is None for form in forms)
                if matching == 1:
                    return None
                return lambda: (
                    f"{_where(path)}: matches {matching} of the allowed forms, not exactly one"
                )

            checks.append(one_of)
        if "items" in schema:
            item_check = self._compile(schema["items"])

            def items(instance: Any, path: Path) -> Problem | None:
                if type(instance) is not list:
                    return None
                for index, item in enumerate(instance):
                    problem = item_check(item, (path, index))
                    if problem is not None:
                        return problem
                return None

            checks.append(items)
        if any(k in schema for k in ("required", "properties", "additionalProperties")) or (
            schema.get("unevaluatedProperties") is False
        ):
            checks.append(self._object_check(schema))
        if "if" in schema:
            checks.append(self._conditional(schema))
        return checks

    def _conditional(self, schema: dict[str, Any]) -> Check:
        """``if``/``then``/``else``: ``if`` only chooses; its own problems are never reported."""
        condition = self._compile(schema["if"])
        then = self._compile(schema.get("then", True))
        otherwise = self._compile(schema.get("else", True))

        def check(instance: Any, path: Path) -> Problem | None:
            chosen = then if condition(instance, path) is None else otherwise
            return chosen(instance, path)

        return check

    def _object_check(self, schema: dict[str, Any]) -> Check:
        required = tuple(schema.get("required", ()))
        properties = {
            name: self._compile(sub) for name, sub in schema.get("properties", {}).items()
        }
        extra = schema.get("additionalProperties", True)
        extra_check = self._compile(extra) if isinstance(extra, dict) else None
        closed = extra is False
        allowed = (
            self._evaluated_names(schema) if schema.get("unevaluatedProperties") is False else None
        )

        def check(instance: Any, path: Path) -> Problem | None:
            if type(instance) is not dict:
                return None
            for name in required:
                if name not in instance:
                    return lambda: f"{_where(path)}: missing {name!r}"
            for name, value in instance.items():
                sub = properties.get(name)
                if sub is not None:
                    problem = sub(value, (path, name))
                elif closed or (allowed is not None and name not in allowed):
                    return _unexpected(path, name)
                elif extra_check is not None:
                    problem = extra_check(value, (path, name))
                else:
                    problem = None
                if problem is not None:
                    return problem
            return None

        return check


def _unexpected(path: Path, name: str) -> Problem:
    return lambda: f"{_where(path)}: unexpected field {name!r}"


def _json_type(value: object) -> str:
    for name, test in _TYPES.items():
        if name != "number" and test(value):
            return name
    return "number" if isinstance(value, float) else type(value).__name__


_COMPILED = threading.local()


def validate_state(document: object) -> None:
    """Raise ``SchemaError`` unless ``document`` is a valid saved state."""
    # compiled once per thread (a Validator keeps its work list between calls):
    # `railtracks runs` checks one head per file
    validator = getattr(_COMPILED, "validator", None)
    if validator is None:
        validator = _COMPILED.validator = Validator(published_schema())
    validator.validate(document)


def validate_node(node: object) -> None:
    """Raise ``SchemaError`` unless ``node`` is a valid node (as streamed: its children apart)."""
    validator = getattr(_COMPILED, "node_validator", None)
    if validator is None:
        definitions = published_schema()["$defs"]
        root = {"$ref": "#/$defs/node", "$defs": definitions}
        validator = _COMPILED.node_validator = Validator(root)
    validator.validate(node)
