"""A short difference of two JSON values: the first few paths where they differ.

Used by ``railtracks diff`` for outputs and arguments. The walk is a work list
(a value nested thousands of levels deep is no ``RecursionError``) and stops
after ``limit`` differences; each value is shown as JSON, cut to a few dozen
characters. The lines are plain text: printing them safely is the caller's job.
"""

from __future__ import annotations

import json
from typing import Any, Final

SHOWN_CHARS: Final = 60
MISSING: Final = object()


def short(value: Any, width: int = SHOWN_CHARS) -> str:
    """A value as one line of JSON, cut to ``width`` characters with an ellipsis."""
    if value is MISSING:
        return "(none)"
    try:
        shown = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError):  # nested too deeply to print: its type
        shown = f"[{type(value).__name__} nested too deeply to show]"
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"


def _same(a: Any, b: Any) -> bool:
    """JSON equality of two leaves: ``1`` equals ``1.0``, ``true`` is not ``1``."""
    numbers = (int, float)
    if type(a) in numbers and type(b) in numbers:
        return bool(a == b)
    return type(a) is type(b) and a == b


def value_diff(before: Any, after: Any, limit: int = 5) -> tuple[list[str], int]:
    """``(up to limit lines "path: before -> after", how many differences were found in all)``.

    The count stops growing at ``limit * 20``: a huge value is not walked to its end.
    """
    lines: list[str] = []
    found = 0
    stack: list[tuple[str, Any, Any]] = [("$", before, after)]
    while stack and found < limit * 20:
        path, a, b = stack.pop()
        if type(a) is dict and type(b) is dict:
            if a == b:
                continue
            keys = sorted(set(a) | set(b), reverse=True)
            stack.extend((_key_path(path, k), a.get(k, MISSING), b.get(k, MISSING)) for k in keys)
            continue
        if type(a) is list and type(b) is list and a != b:
            if len(a) != len(b):
                found += 1
                if len(lines) < limit:
                    lines.append(f"{path}: {len(a)} items -> {len(b)} items")
            pairs = [(f"{path}[{i}]", a[i], b[i]) for i in range(min(len(a), len(b)))]
            stack.extend(reversed(pairs))
            continue
        if _same(a, b):
            continue
        found += 1
        if len(lines) < limit:
            lines.append(f"{path}: {short(a)} -> {short(b)}")
    return lines, found
