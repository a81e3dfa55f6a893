"""Two saved runs compared call by call (SPEC 14 "Diff"): ``railtracks diff`` and the viewer.

The calls are aligned by place (``_reuse.callkey``, the call key of resume and replay).
What differs, per call:

* ``added`` / ``removed``: a place only one run has (only the topmost of a
  missing subtree is listed, with how many calls it holds);
* ``arguments``: the same place called with other arguments;
* ``status``: another final status; ``error``: failed both times, differently;
* ``output``: completed both times with another output.

The session's status and answer are compared too. Timing changes are
reported apart and never make two runs "different": a call whose duration
changed by at least ``TIMING_RATIO`` and ``TIMING_SECONDS`` is notable.
The result is a plain JSON document (``--json`` prints it as is).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .callkey import Call, Place, calls_by_place, place_text
from .valuediff import short, value_diff

TIMING_RATIO: Final = 1.5
TIMING_SECONDS: Final = 0.05
TIMING_SHOWN: Final = 20
KINDS: Final = ("added", "removed", "arguments", "status", "error", "output")


def _run_summary(state: Mapping[str, Any], label: str, calls: int) -> dict[str, Any]:
    session = state.get("session") or {}
    return {
        "run": label,
        "name": session.get("name") or session.get("identifier"),
        "trace_id": session.get("trace_id"),
        "status": session.get("status"),
        "duration_seconds": session.get("duration_seconds"),
        "calls": calls,
    }


def _subtree_sizes(only: set[Place]) -> dict[Place, int]:
    """For each place of ``only`` whose caller is not in ``only``: the calls at or under it."""
    tops: dict[Place, int] = {}
    for place in only:
        top = place
        while len(top) > 1 and top[:-1] in only:
            top = top[:-1]
        tops[top] = tops.get(top, 0) + 1
    return tops


def _presence(kind: str, call: Call, below: int) -> dict[str, Any]:
    record = call.record
    return {
        "kind": kind,
        "place": [list(step) for step in call.place],
        "where": place_text(call.place),
        "status": record.get("status"),
        "calls": below,
        "detail": f"{below} calls" if below > 1 else str(record.get("status")),
        "span_a" if kind == "removed" else "span_b": record.get("span_id"),
    }


def _change(
    kind: str, pair: tuple[Call, Call], detail: str, lines: list[str] | None = None
) -> dict[str, Any]:
    a, b = pair
    return {
        "kind": kind,
        "place": [list(step) for step in a.place],
        "where": place_text(a.place),
        "detail": detail,
        "lines": lines or [],
        "span_a": a.record.get("span_id"),
        "span_b": b.record.get("span_id"),
    }


def _error_text(record: Mapping[str, Any]) -> str:
    error = record.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "")
    return ""


def _arguments_differ(a: Call, b: Call) -> bool:
    if a.digest is not None and b.digest is not None:
        return a.digest != b.digest
    return _differ(a.record.get("input"), b.record.get("input"))


def _differ(a: Any, b: Any) -> bool:
    """Whether two JSON values differ: Python's ``==`` (in C; ``1`` and ``1.0`` are the same)."""
    return bool(a != b) or (type(a) is not type(b) and not _numbers(a, b))


def _numbers(a: Any, b: Any) -> bool:
    return type(a) in (int, float) and type(b) in (int, float)


def _pair_changes(a: Call, b: Call) -> list[dict[str, Any]]:
    """What differs between the two runs' calls at one place."""
    changes: list[dict[str, Any]] = []
    ra, rb = a.record, b.record
    if _arguments_differ(a, b):
        lines, _ = value_diff(ra.get("input"), rb.get("input"))
        changes.append(_change("arguments", (a, b), "called with other arguments", lines))
    status_a, status_b = ra.get("status"), rb.get("status")
    if status_a != status_b:
        detail = f"{status_a} -> {status_b}"
        error = _error_text(rb) or _error_text(ra)
        changes.append(_change("status", (a, b), f"{detail} ({error})" if error else detail))
    elif status_a != "completed" and _error_text(ra) != _error_text(rb):
        detail = f"{short(_error_text(ra))} -> {short(_error_text(rb))}"
        changes.append(_change("error", (a, b), f"{status_a} differently: {detail}"))
    elif status_a == "completed" and _differ(ra.get("output"), rb.get("output")):
        lines, found = value_diff(ra.get("output"), rb.get("output"))
        changes.append(_change("output", (a, b), f"{found} difference(s)", lines))
    return changes


def _timing(a: Call, b: Call) -> dict[str, Any] | None:
    da, db = a.record.get("duration_seconds"), b.record.get("duration_seconds")
    if not (isinstance(da, int | float) and isinstance(db, int | float)):
        return None
    if abs(db - da) < TIMING_SECONDS or max(da, db) < TIMING_RATIO * min(da, db):
        return None
    return {
        "place": [list(step) for step in a.place],
        "where": place_text(a.place),
        "before_seconds": da,
        "after_seconds": db,
    }


def _session_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    sa, sb = a.get("session") or {}, b.get("session") or {}
    changes: list[dict[str, Any]] = []
    if sa.get("status") != sb.get("status"):
        changes.append({"kind": "status", "detail": f"{sa.get('status')} -> {sb.get('status')}"})
    if _differ(a.get("answer"), b.get("answer")):
        lines, found = value_diff(a.get("answer"), b.get("answer"))
        changes.append({"kind": "answer", "detail": f"{found} difference(s)", "lines": lines})
    return changes


def diff_states(
    a: Mapping[str, Any], b: Mapping[str, Any], labels: tuple[str, str] = ("A", "B")
) -> dict[str, Any]:
    """The difference of two (validated) state documents, as a JSON document."""
    calls_a, calls_b = calls_by_place(a["nodes"]), calls_by_place(b["nodes"])
    changes: list[dict[str, Any]] = []
    removed = set(calls_a) - set(calls_b)
    added = set(calls_b) - set(calls_a)
    for place, below in _subtree_sizes(removed).items():
        changes.append(_presence("removed", calls_a[place], below))
    for place, below in _subtree_sizes(added).items():
        changes.append(_presence("added", calls_b[place], below))
    timing: list[dict[str, Any]] = []
    for place, call_a in calls_a.items():
        call_b = calls_b.get(place)
        if call_b is None:
            continue
        changes.extend(_pair_changes(call_a, call_b))
        notable = _timing(call_a, call_b)
        if notable is not None:
            timing.append(notable)
    changes.sort(key=lambda c: (c["place"], KINDS.index(c["kind"])))
    timing.sort(key=lambda t: -abs(t["after_seconds"] - t["before_seconds"]))
    session = _session_changes(a, b)
    counts = {kind: sum(c["kind"] == kind for c in changes) for kind in KINDS}
    return {
        "same": not changes and not session,
        "a": _run_summary(a, labels[0], len(calls_a)),
        "b": _run_summary(b, labels[1], len(calls_b)),
        "aligned": len(set(calls_a) & set(calls_b)),
        "session": session,
        "changes": changes,
        "counts": counts,
        "timing": timing[:TIMING_SHOWN],
        "timing_changes": len(timing),
    }
