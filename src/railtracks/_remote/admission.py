"""What of a segment's reply may enter the session (SPEC 12): the reply is untrusted.

A reply's spans are decoded field by field (``spancodec``); this module then
decides which of them belong in the session, and what the reply may set on
the calling span:

- a span may not reuse an id the session already has and the far side could
  know: the session span's, any span a carrier was taken under (the calling
  span among them), any span merged before; nor share its id with another
  span of the same reply;
- a span may not claim another session (``railtracks.session.id``,
  ``session.id``, ``railtracks.session.name``) nor be a session span itself;
- the spans kept form one tree under the calling span: a span in a cycle, or
  whose parent is not the calling span or a kept span, is left out;
- ``caller_attributes`` may not set railtracks' own keys, ``session.id``,
  GenAI or OpenInference keys, input/output or ``error.type``: the calling
  span's identity and record are the caller's.

What is left out is counted by reason; ``merge`` reports the counts in one
warning. Every step is one pass over the reply (dicts and sets, no recursion),
so a reply of any shape costs time linear in its size.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.util.types import AttributeValue

from .._recording import attributes as attr
from .._runs.tree import loops
from .._runtime.session import Session

REUSED: Final = "reusing an id the session has"
SHARED: Final = "sharing an id with another span of the reply"
FOREIGN: Final = "claiming another session"
SESSION_SPAN: Final = "claiming to be a session span"
CYCLE: Final = "in a cycle"
ORPHAN: Final = "not under the calling span"
CALLER_KEY: Final = "caller attribute(s) railtracks keeps"

# Keys only a session span carries: a reply's span with one would stand in for the session.
_SESSION_ONLY: Final = (
    attr.SESSION_TIMEOUT,
    attr.SESSION_ANSWER,
    attr.SESSION_SAVE_STATE,
    attr.SESSION_CONTEXT_CHANGED,
    attr.LOGGING_SETTING,
)
_SESSION_ONLY_PREFIXES: Final = (attr.FINAL_CONTEXT_PREFIX,)
# What the caller's process alone writes on its calling span.
_CALLER_KEPT_PREFIXES: Final = ("railtracks.", "gen_ai.", "openinference.", "input.", "output.")
_CALLER_KEPT_KEYS: Final = frozenset({attr.OPENINFERENCE_SESSION_ID, attr.ERROR_TYPE})


@dataclass
class _SessionIds:
    """Span ids of one session that a far side may know, so may try to reuse."""

    callers: set[int] = field(default_factory=set)  # spans a carrier was taken under
    taken: set[int] = field(default_factory=set)  # callers, the session span, merged spans


_IDS: weakref.WeakKeyDictionary[Session, _SessionIds] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()  # merges may run in several threads of one session


def _ids_of(session: Session) -> _SessionIds:
    ids = _IDS.get(session)
    if ids is None:
        ids = _IDS[session] = _SessionIds()
    session_span = session.span_id
    if session_span is not None:
        ids.taken.add(int(session_span, 16))
    return ids


def note_carrier(session: Session, span_id: int) -> None:
    """A carrier of ``session`` was taken under ``span_id``: a reply may hang under it."""
    if span_id:
        with _LOCK:
            ids = _ids_of(session)
            ids.callers.add(span_id)
            ids.taken.add(span_id)


def calling_span(session: Session, claimed: int | None, current: int) -> int:
    """The span a reply's spans must hang under: the one it names if a carrier was taken
    under it in this session, else the current span."""
    with _LOCK:
        known = claimed is not None and claimed in _ids_of(session).callers
    return claimed if known and claimed is not None else current


@dataclass
class Admission:
    """The spans to emit, and how many were left out, by reason."""

    spans: list[ReadableSpan]
    dropped: Counter[str]


def admit(session: Session, spans: Sequence[ReadableSpan], caller: int) -> Admission:
    """The spans of a reply that may enter ``session``, under the calling span ``caller``."""
    dropped: Counter[str] = Counter()
    with _LOCK:
        ids = _ids_of(session)
        ids.taken.add(caller)
        candidates = _unique(_own(spans, session, dropped), ids.taken, dropped)
        kept = _tree_under(caller, candidates, dropped)
        ids.taken.update(_span_id(span) for span in kept)
    return Admission(kept, dropped)


def _same(parent: int | None) -> int | None:
    return parent


def _span_id(span: ReadableSpan) -> int:
    context = span.context
    return context.span_id if context is not None else 0


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _own(
    spans: Iterable[ReadableSpan], session: Session, dropped: Counter[str]
) -> list[ReadableSpan]:
    """The spans that claim no other session and are not session spans."""
    kept = []
    for span in spans:
        reason = _identity_problem(span.attributes or {}, session)
        if reason is None:
            kept.append(span)
        else:
            dropped[reason] += 1
    return kept


def _identity_problem(attributes: Mapping[str, AttributeValue], session: Session) -> str | None:
    identifier = session.identifier
    for key in (attr.SESSION_ID, attr.OPENINFERENCE_SESSION_ID):
        if key in attributes and attributes[key] != identifier:
            return FOREIGN
    if attr.SESSION_NAME in attributes and attributes[attr.SESSION_NAME] != session.name:
        return FOREIGN
    if attr.SESSION_ID in attributes and attr.NODE_NAME not in attributes:
        return SESSION_SPAN  # the state would take it for the session's own span
    if any(key in attributes for key in _SESSION_ONLY) or any(
        key.startswith(_SESSION_ONLY_PREFIXES) for key in attributes
    ):
        return SESSION_SPAN
    return None


def _unique(
    spans: list[ReadableSpan], taken: set[int], dropped: Counter[str]
) -> dict[int, ReadableSpan]:
    """Span id -> span, without ids the session has or that the reply repeats."""
    seen: Counter[int] = Counter(_span_id(span) for span in spans)
    unique: dict[int, ReadableSpan] = {}
    for span in spans:
        span_id = _span_id(span)
        if span_id in taken:
            dropped[REUSED] += 1
        elif seen[span_id] > 1:
            dropped[SHARED] += 1
        else:
            unique[span_id] = span
    return unique


def _tree_under(
    caller: int, spans: dict[int, ReadableSpan], dropped: Counter[str]
) -> list[ReadableSpan]:
    """The spans reached from ``caller`` through parent links (in the reply's order, which is
    the order they ended in); the rest counted as left out.

    Ids are unique here, so each span is in one parent's list and each list is
    taken once: the walk is linear and ends whatever the links are.
    """
    below: dict[int | None, list[ReadableSpan]] = {}
    for span in spans.values():
        below.setdefault(_parent_id(span), []).append(span)
    reached: set[int] = set()
    frontier = [caller]
    while frontier:
        for span in below.pop(frontier.pop(), ()):
            reached.add(_span_id(span))
            frontier.append(_span_id(span))
    kept = [span for span_id, span in spans.items() if span_id in reached]  # the reply's order
    left = {_span_id(span): _parent_id(span) for group in below.values() for span in group}
    cyclic = sum(len(loop) for loop in loops(left, _same))
    dropped[CYCLE] += cyclic
    dropped[ORPHAN] += len(left) - cyclic
    return kept


def caller_attributes(
    attributes: Mapping[str, AttributeValue], dropped: Counter[str]
) -> dict[str, AttributeValue]:
    """What a reply may set on the calling span: none of the keys that make its identity."""
    kept: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if key in _CALLER_KEPT_KEYS or key.startswith(_CALLER_KEPT_PREFIXES):
            dropped[CALLER_KEY] += 1
        else:
            kept[key] = value
    return kept


def describe(dropped: Counter[str], malformed: int) -> str | None:
    """One line for the warning: every count of what was left out (None: nothing was)."""
    parts = [f"{count} {reason}" for reason, count in sorted(dropped.items()) if count]
    if malformed:
        parts.insert(0, f"{malformed} malformed record(s)")
    if not parts:
        return None
    return "a segment reply was partly left out: " + ", ".join(parts)
