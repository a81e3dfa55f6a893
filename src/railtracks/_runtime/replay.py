"""Answering node calls from a recorded run: resume and ``rt.testing.replay`` (SPEC 14).

A ``RecordedRun`` indexes an earlier run's calls by place (``_reuse.callkey``);
each session that replays gets its own ``Replayer``, which gives every call
its place as it starts and decides whether the recorded call answers it: same
place, same arguments digest, completed, replayable, its output rebuildable
to the node's return annotation. Anything else runs live (or, replaying a
test in strict mode, raises ``ReplayMismatchError``). The recorded run is
untrusted input: a malformed field makes that call run live, never a
traceback.
"""

from __future__ import annotations

import collections
import contextvars
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

from opentelemetry.util.types import AttributeValue

from .._recording import attributes as attr
from .._reuse.callindex import CallIndex, Change, Recorded, hex_id
from .._reuse.callkey import ROOT, Place, format_place
from .._reuse.rebuild import (
    Unrebuildable,
    parse_recorded,
    rebuild,
    rebuilder,
    return_annotation,
)
from ..errors import ReplayMismatchError
from .replay_mismatch import mismatch_message

# (the replaying session's Replayer, the place of the call running here)
_PLACE: contextvars.ContextVar[tuple[object, Place]] = contextvars.ContextVar(
    "railtracks_replay_place", default=(None, ROOT)
)
_REBUILDERS: Final[dict[Callable[..., Any], Callable[[Any], Any]]] = {}
_MAX_ANNOTATIONS: Final = 4096


class Answer(NamedTuple):
    """A recorded call that answers a live one."""

    value: Any
    span_id: int
    trace_id: int
    changes: tuple[tuple[str, Any], ...]  # (operation, recorded values or keys), in time order


class RecordedRun:
    """An earlier run's calls by place, and how to replay them.

    ``nodes`` (names) limits replay to those nodes; ``strict`` raises on a
    call with no recorded match (tests); ``source`` names the run in messages.
    """

    def __init__(
        self,
        state: Mapping[str, Any],
        *,
        source: str,
        nodes: Iterable[str] | None = None,
        strict: bool = False,
    ) -> None:
        self.index = CallIndex(state, keep_inputs=strict)
        self.calls = self.index.calls
        session = state.get("session")
        trace_id = session.get("trace_id") if isinstance(session, dict) else None
        self.trace_id = hex_id(trace_id, 32)
        self.source = source
        self.nodes = None if nodes is None else frozenset(nodes)
        self.strict = strict
        self._shared: Replayer | None = None

    def replayer(self, *, implicit: bool) -> Replayer:
        """A session's replayer: its own, or for implicit sessions (bare ``rt.call``) a
        shared one, so a flow of bare calls replays as the recorded session's calls."""
        if not implicit:
            return Replayer(self)
        if self._shared is None:
            self._shared = Replayer(self)
        return self._shared


class Replayer:
    """One session's replay of a ``RecordedRun``: places, decisions and what was not replayed."""

    __slots__ = ("_ordinals", "live", "run")

    def __init__(self, run: RecordedRun) -> None:
        self.run = run
        self._ordinals: dict[tuple[Place, str], int] = {}
        self.live: collections.Counter[str] = collections.Counter()  # reason -> calls

    def place(self, name: str) -> Place:
        """The place of a call of ``name`` starting now (counted: call it once per call)."""
        owner, parent = _PLACE.get()
        if owner is not self:
            parent = ROOT
        key = (parent, name)
        ordinal = self._ordinals.get(key, 0)
        self._ordinals[key] = ordinal + 1
        return (*parent, (name, ordinal))

    def enter(self, place: Place) -> contextvars.Token[tuple[object, Place]]:
        """Make ``place`` the parent of the calls made from here on (reset with the token)."""
        return _PLACE.set((self, place))

    def answer(
        self, place: Place, node: Any, attributes: dict[str, AttributeValue]
    ) -> Answer | None:
        """The recorded answer to this call of ``node``, or None to run it live.

        ``attributes`` are the call's span attributes (its digest and input);
        an answered call is marked ``railtracks.node.replayed`` in them.
        """
        try:
            return self._answer(place, node, attributes)
        except ReplayMismatchError:
            raise
        except Exception as exc:  # railtracks' own failure never stops the user's call
            self.live[f"its record could not be read ({type(exc).__name__})"] += 1
            return None

    def _answer(
        self, place: Place, node: Any, attributes: dict[str, AttributeValue]
    ) -> Answer | None:
        name: str = node.name
        run = self.run
        if run.nodes is not None and name not in run.nodes:
            return None
        recorded = run.calls.get(place)
        if recorded is None or not _same_arguments(recorded, attributes):
            if run.strict:
                arguments = _decoded(attributes.get(attr.NODE_INPUT))
                raise ReplayMismatchError(
                    mismatch_message(run, place, recorded, arguments), format_place(place)
                )
            return None
        if not recorded.completed:
            return None
        reason = recorded.reason
        if reason is None:
            try:
                value = _rebuilt(recorded, node.func)
                changes = _changes(run.index.subtree_changes(recorded)) if _any(recorded) else ()
            except Unrebuildable as exc:
                reason = f"its output could not be rebuilt ({exc})"
            else:
                attributes[attr.NODE_REPLAYED] = True
                return Answer(value, recorded.span_id, run.trace_id, changes)
        self.live[reason] += 1
        return None


def _any(recorded: Recorded) -> bool:
    start, end = recorded.changes
    return start != end


def _decoded(text: object) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:  # cut at the value limit
        value = None
    return value if isinstance(value, dict) else {"arguments": text}


def _same_arguments(recorded: Recorded, attributes: Mapping[str, AttributeValue]) -> bool:
    """The recorded digest is the live one; in a run that recorded none (it saved no state
    and was not VERBOSE), the recorded input, when whole, is the live one."""
    if recorded.digest is not None:
        return recorded.digest == attributes.get(attr.NODE_ARGS_DIGEST)
    if not recorded.input_whole:
        return False  # cut at the value limit: too little to match on
    shown = attributes.get(attr.NODE_INPUT)
    if not isinstance(shown, str):
        return False
    try:
        live = json.loads(shown)
    except ValueError:  # this call's input was cut
        return False
    return _canonical(live) == _canonical(recorded.input)  # JSON's true is not 1


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def _changes(changes: list[Change]) -> tuple[tuple[str, Any], ...]:
    out: list[tuple[str, Any]] = []
    for _, operation, recorded in changes:
        values = rebuild(recorded, list[str] if operation == "delete" else dict[str, Any])
        out.append((operation, values))
    return tuple(out)


def _rebuilder(func: Callable[..., Any]) -> Callable[[Any], Any]:
    """The rebuilder of ``func``'s return annotation, found once per function."""
    key = getattr(func, "__func__", func)  # a bound method: its function, not a new object
    found = _REBUILDERS.get(key)
    if found is None:
        found = rebuilder(return_annotation(func))
        if len(_REBUILDERS) < _MAX_ANNOTATIONS:
            _REBUILDERS[key] = found
    return found


def _rebuilt(recorded: Recorded, func: Callable[..., Any]) -> Any:
    build = _rebuilder(func)
    if recorded.output_text:
        return build(parse_recorded(recorded.output))
    if recorded.output_cut:
        raise Unrebuildable("the recorded output was cut and not recorded in full")
    return build(recorded.output)
