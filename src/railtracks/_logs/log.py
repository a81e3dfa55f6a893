"""railtracks' own log records, through loguru (SPEC 4).

railtracks logs through a loguru logger of its own (its own core, its own
sinks), so that a host application's ``logger.remove()`` can never silence
railtracks and railtracks never adds, removes or duplicates the host's
handlers. Each record, named ``railtracks.{component}`` everywhere, is:

* printed once on the terminal, by railtracks, as
  ``RT.{Component} : {LEVEL} - {message}`` on the console stream, at or above
  the level of the session's ``logging_setting``;
* handed to the host's own loguru handlers and to the stdlib ``logging``
  handlers that ``railtracks.{component}`` reaches, *except* those writing to
  the terminal (stderr, or railtracks' console stream): those would print the
  record a second time. File sinks, stdout sinks, collectors and
  ``logging.basicConfig(filename=...)`` all receive it;
* given ``trace_id``/``span_id`` of the current span (or of the session it is
  about, for a record emitted after the session's span ended), and recorded as
  a span event when it is a WARNING or worse;
* written to the session's ``log_file``, when it has one (DEBUG and up).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace

from .._config import CONFIG
from .._recording import attributes as attr
from .._recording import limits as _limits
from .._recording.encoding import strict_text
from .._settings import LoggingSetting, default_logging_setting
from .log_file import LogFileSink
from .sinks import console_sink, host_sink, stdlib_sink
from .terminal import inert

if TYPE_CHECKING:
    from loguru import Record

_FORMAT: Final = "RT.{extra[rt_component]} : {level} - {message}"
_FILE_FORMAT: Final = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} RT.{extra[rt_component]} : {level} - {message}"
    " [trace_id={extra[trace_id]} span_id={extra[span_id]}]"
)
_NOTHING: Final = 1_000  # above every loguru level: prints nothing
# loguru's standard levels, asked of loguru (under its lock) only for any other
_LEVELS: Final = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "SUCCESS": 25,
    "WARNING": 30,
    "ERROR": 40,
    "CRITICAL": 50,
}
_STDLIB_ROOT: Final = "railtracks"

# The logging_setting in force where a record is emitted; sessions set it.
current_setting: ContextVar[LoggingSetting | None] = ContextVar(
    "railtracks_logging_setting", default=None
)
# The session a record belongs to (for its log_file sink).
current_session_id: ContextVar[str | None] = ContextVar("railtracks_log_session", default=None)

_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16


def _threshold(setting: LoggingSetting) -> int:
    level = setting.loguru_level
    return _NOTHING if level is None else _level_no(level)


def _level_no(level: str) -> int:
    known = _LEVELS.get(level)
    if known is not None:
        return known
    import loguru  # noqa: PLC0415  # see _Logs._build

    return int(loguru.logger.level(level).no)


# session id -> (trace id, span id) of the sessions running now, for records
# about a session emitted after its span ended (the state's overwrite warning).
_SESSION_IDS: dict[str, tuple[str, str]] = {}


def register_session(session_id: str, trace_id: str, span_id: str) -> None:
    _SESSION_IDS[session_id] = (trace_id, span_id)


def forget_session(session_id: str) -> None:
    _SESSION_IDS.pop(session_id, None)


def _add_trace_context(record: Record) -> None:
    """Patcher: runs in the emitting context, so the current span is the right one."""
    extra = record["extra"]
    record["name"] = f"{_STDLIB_ROOT}.{str(extra.get('rt_component', 'core')).lower()}"
    explicit = extra.get("rt_ids")
    if explicit is not None:
        extra["trace_id"], extra["span_id"] = explicit
        return
    span = trace.get_current_span()
    context = span.get_span_context()
    if context.is_valid:
        extra["trace_id"] = format(context.trace_id, "032x")
        extra["span_id"] = format(context.span_id, "016x")
    else:
        extra["trace_id"] = _ZERO_TRACE
        extra["span_id"] = _ZERO_SPAN


def _record_on_span(level: str, component: str, message: str) -> None:
    """WARNING-and-up records are span events, whatever the logging setting."""
    span = trace.get_current_span()
    if span.is_recording():
        _limits.add_bounded_event(
            span,
            attr.EVENT_LOG,
            {attr.LOG_LEVEL: level, attr.LOG_MESSAGE: message, attr.LOG_COMPONENT: component},
            reserved=True,
        )


def _above_threshold(record: Record) -> bool:
    return bool(record["level"].no >= record["extra"].get("rt_threshold", _NOTHING))


class _Logs:
    """The independent logger and its sinks; built once, on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logger: Any = None
        self._warned: set[str] = set()
        self._file_sinks: dict[int, LogFileSink] = {}

    def logger(self) -> Any:
        if self._logger is None:
            with self._lock:
                if self._logger is None:
                    self._logger = self._build()
        return self._logger

    @staticmethod
    def _build() -> Any:
        # loguru (~30 ms to import) loads with the first record that is printed
        # or written somewhere, not with railtracks: most runs at NONE never need it.
        from loguru._logger import Core as _LoguruCore  # noqa: PLC0415
        from loguru._logger import Logger as _LoguruLogger  # noqa: PLC0415

        # loguru offers no public constructor for an independent logger; these
        # are the arguments loguru/__init__.py itself uses for the global one.
        own = _LoguruLogger(  # type: ignore[no-untyped-call]  # loguru's private classes are untyped
            core=_LoguruCore(),  # type: ignore[no-untyped-call]  # as above
            exception=None,
            depth=0,
            record=False,
            lazy=False,
            colors=False,
            raw=False,
            capture=True,
            patchers=[],
            extra={},
        ).patch(_add_trace_context)
        own.add(console_sink, level=0, format=_FORMAT, filter=_above_threshold, colorize=False)
        own.add(stdlib_sink, level=0, format="{message}", filter=_above_threshold)
        own.add(host_sink, level=0, format="{message}", filter=_above_threshold)
        stdlib = logging.getLogger(_STDLIB_ROOT)
        # Without a handler, stdlib's "last resort" would print our warnings a second time.
        if not any(isinstance(h, logging.NullHandler) for h in stdlib.handlers):
            stdlib.addHandler(logging.NullHandler())
        return own

    def emit(
        self,
        level: str,
        component: str,
        message: str,
        *,
        setting: LoggingSetting | None = None,
        session_id: str | None = None,
        has_file: bool = False,
        on_span: bool = True,
    ) -> None:
        if setting is None:
            setting = current_setting.get() or _default_setting()
        threshold = _threshold(setting)
        level_no = _level_no(level)
        on_span = on_span and level_no >= logging.WARNING
        if not _read(level_no, threshold, has_file=has_file, on_span=on_span):
            return  # nothing will read it: not even the message is prepared
        # one place for every record: secrets scrubbed, control characters made visible
        message = inert(strict_text(CONFIG.encoder.scrubber.text(message)))
        if on_span:
            _record_on_span(level, component, message)
        if level_no < threshold and not has_file:
            return
        # a record about a given session (not emitted inside it) carries its ids
        ids = _SESSION_IDS.get(session_id) if session_id is not None else None
        try:
            self.logger().bind(
                rt_component=component,
                rt_threshold=threshold,
                rt_session=session_id or current_session_id.get(),
                rt_ids=ids,
            ).opt(depth=2).log(level, message)
        except Exception:  # a failing sink or patcher never reaches the run
            return

    def warn_once(self, key: str, message: str, level: str = "WARNING") -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        self.emit(level, "Telemetry", message)

    def add_file(self, path: Path, session_id: str) -> int | None:
        """A DEBUG-and-up file sink for one session's records; None when it cannot be opened."""
        try:
            sink = LogFileSink(path, lambda problem: self._file_failed(problem, session_id))
            handler_id: int = self.logger().add(
                sink.write,
                level=0,
                format=_FILE_FORMAT,
                filter=lambda record: record["extra"].get("rt_session") == session_id,
                colorize=False,
                catch=False,
            )
            self._file_sinks[handler_id] = sink
            return handler_id
        except Exception as exc:  # an unwritable log file is reported, the run goes on
            self.emit("ERROR", "Session", f"cannot open log file {path}: {exc}")
            return None

    def _file_failed(self, problem: str, session_id: str) -> None:
        # reported on the console (and span) only: the file is what failed
        self.emit("ERROR", "Session", problem, session_id=f"{session_id}:log-file-failed")

    def remove(self, handler_id: int) -> None:
        with contextlib.suppress(ValueError):  # already removed
            self.logger().remove(handler_id)
        sink = self._file_sinks.pop(handler_id, None)
        if sink is not None:
            sink.close()

    def reset_warnings(self) -> None:
        self._warned.clear()


def _default_setting() -> LoggingSetting:
    try:
        return default_logging_setting(CONFIG.session_defaults)
    except Exception:  # a bad environment value is reported where sessions start
        return LoggingSetting.REGULAR


LOGS = _Logs()


def wanted(level: str, *, has_file: bool = False) -> bool:
    """Whether a record at ``level``, emitted here and now, would reach anything.

    For a record whose message costs something to build (``emit`` itself
    returns at once when nothing reads it).
    """
    setting = current_setting.get() or _default_setting()
    level_no = _level_no(level)
    return _read(
        level_no, _threshold(setting), has_file=has_file, on_span=level_no >= logging.WARNING
    )


def _read(level_no: int, threshold: int, *, has_file: bool, on_span: bool) -> bool:
    """Whether anything reads a record: a sink at its level, a log file, or the current span."""
    return level_no >= threshold or has_file or on_span


def emit(level: str, component: str, message: str, **kwargs: Any) -> None:
    """Log one railtracks record; see the module docstring for where it goes."""
    LOGS.emit(level, component, message, **kwargs)


def warn_once(key: str, message: str) -> None:
    """Log a telemetry warning the first time ``key`` is seen in this process."""
    LOGS.warn_once(key, message)
