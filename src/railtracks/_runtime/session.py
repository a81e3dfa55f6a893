"""Sessions: the root span of a run, its context, timeout and lifecycle (SPEC 2).

The decorator form lives in ``_runtime.decorator``; ``rt.current_session``,
``rt.session_id`` and ``rt.broadcast`` in ``_runtime.current``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.util.types import AttributeValue

from .._config import CONFIG
from .._delivery.telemetry import TELEMETRY
from .._ids import session_identifier
from .._logs import log as _log
from .._recording import attributes as attr
from .._recording import spans as _spans
from .._recording.compact import Record, compact
from .._recording.fastspan import start_span
from .._runs.journal import Journal, journal_queue, kept_all, open_journal, read_back
from .._runs.respan import spans_from_state
from .._runs.state import build_state
from .._runs.unsampled import unsampled_state
from .._settings import LoggingSetting
from ..errors import ConfigurationError
from . import usage as _usage
from .context_store import SessionContext, context_record
from .options import UNSET, BroadcastCallback, SessionOptions, Unset, resolve_options
from .replay import Replayer
from .resume import open_replay
from .resume import report as report_replay
from .session_end import run_hooks
from .supervision import Supervision

if TYPE_CHECKING:
    from .._recording.encoding import ValueEncoder

STATUS_PENDING: Final = "pending"
_CURRENT: ContextVar[Session | None] = ContextVar("railtracks_session", default=None)


def _utc(unix_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix_ns / 1e9, dt.UTC)


class Session(Supervision):
    """One run of a workflow: a root span, its context, its options and its outcome.

    Use it as ``with rt.Session(...):`` or ``async with rt.Session(...):`` inside
    async code, or through the ``@rt.session`` decorator. All options are
    keyword-only and optional; see ``rt.set_config`` for process-wide defaults.
    """

    # Internal interface: names without an underscore that the README does not list
    # (context_store, encoder, tracer, executor, ended, loop, task, cancel_reason,
    # time_left(), finished_spans()...) are how railtracks' other layers read a
    # session; plain attributes, as fast for rt.call as private ones.

    def __init__(
        self,
        *,
        name: str | Unset | None = UNSET,
        context: Mapping[str, Any] | Unset | None = UNSET,
        timeout: float | Unset | None = UNSET,
        logging_setting: str | LoggingSetting | Unset = UNSET,
        save_state: bool | Unset = UNSET,
        end_on_error: bool | Unset = UNSET,
        log_file: str | Path | Unset | None = UNSET,
        broadcast_callback: BroadcastCallback | Unset | None = UNSET,
        executor: Any = UNSET,
        resume: bool | str | Path | Unset = UNSET,
    ) -> None:
        # every keyword given (not UNSET) is an option the caller chose
        given = {key: value for key, value in locals().items() if value is not UNSET}
        del given["self"]
        self._options: SessionOptions = resolve_options(given)
        if self._options.resume is True and self._options.name is None:
            raise ConfigurationError(
                "resume=True resumes the last run of the session's name: give it a name"
            )
        # SPEC 2 also names it `session._identifier` (the seed page prints it).
        self._identifier = session_identifier()
        self.context_store = SessionContext(self._options.context)
        self.executor: Any = self._options.executor  # where node calls run (None: here)
        self._spans: list[Record] = []
        self.encoder: ValueEncoder = CONFIG.encoder
        self._node_attributes: dict[str, dict[str, AttributeValue]] = {}
        # node spans open in tasks other than the session's own (gather, create_task)
        self._node_tasks: dict[asyncio.Task[Any], list[trace.Span]] = {}

    # What a session starts with; the fields below (and Supervision's) change when
    # it runs (set on the instance then), so a session costs only the assignments above.
    _final_context: Mapping[str, Any] | None = None
    _status: str = STATUS_PENDING
    _entered = False
    _start_ns: int | None = None
    _end_ns: int | None = None
    _duration: float | None = None
    _trace_id: str | None = None
    _span: trace.Span | None = None
    _readable: tuple[ReadableSpan, ...] | None = None
    _answer: Any = UNSET
    _error: BaseException | None = None
    _state: dict[str, Any] | None = None
    _state_path: Path | None = None
    # runtime, set on entry
    tracer: trace.Tracer | None = None
    _tokens: tuple[Token[Any], ...] = ()
    _context_attributes = 0  # context attributes the session span started with
    _otel_token: object = None
    journal: Journal | None = None  # the run journal of a session that saves its state
    _log_handler: int | None = None
    replay: Replayer | None = None  # answers node calls from a recorded run (SPEC 14)
    replayed_calls = 0
    implicit = False  # made by a bare rt.call outside any session
    # a part of a session run elsewhere (a remote segment): its caller's run may be resumed
    remote_part = False

    # -- public, read-only view -------------------------------------------------
    @property
    def identifier(self) -> str:
        """A fresh UUID4 string, unique to this session."""
        return self._identifier

    @property
    def name(self) -> str | None:
        return self._options.name

    @property
    def options(self) -> SessionOptions:
        """The options in force after precedence (argument, set_config, environment, default)."""
        return self._options

    @property
    def logging_setting(self) -> LoggingSetting:
        return self._options.logging_setting

    @property
    def trace_id(self) -> str | None:
        """The trace id (32 hex digits) once the session has started."""
        return self._trace_id

    @property
    def span_id(self) -> str | None:
        if self._span is None:
            return None
        return format(self._span.get_span_context().span_id, "016x")

    @property
    def status(self) -> str:
        """``pending``, ``running``, ``completed``, ``failed``, ``timeout`` or ``cancelled``."""
        return self._status

    @property
    def started_at(self) -> dt.datetime | None:
        return None if self._start_ns is None else _utc(self._start_ns)

    @property
    def ended_at(self) -> dt.datetime | None:
        return None if self._end_ns is None else _utc(self._end_ns)

    @property
    def duration(self) -> float | None:
        """Wall-clock seconds from start to end; None until the session ends."""
        return self._duration

    @property
    def context(self) -> Mapping[str, Any]:
        """A read-only view of the context (a frozen copy once the session has ended)."""
        if self._final_context is not None:
            return self._final_context
        return self.context_store.view()

    @property
    def error(self) -> BaseException | None:
        """The exception the session ended with, if any."""
        return self._error

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every finished span of this session (its own included), in end order."""
        if not kept_all(self.journal, self._spans) and self.ended:
            state = self.state
            self._readable = self._readable or (tuple(spans_from_state(state)) if state else ())
        elif self._readable is None or len(self._readable) != len(self._spans):
            self._readable = tuple(span.readable() for span in compact(self._spans))
        return self._readable

    def finished_spans(self) -> list[Record] | None:
        """Internal: the spans the state is built from, or None when it is built another way."""
        return self._spans if self._spans and self._state is None else None

    def record_state_path(self, path: Path | None) -> None:
        """Internal: the state goes to ``path`` (None: its write failed), by the end hook."""
        self._state_path = path

    @property
    def state(self) -> dict[str, Any] | None:
        """The saved-state document built from this session's spans (None while running)."""
        if self._state is None and self.ended:
            span = self._span
            if not self._spans and span is not None and not span.is_recording():
                self._state = self._unsampled_state(span)  # an application's sampler dropped it
            elif not kept_all(self.journal, self._spans):  # a large journaled session
                self._state = read_back(self._state_path)
            else:
                self._state = build_state(self._spans)
        return self._state

    def _unsampled_state(self, span: trace.Span) -> dict[str, Any]:
        start = self._start_ns or time.time_ns()
        end = self._end_ns or start
        error = self._error
        return unsampled_state(
            identifier=self._identifier,
            name=self.name,
            span_name=_spans.session_span_name(self.name),
            trace_id=self._trace_id or "0" * 32,
            span_id=format(span.get_span_context().span_id, "016x"),
            status=self._status,
            times=(start, end),
            timeout=self._options.timeout,
            context=context_record(self.encoder, self._options.context),
            final_context=context_record(self.encoder, self.context_store.snapshot()),
            error=None
            if error is None
            else (_spans.error_type(error), self.encoder.truncate(_spans.describe(error))),
            answer_json=self._answer_json(),
        )

    @property
    def state_path(self) -> Path | None:
        """Where the state is written, or None (``save_state=False`` or the write failed).

        Set when the session ends; the file is complete once ``rt.flush()``
        returns (and for ``rt.load_state`` at once).
        """
        return self._state_path

    def __repr__(self) -> str:
        return f"<Session name={self.name!r} id={self._identifier} status={self._status}>"

    # -- context manager --------------------------------------------------------
    def __enter__(self) -> Session:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        replacement = self._finish(exc)
        self._run_end_hooks()
        if replacement is not None:
            raise replacement from (exc if isinstance(exc, asyncio.CancelledError) else None)

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The end hooks only hand the state to the writer thread (which builds and
        # writes it): nothing here awaits, so a cancellation cannot cut it short.
        self.__exit__(exc_type, exc, tb)

    # -- lifecycle --------------------------------------------------------------
    def _start(self) -> None:
        if self._entered:
            raise RuntimeError("a Session can be entered only once: create a new Session per run")
        self._entered = True
        self.encoder = CONFIG.encoder
        self._start_ns = time.time_ns()
        self._t0 = time.perf_counter()
        self._otel_token = otel_context.attach(self._open_root_span())
        options = self._options
        self._tokens = (
            _CURRENT.set(self),
            _log.current_setting.set(options.logging_setting),
            _log.current_session_id.set(self._identifier),
        )
        self._status = attr.STATUS_RUNNING
        self._arm_deadline(self._time_allowed())
        self._started()
        self.replay = open_replay(self)

    def _finish(self, exc: BaseException | None) -> BaseException | None:
        self._disarm()
        status, replacement = self._outcome(exc)
        self._error = replacement or exc
        self._end_detached_nodes()
        try:
            self._close_root_span(status)
        finally:
            self._restore_context()
        self._end_ns = time.time_ns()
        self._duration = time.perf_counter() - self._t0
        self._final_context = MappingProxyType(self.context_store.snapshot())
        self._status = status
        return replacement

    # -- hooks: what a subclass (``_remote.segment.Segment``) changes -------------
    def _open_root_span(self) -> Context:
        """Start the session's span and collect its spans; return the context to run in.

        Sets ``tracer``, ``_span`` and ``_trace_id``.
        """
        options = self._options
        self.tracer = tracer = TELEMETRY.tracer()
        context = self.context_store.attributes(self.encoder)
        self._context_attributes = len(context)
        attributes = _spans.session_attributes(
            identifier=self._identifier,
            name=options.name,
            timeout=options.timeout,
            setting=options.logging_setting,
            save_state=options.save_state,
            context_attributes=context,
        )
        self.journal = open_journal(self._identifier, options.name) if options.save_state else None
        TELEMETRY.collector.open(self._identifier, *journal_queue(self.journal))
        span = start_span(tracer, _spans.session_span_name(options.name), attributes)
        self._span = span
        self._trace_id = format(span.get_span_context().trace_id, "032x")
        _log.register_session(self._identifier, self._trace_id, self.span_id or "0" * 16)
        return trace.set_span_in_context(span)

    def _time_allowed(self) -> float | None:
        """Seconds the session may run from its start: its ``timeout`` (None: no limit)."""
        return self._options.timeout

    def _started(self) -> None:
        """The session runs (its span and context are current): open its log file, say so."""
        log_file = self._options.log_file
        if log_file is not None:
            self._log_handler = _log.LOGS.add_file(log_file, self._identifier)
        if _log.wanted("DEBUG", has_file=log_file is not None):
            message = f"{self._label()} started (trace {self._trace_id})"
            _log.emit("DEBUG", "Session", message, has_file=log_file is not None)

    def _close_root_span(self, status: str) -> None:
        """End the session's span with ``status`` and take its finished spans."""
        span = self._span
        assert span is not None  # set by _open_root_span
        final = (
            self.context_store.final_attributes(self.encoder, self._context_attributes)
            if span.is_recording()
            else {}
        )
        if self.replayed_calls:
            final = {**final, attr.SESSION_REPLAYED: self.replayed_calls}
        final = {**final, **_usage.usage_attributes(span)}
        _spans.end_session_span(
            span, status, self._error, self._answer_json(), self.encoder, end_attributes=final
        )
        self._spans = TELEMETRY.collector.close(self._identifier)

    def node_attributes(self, node_name: str) -> dict[str, AttributeValue]:
        """Span attributes of a node call at this moment (identity plus current context)."""
        base = self._node_attributes.get(node_name)
        if base is None:
            base = _spans.node_base_attributes(node_name, self._identifier, self._options.name)
            self._node_attributes[node_name] = base
        return {**base, **self.context_store.attributes(self.encoder)}

    def set_answer(self, answer: Any) -> None:
        self._answer = answer

    def _answer_json(self) -> str | None:
        return None if self._answer is UNSET else self.encoder.json(self._answer)

    def _run_end_hooks(self) -> None:
        """Save the state and the rest; they never raise and never change the outcome."""
        run_hooks(self, self._label())
        if self.replay is not None:
            report_replay(self.replay)
        if self._log_handler is not None:
            _log.LOGS.remove(self._log_handler)
        _log.forget_session(self._identifier)

    def _restore_context(self) -> None:
        for token in reversed(self._tokens):
            try:
                token.var.reset(token)
            except ValueError:  # exited in another context than entered: leave that one alone
                continue
        try:
            otel_context.detach(self._otel_token)  # type: ignore[arg-type]  # the token attach() returned
        except Exception:  # opentelemetry logs a mismatched detach itself
            return

    def _label(self) -> str:
        return f"session {self.name!r}" if self.name else f"session {self._identifier}"
