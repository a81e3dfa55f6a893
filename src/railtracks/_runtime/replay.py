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
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from .._recording import attributes as attr
from .._reuse.callkey import ROOT, Place, format_place, places, recorded_digest
from .._reuse.rebuild import Unrebuildable, rebuild, rebuild_value, return_annotation
from ..errors import ReplayMismatchError
from .replay_mismatch import mismatch_message

# (the replaying session's Replayer, the place of the call running here)
_PLACE: contextvars.ContextVar[tuple[object, Place]] = contextvars.ContextVar(
    "railtracks_replay_place", default=(None, ROOT)
)
_ANNOTATIONS: Final[dict[Callable[..., Any], Any]] = {}
_MAX_ANNOTATIONS: Final = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
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
        self.calls = places(state)
        session = state.get("session")
        trace_id = session.get("trace_id") if isinstance(session, dict) else None
        self.trace_id = _hex(trace_id, 32)
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
        record = run.calls.get(place)
        if record is None or not _same_arguments(record, attributes):
            if run.strict:
                arguments = _decoded(attributes.get(attr.NODE_INPUT))
                raise ReplayMismatchError(
                    mismatch_message(run, place, record, arguments), format_place(place)
                )
            return None
        if record.get("status") != attr.STATUS_COMPLETED:
            return None
        reason = _unreplayable(record)
        if reason is None:
            try:
                value = _rebuilt(record, node.func)
                changes = _changes(record)
            except Unrebuildable as exc:
                reason = f"its output could not be rebuilt ({exc})"
            else:
                attributes[attr.NODE_REPLAYED] = True
                return Answer(value, _hex(record.get("span_id"), 16), run.trace_id, changes)
        self.live[reason] += 1
        return None


def _decoded(text: object) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:  # cut at the value limit
        value = None
    return value if isinstance(value, dict) else {"arguments": text}


def _hex(value: object, digits: int) -> int:
    if isinstance(value, str) and len(value) == digits:
        try:
            return int(value, 16)
        except ValueError:
            return 0
    return 0


def _same_arguments(record: Mapping[str, Any], attributes: Mapping[str, AttributeValue]) -> bool:
    """The recorded digest is the live one; in a run that recorded none (it saved no state
    and was not VERBOSE), the recorded input, when whole, is the live one."""
    digest = recorded_digest(record)
    if digest is not None:
        return digest == attributes.get(attr.NODE_ARGS_DIGEST)
    raw = record.get("raw_fields")
    if "input" not in record or (isinstance(raw, list) and "input" in raw):
        return False  # cut at the value limit: too little to match on
    shown = attributes.get(attr.NODE_INPUT)
    if not isinstance(shown, str):
        return False
    try:
        live = json.loads(shown)
    except ValueError:  # this call's input was cut
        return False
    return _canonical(live) == _canonical(record["input"])  # JSON's true is not 1


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def _unreplayable(record: Mapping[str, Any]) -> str | None:
    """Why a completed call cannot be replayed (its own or its subtree's), or None."""
    for node in _subtree(record):
        attributes = node.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        reason = attributes.get(attr.NODE_UNREPLAYABLE) if node is record else None
        if isinstance(reason, str):
            return f"its output was not recorded ({reason[:80]})"
        dropped = node.get("dropped")
        if isinstance(dropped, dict) and dropped.get("events"):
            return "some of its context changes were not recorded (event limit)"
        for change in _change_events(node):
            if not isinstance(change.get(attr.CONTEXT_CHANGE_RECORDED), str):
                return "a context change it made was not recorded (redacted or unencodable)"
    return None


def _subtree(record: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    stack = [record]
    while stack:
        node = stack.pop()
        yield node
        children = node.get("children")
        if isinstance(children, list):
            stack.extend(c for c in children if isinstance(c, dict))


def _change_events(node: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    changes = node.get("context_changes")
    for change in changes if isinstance(changes, list) else []:
        attributes = change.get("attributes") if isinstance(change, dict) else None
        yield attributes if isinstance(attributes, dict) else {}


def _changes(record: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    timed: list[tuple[int, str, str]] = []
    for node in _subtree(record):
        changes = node.get("context_changes")
        for change in changes if isinstance(changes, list) else []:
            attributes = change.get("attributes") if isinstance(change, dict) else None
            if not isinstance(attributes, dict):
                continue
            at = change.get("time_unix_nano")
            operation = attributes.get(attr.CONTEXT_CHANGE_OPERATION)
            recorded = attributes.get(attr.CONTEXT_CHANGE_RECORDED)
            if isinstance(operation, str) and isinstance(recorded, str):
                timed.append((at if type(at) is int else 0, operation, recorded))
    timed.sort(key=lambda item: item[0])
    out: list[tuple[str, Any]] = []
    for _, operation, recorded in timed:
        values = rebuild(recorded, list[str] if operation == "delete" else dict[str, Any])
        out.append((operation, values))
    return tuple(out)


def _rebuilt(record: Mapping[str, Any], func: Callable[..., Any]) -> Any:
    key = getattr(func, "__func__", func)  # a bound method: its function, not a new object
    annotation = _ANNOTATIONS.get(key)
    if annotation is None:
        annotation = return_annotation(func)
        if len(_ANNOTATIONS) < _MAX_ANNOTATIONS:
            _ANNOTATIONS[key] = annotation
    attributes = record.get("attributes")
    recorded = attributes.get(attr.NODE_RECORDED_OUTPUT) if isinstance(attributes, dict) else None
    if isinstance(recorded, str):
        return rebuild(recorded, annotation)
    raw = record.get("raw_fields")
    if isinstance(raw, list) and "output" in raw:
        raise Unrebuildable("the recorded output was cut and not recorded in full")
    return rebuild_value(record.get("output"), annotation)
