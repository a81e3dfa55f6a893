"""A fast path for checking a state's nodes against the schema (SPEC 13: read as fast as parsed).

The compiled validator (``_runs.schema``) checks a node keyword by keyword,
a closure call per field: three quarters of ``rt.load_state``'s time on a
200,000-node state. Nearly every node has the same plain shape, so
``node_check`` first tests that shape in straight-line code: exactly the
required fields, each of the type the schema gives it, no events, no
``dropped``, not foreign. A node that passes is valid (the test accepts
nothing the schema refuses); any other node (a richer one, or an invalid
one) goes to the compiled validator, which checks it fully and says what is
wrong. The enumerations and required fields are read from the schema itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

Check = Callable[[Any, Any], Any]
_HEX_SPAN: Final = re.compile(r"[0-9a-f]{16}")
_SCALARS: Final = frozenset({str, bool, int, float})
_SCALARS_AND_LIST: Final = _SCALARS | {list}
_ERROR_KEYS: Final = frozenset({"type", "message"})


def _attributes_ok(value: Any) -> bool:
    if type(value) is not dict:
        return False
    kinds = set(map(type, value.values()))  # in C: the common case is all scalars
    if kinds <= _SCALARS:
        return True
    if not kinds <= _SCALARS_AND_LIST:
        return False
    arrays = (item for item in value.values() if type(item) is list)
    return all(set(map(type, item)) <= _SCALARS for item in arrays)


def _error_ok(error: Any) -> bool:
    if error is None:
        return True
    if type(error) is not dict or error.keys() != _ERROR_KEYS:
        return False
    kind, message = error["type"], error["message"]
    return (kind is None or type(kind) is str) and (message is None or type(message) is str)


def _time_ok(value: Any) -> bool:
    return value is None or (type(value) is int and value >= 0)


class _Shape:
    """What a plain node is, read from the schema's definitions."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        fields = definitions["span_fields"]
        node = definitions["node"]
        self.keys = frozenset(fields["required"]) | frozenset(node["required"])
        self.statuses = frozenset(definitions["status"]["enum"])
        self.codes = frozenset(fields["properties"]["status_code"]["enum"])
        self.kinds = frozenset(fields["properties"]["kind"]["enum"])

    def plain(self, node: Any) -> bool:  # noqa: PLR0911  # one exit per field group
        """True only when ``node``'s own fields are valid (its children are checked apart)."""
        if type(node) is not dict or node.keys() != self.keys:
            return False
        span_id, parent = node["span_id"], node["parent_span_id"]
        if type(span_id) is not str or _HEX_SPAN.fullmatch(span_id) is None:
            return False
        if parent is not None and (type(parent) is not str or _HEX_SPAN.fullmatch(parent) is None):
            return False
        status, code, kind = node["status"], node["status_code"], node["kind"]
        if type(status) is not str or type(code) is not str or type(kind) is not str:
            return False
        if status not in self.statuses or code not in self.codes or kind not in self.kinds:
            return False
        duration = node["duration_seconds"]
        if not (
            _time_ok(node["start_time_unix_nano"])
            and _time_ok(node["end_time_unix_nano"])
            and (duration is None or (type(duration) in (int, float) and duration >= 0))
        ):
            return False
        if node["context_changes"] != [] or node["events"] != []:  # only a list equals []
            return False
        return (
            type(node["name"]) is str
            and type(node["children"]) is list
            and _error_ok(node["error"])
            and _attributes_ok(node["context"])
            and _attributes_ok(node["attributes"])
        )


def node_check(full: Check, pending: list[Any], definitions: dict[str, Any]) -> Check:
    """A node check: the plain shape tested first, ``full`` (the compiled one) otherwise."""
    shape = _Shape(definitions)
    plain = shape.plain

    def check(instance: Any, path: Any) -> Any:
        if not plain(instance):
            return full(instance, path)
        children = instance["children"]
        if children:
            where = (path, "children")
            pending.extend((check, child, (where, i)) for i, child in enumerate(children))
        return None

    return check
