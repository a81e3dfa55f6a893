"""``ReplayMismatchError``'s message: the call's place, the nearest recorded call, the difference.

Names and values come from a recorded run (untrusted): each is shortened and
made inert before it is put in a message a terminal may show.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from .._logs.terminal import inert
from .._reuse.callindex import Recorded
from .._reuse.callkey import Place, format_place

if TYPE_CHECKING:
    from .replay import RecordedRun

_SHOWN: Final = 60
_MAX_DIFFERENCES: Final = 5


def _short(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        text = "<unshowable>"
    text = inert(text)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def nearest(run: RecordedRun, place: Place) -> tuple[Place, Recorded] | None:
    """The recorded call most like ``place``.

    In order: itself, a same-named sibling, a call of the same name, a sibling.
    """
    if place in run.calls:
        return place, run.calls[place]
    parent, (name, ordinal) = place[:-1], place[-1]
    ranked: list[tuple[tuple[int, int], Place]] = []
    for other in run.calls:
        if other[:-1] == parent and other[-1][0] == name:
            ranked.append(((0, abs(other[-1][1] - ordinal)), other))
        elif other[-1][0] == name:
            ranked.append(((1, len(other)), other))
        elif other[:-1] == parent:
            ranked.append(((2, other[-1][1]), other))
    if not ranked:
        return None
    best = min(ranked, key=lambda item: item[0])[1]
    return best, run.calls[best]


def argument_differences(recorded: Any, now: Mapping[str, Any]) -> list[str]:
    """``key: recorded X, now Y`` for each argument that differs (at most a few)."""
    if not isinstance(recorded, dict):
        return [f"the recorded input is {_short(recorded)}, now {_short(dict(now))}"]
    out: list[str] = []
    for key in sorted(set(recorded) | set(now)):
        before, after = recorded.get(key, "<absent>"), now.get(key, "<absent>")
        if before != after:
            out.append(
                f"{inert(str(key))[:_SHOWN]}: recorded {_short(before)}, now {_short(after)}"
            )
    if len(out) > _MAX_DIFFERENCES:
        out = [*out[:_MAX_DIFFERENCES], f"and {len(out) - _MAX_DIFFERENCES} more"]
    return out


def mismatch_message(
    run: RecordedRun, place: Place, record: Recorded | None, arguments: Mapping[str, Any]
) -> str:
    """One paragraph: what was called, the nearest recorded call and how the arguments differ."""
    shown = inert(format_place(place))
    head = f"no recorded call in {inert(run.source)} matches {shown}"
    found = nearest(run, place) if record is None else (place, record)
    if found is None:
        return f"{head}: the recorded run holds no call like it"
    other, other_record = found
    where = (
        "recorded at the same place" if other == place else f"nearest: {inert(format_place(other))}"
    )
    differences = argument_differences(other_record.input, arguments)
    if not differences:
        return f"{head} ({where}; the arguments look the same but their digests differ)"
    return f"{head} ({where}); arguments differ: " + "; ".join(differences)
