"""The single span processor railtracks installs on a provider, fanning out to its own.

Installing one fan-out (rather than each processor directly) lets railtracks
change its pipeline after ``rt.configure`` or in tests without touching a
host application's provider, which has no API to remove a processor. Every
call into a child processor is guarded: telemetry never raises into a run.
"""

from __future__ import annotations

import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .._logs.log import warn_once


class FanOutSpanProcessor(SpanProcessor):
    """Dispatches to an atomically replaced tuple of processors."""

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()

    @property
    def processors(self) -> tuple[SpanProcessor, ...]:
        return self._processors

    def add(self, processor: SpanProcessor) -> None:
        with self._lock:
            self._processors = (*self._processors, processor)

    def remove(self, processor: SpanProcessor) -> None:
        with self._lock:
            self._processors = tuple(p for p in self._processors if p is not processor)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._processors:
            try:
                processor.on_start(span, parent_context)
            except Exception as exc:  # telemetry must never break the user's run
                warn_once(f"on_start:{type(processor).__name__}", f"span processor failed: {exc!r}")

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            try:
                processor.on_end(span)
            except Exception as exc:  # telemetry must never break the user's run
                warn_once(f"on_end:{type(processor).__name__}", f"span processor failed: {exc!r}")

    def shutdown(self) -> None:
        # A provider's own shutdown (a host's, or one railtracks replaced) only
        # flushes: railtracks shuts its processors down itself, once, at exit.
        self.force_flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        ok = True
        for processor in self._processors:
            try:
                ok = processor.force_flush(timeout_millis) and ok
            except Exception as exc:  # a failing exporter flush is logged, not raised
                warn_once(f"flush:{type(processor).__name__}", f"span flush failed: {exc!r}")
                ok = False
        return ok
