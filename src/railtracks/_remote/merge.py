"""The caller's side of a segment: bring its reply into the session (SPEC 12).

``merge`` re-emits the segment's spans through the tracer provider's own
processors (console, saved state, export: each span once, by the caller),
applies what the segment set on the caller's span, and replays its context
changes in order. ``run_remote`` is ``rt.call`` through an executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from .._delivery.telemetry import TELEMETRY
from .._logs import log as _log
from .._logs.terminal import inert
from .._recording import attributes as attr
from .._runtime.session import Session
from ..errors import CarrierError
from .admission import admit, caller_attributes, calling_span, describe
from .carrier import RemoteCall, capture
from .segment import REPLY_VERSION
from .spancodec import MAX_NAME, SpanDecoder, parse_span_id


def merge(session: Session, reply: Mapping[str, Any], caller: trace.Span | None = None) -> None:
    """Bring a segment's reply into ``session``: re-emit its spans, apply its context changes.

    ``caller`` is the span the carrier was taken under (default: the current
    span); what the segment set on it is applied when it is still recording.
    """
    if not isinstance(reply, Mapping) or reply.get("version") != REPLY_VERSION:
        raise CarrierError("not a railtracks segment reply (or from another version)")
    if reply.get("session_id") != session.identifier or reply.get("trace_id") != session.trace_id:
        raise CarrierError("this segment reply belongs to another session")
    caller = caller if caller is not None else trace.get_current_span()
    decoder = _decoder(session, caller)
    spans = decoder.decode_all(reply.get("spans"))
    current = caller.get_span_context().span_id
    calling = calling_span(session, parse_span_id(reply.get("caller_span_id")), current)
    admission = admit(session, spans, calling)
    # The provider's own processors: railtracks' fan-out, and a host application's
    # exporters when railtracks runs on its provider.
    processor: SpanProcessor = getattr(session.tracer, "span_processor", TELEMETRY.fanout)
    for span in sorted(admission.spans, key=lambda s: s.start_time or 0):
        _guarded(processor.on_start, span)
    for span in admission.spans:
        _guarded(processor.on_end, span)
    if caller.is_recording() and calling == current:
        raw = decoder.attributes(reply.get("caller_attributes"))
        caller.set_attributes(caller_attributes(raw, admission.dropped))
        for event in decoder.events(reply.get("caller_events")):
            caller.add_event(event.name, event.attributes, event.timestamp)
    _apply_changes(session, reply.get("context_changes"), decoder)
    warning = describe(admission.dropped, decoder.rejected)
    if warning is not None:
        _log.emit("WARNING", "Telemetry", warning)


def _decoder(session: Session, caller: trace.Span) -> SpanDecoder:
    tracer_resource = getattr(session.tracer, "resource", None)
    return SpanDecoder(
        int(session.trace_id or "0", 16),
        caller.get_span_context().trace_flags,
        tracer_resource if isinstance(tracer_resource, Resource) else Resource.get_empty(),
        session.encoder,
    )


def _guarded(method: Any, span: ReadableSpan) -> None:
    try:
        method(span)
    except Exception as exc:  # a host's processor failing never changes the call's outcome
        _log.warn_once(f"segment-emit:{method!r}", f"re-emitting a remote span failed: {exc!r}")


def _apply_changes(session: Session, changes: object, decoder: SpanDecoder) -> None:
    if not isinstance(changes, list):
        return
    context = session.context_store
    for change in changes:
        if not isinstance(change, list | tuple) or not change:
            decoder.rejected += 1
            continue
        match list(change):
            case ["put", str() as key, value]:
                context.put(key, value)
            case ["update", Mapping() as values] if all(isinstance(k, str) for k in values):
                context.update(values)
            case ["delete", str() as key]:
                if key in context.keys():  # noqa: SIM118  # a SessionContext, not a dict
                    context.delete(key)
            case _:
                decoder.rejected += 1


async def run_remote(
    executor: Any,
    session: Session,
    node: Any,
    *,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    span: trace.Span,
) -> Any:
    """``rt.call`` through an executor: ship the call, merge what comes back, return or raise."""
    node_name: str = node.name
    call = RemoteCall(node_name, node.func, node.is_async, args, kwargs, capture(session))
    reply = await executor.run_call(call)
    merge(session, reply, span)
    worker = _worker(reply.get("worker"))
    if worker is not None and span.is_recording():
        span.set_attribute(attr.WORKER_PID, worker[0])
        span.set_attribute(attr.WORKER_HOST, worker[1])
    if reply.get("outcome") == "error":
        error = reply.get("value")
        if not isinstance(error, Exception):  # never a KeyboardInterrupt or SystemExit from a reply
            raise CarrierError(f"node {node_name!r}: the reply's error is not an exception")
        remote_traceback = reply.get("traceback")
        if isinstance(remote_traceback, str) and remote_traceback:
            shown = "\n".join(map(inert, remote_traceback.rstrip().split("\n")))
            where = f" {worker[1]} (pid {worker[0]})" if worker is not None else ""
            error.add_note(f"raised in worker{where}:\n{shown}")
        raise error
    return reply.get("value")


def _worker(raw: object) -> tuple[int, str] | None:
    """``(pid, host)`` from a reply's ``worker`` field, when it is one."""
    if not isinstance(raw, Mapping):
        return None
    pid, host = raw.get("pid"), raw.get("host")
    if type(pid) is not int or not 0 <= pid < 2**63 or not isinstance(host, str):
        return None
    return pid, inert(host[:MAX_NAME])
