"""The viewer's compare page data: two saved runs of the state directory, diffed (SPEC 14).

``GET /api/compare/{key A}/{key B}`` answers ``railtracks diff --json``'s
document for ``{key}.json`` of the directory the viewer serves, with the
lines of values redacted as everything the viewer shows. Both files are read
by the strict reader (``_runs.store``); a missing or invalid one is a 404
with one line saying which and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._reuse.rundiff import diff_states
from .._runs.pending import wait_for_directory
from .._runs.store import parse_state
from ..errors import StateError
from ._values import shown


def _key_ok(key: str) -> bool:
    return (
        bool(key)
        and "/" not in key
        and "\\" not in key
        and not key.startswith(".")
        and ("\0" not in key)
    )


def compare_runs(directory: Path, key_a: str, key_b: str) -> tuple[dict[str, Any] | None, str]:
    """``(the difference, "")``, or ``(None, why not)``."""
    wait_for_directory(directory)
    states = []
    for key in (key_a, key_b):
        if not _key_ok(key):
            return None, f"no saved run {key!r}"
        path = directory / f"{key}.json"
        try:
            states.append(parse_state(path.read_bytes(), key))
        except OSError:
            return None, f"no saved run {key!r}"
        except StateError as exc:
            return None, str(exc)
    result = diff_states(states[0], states[1], (key_a, key_b))
    del states
    for change in (*result["session"], *result["changes"]):
        change["lines"] = [shown(line) for line in change.get("lines", ())]
        change["detail"] = shown(change["detail"])
    return result, ""
