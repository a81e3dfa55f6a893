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
from .._recording import attributes as attr
from .._runtime.session import Session
from ..errors import CarrierError
from .carrier import RemoteCall, capture
from .segment import REPLY_VERSION
from .spancodec import SpanDecoder


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
    flags = caller.get_span_context().trace_flags
    tracer_resource = getattr(session.tracer, "resource", None)
    decoder = SpanDecoder(
        int(session.trace_id or "0", 16),
        session.identifier,
        flags,
        tracer_resource if isinstance(tracer_resource, Resource) else Resource.get_empty(),
        session.encoder,
    )
    spans = decoder.decode_all(reply.get("spans"))
    # The provider's own processors: railtracks' fan-out, and a host application's
    # exporters when railtracks runs on its provider.
    processor: SpanProcessor = getattr(session.tracer, "span_processor", TELEMETRY.fanout)
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        _guarded(processor.on_start, span)
    for span in spans:
        _guarded(processor.on_end, span)
    if caller.is_recording() and reply.get("caller_span_id") == _span_hex(caller):
        caller.set_attributes(decoder.attributes(reply.get("caller_attributes")))
        for event in decoder.events(reply.get("caller_events")):
            caller.add_event(event.name, event.attributes, event.timestamp)
    _apply_changes(session, reply.get("context_changes"), decoder)
    if decoder.rejected:
        _log.warn_once(
            "segment-rejected",
            f"a segment reply held {decoder.rejected} malformed record(s): left out",
        )


def _guarded(method: Any, span: ReadableSpan) -> None:
    try:
        method(span)
    except Exception as exc:  # a host's processor failing never changes the call's outcome
        _log.warn_once(f"segment-emit:{method!r}", f"re-emitting a remote span failed: {exc!r}")


def _span_hex(span: trace.Span) -> str:
    return f"{span.get_span_context().span_id:016x}"


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
    worker = reply.get("worker")
    if isinstance(worker, Mapping) and span.is_recording():
        span.set_attribute(attr.WORKER_PID, int(worker.get("pid", 0)))
        span.set_attribute(attr.WORKER_HOST, str(worker.get("host", "")))
    if reply.get("outcome") == "error":
        error = reply.get("value")
        if not isinstance(error, BaseException):
            raise CarrierError(f"node {node_name!r}: the reply's error is not an exception")
        remote_traceback = reply.get("traceback")
        if isinstance(remote_traceback, str) and remote_traceback:
            error.add_note(f"raised in worker {worker}:\n{remote_traceback.rstrip()}")
        raise error
    return reply.get("value")
