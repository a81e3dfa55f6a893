"""The console span printer (SPEC 4): a span processor writing to any text stream.

It reads spans only. A session span's ``railtracks.logging_setting`` decides
how loudly that session, and every node in it, is printed:

* ``VERBOSE``: every span's start and end, with inputs, outputs, context and events;
* ``REGULAR``: a line per session start and end and per finished node;
* ``QUIET``: only spans that did not complete;
* ``NONE``: nothing.

Spans of other instrumentation inside a session (an HTTP client's, a manual
span) print at ``VERBOSE`` only, marked ``(foreign)``, and indent what runs
under them at every setting.

Lines stream as spans start and end (a long run shows progress as it goes),
indented two spaces per level of the call tree. Colour is used only when the
stream is a terminal and ``NO_COLOR`` is not set.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .._logs.terminal import inert
from .._recording import attributes as attr
from .._recording.compact import attribute_dict
from .._settings import LoggingSetting
from .usage_console import usage_segment

SHORT_VALUE: Final = 80
_RESET: Final = "\033[0m"
_COLOURS: Final = {
    attr.STATUS_COMPLETED: "\033[32m",
    attr.STATUS_FAILED: "\033[31m",
    attr.STATUS_TIMEOUT: "\033[31m",
    attr.STATUS_CANCELLED: "\033[33m",
    "dim": "\033[2m",
    "bold": "\033[1m",
}
_SCOPE: Final = "railtracks"
_SILENT: Final = LoggingSetting.NONE.name

# A line is a list of (text, style) segments; style names a colour or is None.
Segment = tuple[str, str | None]
Line = list[Segment]


def render(lines: list[Line], colour: bool) -> str:
    """Plain text, or text with ANSI colours, of some lines."""
    if not colour:  # one scan a line: inert() replaces single characters, so it splits
        return "".join([inert("".join([raw for raw, _ in line])) + "\n" for line in lines])
    out = []
    for line in lines:
        for raw, style in line:
            text = inert(raw)  # untrusted text never drives the terminal; colours are ours
            out.append(f"{_COLOURS[style]}{text}{_RESET}" if colour and style else text)
        out.append("\n")
    return "".join(out)


def short(text: object, limit: int = SHORT_VALUE) -> str:
    value = str(text).replace("\n", "\\n")
    return value if len(value) <= limit else value[: limit - 3] + "..."


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.2f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    return f"{seconds / 60:.1f}min"


def _setting_of(attributes: Mapping[str, Any]) -> LoggingSetting:
    try:
        return LoggingSetting[str(attributes.get(attr.LOGGING_SETTING, "REGULAR"))]
    except KeyError:
        return LoggingSetting.REGULAR


class ConsoleSpanProcessor(SpanProcessor):
    """Prints railtracks spans per their session's logging setting."""

    def __init__(self, stream: Callable[[], IO[str]] | None = None) -> None:
        self._stream = stream or (lambda: sys.stderr)
        self._lock = threading.Lock()
        # session id -> setting, and span id -> depth, for spans still open
        self._settings: dict[str, LoggingSetting] = {}
        self._depths: dict[int, int] = {}
        self._sessions: dict[int, str] = {}  # span id -> its session's id
        self._loud = 0  # open sessions printing something (not at NONE)
        # isatty() is a system call: asked once per stream, not once per line
        self._tty: tuple[int, bool] | None = None

    def _colour_enabled(self, stream: IO[str]) -> bool:
        if os.environ.get("NO_COLOR", "") != "":
            return False
        known = self._tty
        if known is not None and known[0] == id(stream):
            return known[1]
        isatty = getattr(stream, "isatty", None)
        try:
            terminal = bool(isatty and isatty())
        except Exception:  # a closed stream has no answer: no colour
            terminal = False
        self._tty = (id(stream), terminal)
        return terminal

    def _write(self, lines: list[Line]) -> None:
        with self._lock:
            try:
                stream = self._stream()
                stream.write(render(lines, self._colour_enabled(stream)))
                stream.flush()
            except Exception:  # a broken console never breaks a run
                return

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = attribute_dict(span)
        if not self._loud and (  # every open session is at NONE: only a session's start matters
            attr.NODE_NAME in attributes or attr.LOGGING_SETTING not in attributes
        ):
            return
        if attributes.get(attr.LOGGING_SETTING) == _SILENT and attr.NODE_NAME not in attributes:
            return  # a session at NONE: nothing of it is printed, nothing to track
        scope = span.instrumentation_scope
        if scope is None or scope.name != _SCOPE:
            self._foreign_start(span)
            return
        is_session = attr.NODE_NAME not in attributes
        session_id = str(attributes.get(attr.SESSION_ID))
        if is_session:
            setting = _setting_of(attributes)
            self._settings[session_id] = setting
            if setting is not LoggingSetting.NONE:
                with self._lock:  # sessions may start in several threads at once
                    self._loud += 1
        else:
            found = self._settings.get(session_id)
            if found is None or found is LoggingSetting.NONE:
                return
            setting = found
        parent = span.parent
        depth = self._depths.get(parent.span_id, -1) + 1 if parent is not None else 0
        self._depths[span.context.span_id] = depth
        self._sessions[span.context.span_id] = session_id
        if setting is LoggingSetting.VERBOSE:
            self._write(_verbose_start(span.name, attributes, depth, is_session))
        elif setting is LoggingSetting.REGULAR and is_session:
            trace_id = f" trace={span.context.trace_id:032x}"
            self._write(
                [[("  " * depth + span.name, None), (" started", "dim"), (trace_id, "dim")]]
            )

    def _foreign_start(self, span: Span) -> None:
        """Another instrumentation's span under a railtracks one: tracked for depth, VERBOSE only.

        It is tracked whatever the setting, so a railtracks node under it is
        indented under it rather than printed as a top-level line.
        """
        parent = span.parent
        if parent is None:
            return
        session_id = self._sessions.get(parent.span_id)
        depth = self._depths.get(parent.span_id)
        if session_id is None or depth is None:
            return
        span_id = span.context.span_id
        self._depths[span_id] = depth + 1
        self._sessions[span_id] = session_id
        if self._settings.get(session_id) is LoggingSetting.VERBOSE:
            pad = "  " * (depth + 1)
            self._write([[(pad + span.name, "bold"), (" started", "dim"), (" (foreign)", "dim")]])

    def _foreign_end(self, span: ReadableSpan, depth: int, session_id: str | None) -> None:
        if session_id is None or self._settings.get(session_id) is not LoggingSetting.VERBOSE:
            return
        failed = not span.status.is_ok
        status = attr.STATUS_FAILED if failed else attr.STATUS_COMPLETED
        line = _end_line(span, {}, depth, status, False, show_output=False)
        pad = "  " * depth + "  "
        values = ", ".join(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        lines = [line]
        if values:
            lines.append([(f"{pad}attributes: {short(values, 400)}", None)])
        self._write(lines)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        depth = self._depths.pop(context.span_id, None)
        if depth is None:
            return
        owner = self._sessions.pop(context.span_id, None)
        scope = span.instrumentation_scope
        if scope is None or scope.name != _SCOPE:
            self._foreign_end(span, depth, owner)
            return
        attributes = attribute_dict(span)
        is_session = attr.NODE_NAME not in attributes
        session_id = str(attributes.get(attr.SESSION_ID))
        setting = (
            self._settings.pop(session_id, None) if is_session else self._settings.get(session_id)
        )
        if setting is None or setting is LoggingSetting.NONE:
            return
        if is_session:
            with self._lock:
                self._loud -= 1
        status = str(attributes.get(attr.STATUS, attr.STATUS_COMPLETED))
        if setting is LoggingSetting.QUIET and status == attr.STATUS_COMPLETED:
            return
        verbose = setting is LoggingSetting.VERBOSE
        lines = [_end_line(span, attributes, depth, status, is_session, show_output=not verbose)]
        if verbose:
            lines.extend(_verbose_details(span, attributes, depth, is_session))
        self._write(lines)

    def shutdown(self) -> None:
        self._loud = 0
        self._depths.clear()
        self._sessions.clear()
        self._settings.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _end_line(
    span: ReadableSpan,
    attributes: Mapping[str, Any],
    depth: int,
    status: str,
    is_session: bool,
    *,
    show_output: bool,
) -> Line:
    start, end = span.start_time or 0, span.end_time or 0
    line: Line = [
        ("  " * depth + span.name + " ", None),
        (status, status),
        (" " + format_duration((end - start) / 1e9), "dim"),
        *usage_segment(attributes),
    ]
    if attributes.get(attr.NODE_REPLAYED) is True:
        line.append((" replayed", "dim"))
    if status == attr.STATUS_COMPLETED and show_output:
        output = attributes.get(attr.SESSION_ANSWER if is_session else attr.NODE_OUTPUT)
        if output is not None:
            line.append((f" -> {short(output)}", None))
    elif span.status.description:
        line.append((f" {short(span.status.description, 160)}", None))
    return line


def _verbose_start(
    name: str, attributes: Mapping[str, Any], depth: int, is_session: bool
) -> list[Line]:
    pad = "  " * depth
    first: Line = [(pad + name, "bold"), (" started", "dim")]
    if is_session:
        first.append((f" id={attributes.get(attr.SESSION_ID)}", "dim"))
    lines = [first]
    if not is_session and attr.NODE_INPUT in attributes:
        lines.append([(f"{pad}  input: {short(attributes[attr.NODE_INPUT], 400)}", None)])
    context = [
        f"{key[len(attr.CONTEXT_PREFIX) :]}={value!r}"
        for key, value in attributes.items()
        if key.startswith(attr.CONTEXT_PREFIX)
    ]
    if context:
        lines.append([(f"{pad}  context: {short(', '.join(context), 400)}", None)])
    return lines


def _verbose_details(
    span: ReadableSpan, attributes: Mapping[str, Any], depth: int, is_session: bool
) -> list[Line]:
    pad = "  " * depth + "  "
    lines: list[Line] = []
    for event in span.events:
        values = ", ".join(f"{k}={v!r}" for k, v in (event.attributes or {}).items())
        lines.append([(pad + "event ", "dim"), (f"{event.name} {short(values, 400)}", None)])
    key = attr.SESSION_ANSWER if is_session else attr.NODE_OUTPUT
    if key in attributes:
        label = "answer" if is_session else "output"
        lines.append([(f"{pad}{label}: {short(attributes[key], 400)}", None)])
    return lines
