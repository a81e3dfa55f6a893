"""A session *segment*: the caller's session, continued in another process (SPEC 12).

On the far side of a transport, ``session_segment(carrier)`` opens a segment:
``rt.current_session()``, ``rt.context`` and ``rt.call`` work as in the
caller's session (same identifier, trace, context, deadline and
``logging_setting``), nested calls nest under the caller's span, and nothing
is exported, printed or saved there. ``segment.reply()`` then holds what must
go back: the spans made in the segment, the events and attributes set on the
caller's span, and the context changes, in order. On the caller's side
``_remote.merge.merge(session, reply)`` re-emits those spans through the caller's
processors (so console, state and export are complete, each span exported
once) and applies the context changes.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import socket
import time
import traceback
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes, AttributeValue

from .._delivery.telemetry import INSTRUMENTATION_SCOPE
from .._runtime.context_store import SessionContext
from .._runtime.session import Session
from .._version import __version__
from ..errors import CarrierError, ConfigurationError
from .carrier import RemoteCall, SessionCarrier, from_headers
from .spancodec import MAX_EVENTS, encode_all

REPLY_VERSION: Final = 1
_SINK: contextvars.ContextVar[list[ReadableSpan] | None] = contextvars.ContextVar(
    "railtracks_segment_sink", default=None
)


class _SinkProcessor(SpanProcessor):
    """Hands each finished span to the segment whose context ended it."""

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        sink = _SINK.get()
        if sink is not None:
            sink.append(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


SINK_PROCESSOR: Final = _SinkProcessor()
_TRACER: trace.Tracer | None = None


def _segment_tracer() -> trace.Tracer:
    """A private provider with no exporter: a segment's spans only travel back."""
    global _TRACER  # noqa: PLW0603  # one provider per process, made on first use
    if _TRACER is None:
        provider = SdkTracerProvider(
            sampler=ALWAYS_ON, resource=Resource.get_empty(), shutdown_on_exit=False
        )
        provider.add_span_processor(SINK_PROCESSOR)
        _TRACER = provider.get_tracer(INSTRUMENTATION_SCOPE, __version__)
    return _TRACER


class _CallerSpan(NonRecordingSpan):
    """The caller's span, seen from the segment: what is set on it travels back."""

    def __init__(self, context: SpanContext) -> None:
        super().__init__(context)
        self.attributes: dict[str, AttributeValue] = {}
        self.events: list[dict[str, Any]] = []

    def is_recording(self) -> bool:
        return True

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        self.attributes.update(attributes)

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if len(self.events) < MAX_EVENTS:
            self.events.append(
                {
                    "name": name,
                    "time": timestamp if timestamp is not None else time.time_ns(),
                    "attributes": {
                        key: list(value) if isinstance(value, tuple) else value
                        for key, value in (attributes or {}).items()
                    },
                }
            )


class _RecordingContext(SessionContext):
    """A segment's context: every change is also kept, in order, to replay on the caller."""

    __slots__ = ("changes",)

    def __init__(self, initial: Mapping[str, Any]) -> None:
        super().__init__(initial)
        self.changes: list[list[Any]] = []

    def put(self, key: str, value: Any) -> None:
        super().put(key, value)
        self.changes.append(["put", key, value])

    def update(self, values: Mapping[str, Any]) -> None:
        super().update(values)
        self.changes.append(["update", dict(values)])

    def delete(self, key: str) -> None:
        super().delete(key)
        self.changes.append(["delete", key])


class Segment(Session):
    """The caller's session continued here; ``with``/``async with``, then ``reply()``.

    A ``Session`` whose hooks continue the caller's span instead of starting
    one, keep the spans for the reply instead of exporting them, and take the
    deadline from the carrier; its lifecycle, clock and outcome are the session's.
    """

    remote_part = True  # records what resume needs, whatever its own save_state

    def __init__(self, carrier: SessionCarrier) -> None:
        try:
            timeout = None if carrier.timeout is None or carrier.timeout <= 0 else carrier.timeout
            super().__init__(
                name=carrier.name,
                context=carrier.context,
                timeout=timeout,
                logging_setting=carrier.logging_setting,
                save_state=False,
                executor=None,
            )
        except ConfigurationError as exc:
            raise CarrierError(f"carrier: {exc}") from None
        self._identifier = carrier.session_id
        self.context_store = self._changes = _RecordingContext(self._options.context)
        self._carrier = carrier
        self._sink: list[ReadableSpan] = []
        self._caller: _CallerSpan | None = None
        self._sink_token: contextvars.Token[Any] | None = None

    def _open_root_span(self) -> Context:
        """Continue the caller's span (the carrier's traceparent); keep the spans made here."""
        self.tracer = _segment_tracer()
        carried = TraceContextTextMapPropagator().extract(self._carrier.w3c, Context())
        carried = W3CBaggagePropagator().extract(self._carrier.w3c, carried)
        parent = trace.get_current_span(carried).get_span_context()
        if not parent.is_valid:
            raise CarrierError("carrier: no valid W3C traceparent")
        self._caller = self._span = _CallerSpan(parent)  # stands in for the caller's span
        self._trace_id = format(parent.trace_id, "032x")
        self._sink_token = _SINK.set(self._sink)
        return trace.set_span_in_context(self._caller, carried)

    def _time_allowed(self) -> float | None:
        """What the carrier's absolute deadline leaves (None: no timeout)."""
        deadline = self._carrier.deadline
        return None if deadline is None else deadline - time.time()

    def _started(self) -> None:
        """Nothing: a segment has no log file and announces nothing (its caller does)."""

    def _close_root_span(self, status: str) -> None:
        """The caller's span goes on: only stop sinking spans (the reply carries them)."""
        if self._sink_token is not None:
            _SINK.reset(self._sink_token)

    def reply(self) -> dict[str, Any]:
        """What goes back to the caller: spans, caller-span changes, context changes.

        JSON-compatible as long as the context values written here are.
        """
        caller = self._caller
        assert caller is not None, "reply() is available once the segment has started"
        return {
            "version": REPLY_VERSION,
            "session_id": self._identifier,
            "trace_id": self._trace_id,
            "caller_span_id": f"{caller.get_span_context().span_id:016x}",
            "spans": encode_all(self._sink, caller.get_span_context().trace_id),
            "caller_attributes": {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in caller.attributes.items()
            },
            "caller_events": list(caller.events),
            "context_changes": list(self._changes.changes),
            "worker": {"pid": os.getpid(), "host": socket.gethostname()},
        }


def open_segment(carrier: SessionCarrier | Mapping[str, Any]) -> Segment:
    """A segment of the session ``carrier`` describes (a carrier object or its headers)."""
    if not isinstance(carrier, SessionCarrier):
        carrier = from_headers(carrier)
    return Segment(carrier)


def execute_call(call: RemoteCall) -> dict[str, Any]:
    """Run one shipped node call inside a segment; the reply carries its outcome.

    The node's exception is caught and put in the reply (``outcome`` "error"),
    with its formatted traceback, so its spans come back even when it fails.
    """
    segment = Segment(call.carrier)
    outcome, value = "result", None
    try:
        if call.is_async:
            value = asyncio.run(_run_async(segment, call))
        else:
            with segment:
                segment.check_running()
                value = call.func(*call.args, **call.kwargs)
                if inspect.isawaitable(value):
                    value = asyncio.run(_awaited(value))
    except Exception as exc:
        outcome, value = "error", exc
    reply = segment.reply()
    reply["outcome"] = outcome
    reply["value"] = value
    if outcome == "error":
        reply["traceback"] = _format(value)
    return reply


async def _run_async(segment: Segment, call: RemoteCall) -> Any:
    with segment:
        segment.check_running()
        return await call.func(*call.args, **call.kwargs)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _format(exc: Any) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # a hostile exception still fails the call, without its traceback
        return ""


_GLOBAL_CAPTURE = False


def capture_global_spans() -> None:
    """In a process that runs nodes for railtracks (a Ray worker), bring foreign spans back too.

    Spans made through the global tracer provider during a segment go back
    with it. Without a global SDK provider one is installed, with no exporter,
    so those spans are recorded here and exported only by the caller.
    """
    global _GLOBAL_CAPTURE  # noqa: PLW0603  # once per process
    if _GLOBAL_CAPTURE:
        return
    _GLOBAL_CAPTURE = True
    provider = trace.get_tracer_provider()
    if not isinstance(provider, SdkTracerProvider):
        trace.set_tracer_provider(SdkTracerProvider(shutdown_on_exit=False))
        provider = trace.get_tracer_provider()
    if isinstance(provider, SdkTracerProvider):
        provider.add_span_processor(SINK_PROCESSOR)
