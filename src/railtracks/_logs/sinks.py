"""Where railtracks' log records go besides its own file sinks (SPEC 4).

``console_sink`` prints a record once on the console stream; ``stdlib_sink``
and ``host_sink`` hand it to the stdlib ``logging`` handlers and the host's
loguru handlers, skipping those that print on the terminal (the record is
there already).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from .._config import CONFIG

if TYPE_CHECKING:
    from loguru import Message


# Where the console goes while a test isolates it (``railtracks.testing``).
console_override: list[Any] = []


def console_stream() -> Any:
    """Where the console goes now: ``configure(console_stream=...)``, a test's, or stderr."""
    return (
        CONFIG.telemetry.console_stream
        or (console_override[-1] if console_override else None)
        or sys.stderr
    )


def console_sink(message: Message) -> None:
    stream = console_stream()
    try:
        stream.write(str(message))
        stream.flush()
    except Exception:  # a closed or broken console stream never breaks a run
        return


def _is_terminal(stream: Any) -> bool:
    """Whether a handler's stream is where railtracks prints its own console lines."""
    if stream is None:
        return False
    if stream is sys.stderr or stream is sys.__stderr__ or stream is console_stream():
        return True
    return getattr(stream, "name", None) == "<stderr>"


def _stdlib_prints_on_terminal(handler: logging.Handler) -> bool:
    return (
        isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
        and _is_terminal(getattr(handler, "stream", None))
    )


def stdlib_sink(message: Message) -> None:
    """Deliver to the stdlib handlers ``railtracks.{component}`` reaches, as stdlib would.

    Like ``Logger.handle``: level, the logger's filters, then every handler up
    the hierarchy while ``propagate`` holds; but handlers printing on the
    terminal are skipped (railtracks has printed the record there) and there is
    no "last resort" print.
    """
    record = message.record
    logger = logging.getLogger(str(record["name"]))
    level = record["level"].no
    if not logger.isEnabledFor(level):
        return
    entry = logger.makeRecord(
        logger.name,
        level,
        record["file"].path,
        record["line"],
        record["message"],
        (),
        None,
        record["function"],
        {"trace_id": record["extra"]["trace_id"], "span_id": record["extra"]["span_id"]},
    )
    if not logger.filter(entry):
        return
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if entry.levelno >= handler.level and not _stdlib_prints_on_terminal(handler):
                handler.handle(entry)
        current = current.parent if current.propagate else None


def _loguru_skipped(handler: Any) -> bool:
    """A host handler printing where railtracks prints already, or on a stream since closed.

    loguru's default handler keeps the ``sys.stderr`` of the moment loguru was
    imported; railtracks imports loguru lazily, possibly while a test framework
    had swapped stderr for a stream it has closed since.
    """
    stream = getattr(getattr(handler, "_sink", None), "_stream", None)
    return _is_terminal(stream) or bool(getattr(stream, "closed", False))


def host_sink(message: Message) -> None:
    """Hand the record to the host's global loguru handlers, but those printing on the terminal.

    loguru has no public way to address some handlers of a logger and not
    others: this does what ``Logger._log`` does for each handler (the host's
    ``extra`` and patcher included). loguru is pinned below 0.8 for this.
    """
    import loguru  # noqa: PLC0415  # loaded already: this runs inside loguru

    core = getattr(loguru.logger, "_core", None)
    handlers = getattr(core, "handlers", None)
    if not isinstance(handlers, dict):
        return
    targets = [h for h in list(handlers.values()) if not _loguru_skipped(h)]
    if not targets:
        return
    record = message.record
    forwarded = dict(record)
    forwarded["extra"] = {**getattr(core, "extra", {}), **record["extra"]}
    patcher = getattr(core, "patcher", None)
    if callable(patcher):
        patcher(forwarded)
    level_id = record["level"].name
    for handler in targets:
        handler.emit(forwarded, level_id, False, False, None)
