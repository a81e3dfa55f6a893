"""The saved state, built from a session's finished spans and nothing else (SPEC 6).

The document keeps what is needed to re-create every span with its original
ids, times, attributes, events and status (``spans_from_state`` does it), and
shows inputs, outputs and context as readable JSON rather than the encoded
attribute strings they travel as.

Foreign spans (other instrumentation inside the session) are in the tree under
their true parent with ``"foreign": true`` and their instrumentation scope; a
railtracks node under one nests under it. ``session.sampled`` is false when the
trace was not sampled for export (the state is complete all the same); when an
application's sampler dropped the session, railtracks saw no span at all and
the state is built from what the session itself knows (``_runs.unsampled``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan

from .._config import CONFIG
from .._gc import gc_paused
from .._recording import attributes as attr
from .._recording.compact import FinishedSpan, Record, compact
from .head import tree_counts
from .tree import NodeWalk, children_of, sort_by_start, walk
from .usage import StateUsage, add_session_usage

SCHEMA_VERSION: Final = 2
READABLE_SCHEMA_VERSIONS: Final = (1, 2)
"""Version 2 added ``counts`` to the head (``_runs.head``); version 1 files are still read."""
_DECODER: Final = json.JSONDecoder()

# Attributes shown as fields of their own, so not repeated under "attributes";
# input.value/output.value are the same payload as the node's input/output.
_NODE_FIELDS: Final = frozenset(
    {
        attr.NODE_INPUT,
        attr.NODE_OUTPUT,
        attr.NODE_NAME,
        attr.STATUS,
        attr.INPUT_VALUE,
        attr.OUTPUT_VALUE,
    }
)
RAILTRACKS_SCOPE: Final = "railtracks"
# The session's answer attribute stays under "attributes" as written: with
# `with rt.Session()` there is none, and "answer" is derived (see build_state).
_SESSION_FIELDS: Final = frozenset(
    {attr.SESSION_ID, attr.SESSION_NAME, attr.SESSION_TIMEOUT, attr.STATUS, attr.OUTPUT_VALUE}
)


def _hex_span(span_id: int | None) -> str | None:
    return None if span_id is None else format(span_id, "016x")


def iso_time(unix_nano: int | None) -> str | None:
    if unix_nano is None:
        return None
    moment = dt.datetime.fromtimestamp(unix_nano / 1e9, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def json_or_raw(value: Any) -> tuple[Any, bool]:
    """``(parsed JSON, True)``, or ``(value, False)`` when it is not valid JSON (e.g. truncated)."""
    if not isinstance(value, str):
        return value, False
    try:
        return _DECODER.decode(value), True
    except ValueError:
        return value, False


def _events(span: FinishedSpan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(context changes, other events)`` of a span."""
    changes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for name, timestamp, attributes in span.raw_events:
        record = {
            "name": name,
            "time_unix_nano": timestamp,
            "attributes": {k: list(v) if type(v) is tuple else v for k, v in attributes.items()},
        }
        (changes if name == attr.EVENT_CONTEXT_CHANGE else events).append(record)
    return changes, events


def _span_fields(
    span: FinishedSpan, attributes: Mapping[str, Any], shown: frozenset[str]
) -> dict[str, Any]:
    """The fields sessions and nodes share; context and ``shown`` keys go apart from the rest."""
    start, end = span.start_time, span.end_time
    ok = span.is_ok
    kept: dict[str, Any] = {}
    context: dict[str, Any] = {}
    prefix, cut = attr.CONTEXT_PREFIX, len(attr.CONTEXT_PREFIX)
    for key, value in attributes.items():
        if type(value) is tuple:
            value = list(value)  # noqa: PLW2901  # OTel arrays become JSON arrays
        if key.startswith(prefix):
            context[key[cut:]] = value
        elif key not in shown:
            kept[key] = value
    final = attributes.get(attr.STATUS)
    if final is None:
        final = attr.STATUS_COMPLETED if ok else attr.STATUS_FAILED
    changes, events = _events(span) if span.raw_events else ([], [])
    parent = span.parent_id
    fields = {
        "span_id": format(span.span_id, "016x"),
        "parent_span_id": None if parent is None else format(parent, "016x"),
        "status": final,
        "status_code": span.status_code.name,
        "kind": span.kind.name,
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "duration_seconds": (end - start) / 1e9 if start is not None and end is not None else None,
        "context": context,
        "error": (
            None
            if ok
            else {"type": attributes.get(attr.ERROR_TYPE), "message": span.status_description}
        ),
        "context_changes": changes,
        "events": events,
        "attributes": kept,
    }
    dropped = _dropped(span, attributes)
    if dropped:
        fields["dropped"] = dropped
    return fields


def _dropped(span: FinishedSpan, attributes: Mapping[str, Any]) -> dict[str, int]:
    """What a limit cut from this span, counted (SPEC 3): by railtracks and by the SDK."""
    counts = {
        "context_keys": attributes.get(attr.DROPPED_CONTEXT_KEYS, 0),
        "events": attributes.get(attr.DROPPED_EVENTS, 0),
        "sdk_attributes": span.dropped_attributes,
        "sdk_events": span.dropped_events,
        "sdk_links": span.dropped_links,
    }
    return {k: v for k, v in counts.items() if type(v) is int and v > 0}


def _is_foreign(span: FinishedSpan, attributes: Mapping[str, Any]) -> bool:
    scope = span.instrumentation_scope
    return attr.NODE_NAME not in attributes or scope is None or scope.name != RAILTRACKS_SCOPE


def _node(span: FinishedSpan) -> dict[str, Any]:
    attributes = span.attributes
    if _is_foreign(span, attributes):
        return _foreign(span, attributes)
    record: dict[str, Any] = {"name": attributes.get(attr.NODE_NAME, span.name)}
    record.update(_span_fields(span, attributes, _NODE_FIELDS))
    raw: list[str] = []
    for field, key in (("input", attr.NODE_INPUT), ("output", attr.NODE_OUTPUT)):
        if key in attributes:
            value, parsed = json_or_raw(attributes[key])
            record[field] = value
            if not parsed:
                raw.append(field)
        else:
            record[field] = None
    if raw:
        record["raw_fields"] = raw
    _replay_fields(record)
    return record


def _replay_fields(record: dict[str, Any]) -> None:
    """SPEC 14: the call key's ``args_digest`` and ``replayed`` as fields of the node."""
    kept = record["attributes"]
    digest = kept.pop(attr.NODE_ARGS_DIGEST, None)
    if digest is not None:
        record["args_digest"] = digest
    if kept.pop(attr.NODE_REPLAYED, None) is True:
        record["replayed"] = True


def _scope(span: FinishedSpan) -> dict[str, Any] | None:
    scope = span.instrumentation_scope
    return {"name": scope.name, "version": scope.version} if scope else None


def _foreign(span: FinishedSpan, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Another instrumentation's span: kept whole, marked, under its true parent."""
    record: dict[str, Any] = {"name": span.name}
    record.update(_span_fields(span, attributes, frozenset()))
    record["input"] = None
    record["output"] = None
    record["foreign"] = True
    record["scope"] = _scope(span)
    return record


def _session_record(span: FinishedSpan) -> tuple[dict[str, Any], Any]:
    attributes = span.attributes
    record: dict[str, Any] = {
        "identifier": attributes.get(attr.SESSION_ID),
        "name": attributes.get(attr.SESSION_NAME),
        "span_name": span.name,
        "trace_id": format(span.trace_id, "032x"),
        "timeout": attributes.get(attr.SESSION_TIMEOUT),
        "started_at": iso_time(span.start_time),
        "ended_at": iso_time(span.end_time),
    }
    record.update(_span_fields(span, attributes, _SESSION_FIELDS))
    record["resource"] = {
        k: list(v) if type(v) is tuple else v for k, v in span.resource.attributes.items()
    }
    record["scope"] = _scope(span)
    record["sampled"] = span.sampled
    _final_context(record)
    replayed = record["attributes"].pop(attr.SESSION_REPLAYED, None)
    if type(replayed) is int and replayed > 0:
        record["replayed"] = replayed
    answer, _ = json_or_raw(attributes.get(attr.SESSION_ANSWER))
    return record, answer


def _final_context(record: dict[str, Any]) -> None:
    """Move the ``railtracks.final_context.*`` attributes into ``final_context``.

    Without them and without ``railtracks.session.context_changed`` the
    context never changed: the final context is the start context.
    """
    kept = record["attributes"]
    prefix, cut = attr.FINAL_CONTEXT_PREFIX, len(attr.FINAL_CONTEXT_PREFIX)
    final = {key[cut:]: kept.pop(key) for key in [k for k in kept if k.startswith(prefix)]}
    if final or kept.get(attr.SESSION_CONTEXT_CHANGED) is True:
        record["final_context"] = final
    else:
        record["final_context"] = dict(record["context"])
    dropped = kept.get(attr.DROPPED_FINAL_CONTEXT_KEYS)
    if type(dropped) is int and dropped > 0:
        record.setdefault("dropped", {})["final_context_keys"] = dropped


def _is_session_span(span: FinishedSpan) -> bool:
    attributes = span.attributes
    if attr.SESSION_ID not in attributes or attr.NODE_NAME in attributes:
        return False
    scope = span.instrumentation_scope
    return scope is not None and scope.name == RAILTRACKS_SCOPE


# The nodes of a state, depth first: (index among its siblings, the node's record
# without "children"), and None where a node's children end.
def state_parts(
    spans: Sequence[ReadableSpan | FinishedSpan | Record],
) -> tuple[dict[str, Any], NodeWalk]:
    """The state of one session as ``(the document but its nodes, the nodes as a walk)``.

    The walk makes each node's record when it gets there, so a writer can
    stream a state of any size without ever holding its whole tree (and the
    records it drops are freed at once, never left for the cyclic collector).
    """
    session_span: FinishedSpan | None = None
    nodes: list[FinishedSpan] = []
    for span in compact(spans):
        if _is_session_span(span):
            session_span = span
        else:
            nodes.append(span)
    usage = StateUsage(nodes, session_span, CONFIG.telemetry.prices)
    sort_by_start(nodes)
    children = children_of(nodes)
    # counts ahead of the nodes, so `railtracks runs` never has to read them
    last_output = functools.partial(_last_output, children.get(None, []))
    head = assembled_head(session_span, tree_counts(children), last_output)
    add_session_usage(head["session"], usage)
    return head, walk(children, usage.nodes_with_usage(_node))


def _last_output(roots: Sequence[FinishedSpan]) -> Any:
    for span in reversed(roots):
        record = _node(span)
        if record["status"] == attr.STATUS_COMPLETED and "foreign" not in record:
            return record["output"]
    return None


def build_state(spans: Sequence[ReadableSpan | FinishedSpan | Record]) -> dict[str, Any]:
    """The state document of one session from its finished spans (SDK or compact ones)."""
    # The tree is built from fresh, acyclic containers (about ten per node);
    # with the cyclic collector on, a 100,000-node build spends about as long
    # rescanning them as building them. It is paused for the build only.
    with gc_paused():
        head, walk = state_parts(spans)
        roots: list[dict[str, Any]] = []
        open_lists = [roots]
        for item in walk:
            if item is None:
                open_lists.pop()
                continue
            record = item[1]
            record["children"] = []
            open_lists[-1].append(record)
            open_lists.append(record["children"])
        return {**head, "nodes": roots}


def iter_nodes(nodes: Sequence[dict[str, Any]]) -> Iterable[tuple[int, dict[str, Any]]]:
    """``(depth, node)`` for every node of a call tree, depth first."""
    stack = [(0, node) for node in reversed(nodes)]
    while stack:
        depth, node = stack.pop()
        yield depth, node
        stack.extend((depth + 1, child) for child in reversed(node.get("children", [])))


# -- the state assembled from a run journal (``_runs.assemble``), span by span
def node_record(span: FinishedSpan) -> dict[str, Any]:
    """The state's record of one node span (without ``children``)."""
    return _node(span)


def assembled_head(
    session_span: FinishedSpan | None, counts: dict[str, int], last_output: Callable[[], Any]
) -> dict[str, Any]:
    """The head of a state whose nodes are streamed from elsewhere (see ``state_parts``).

    ``last_output()`` is the output of the last top-level node that completed,
    asked for only when it is the answer (``with rt.Session()``).
    """
    session: dict[str, Any] | None = None
    answer: Any = None
    if session_span is not None:
        session, answer = _session_record(session_span)
        if (
            session["status"] == attr.STATUS_COMPLETED
            and attr.SESSION_ANSWER not in session["attributes"]
        ):
            # `with rt.Session()` cannot see the block's result: the answer of a
            # completed session is the output of the last top-level node that completed.
            answer = last_output()
    return {
        "schema_version": SCHEMA_VERSION,
        "counts": counts,
        "session": session,
        "answer": answer,
    }
