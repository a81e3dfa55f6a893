"""Who owns the tracer provider, and which processors railtracks feeds.

At first use railtracks looks at the global tracer provider. If the host
application installed an SDK ``TracerProvider``, railtracks adds its one
fan-out processor to it and never replaces it. Otherwise railtracks builds a
private provider (never made global) whose sampler still *records* every span
it would drop, so the console and the saved state stay complete while the
sampler decides what is exported.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from . import _signals
from ._collector import SessionSpanCollector
from ._config import CONFIG
from ._pipeline import Pipeline, build_pipeline, exit_cap_seconds
from ._processors import FanOutSpanProcessor
from ._version import __version__

DEFAULT_SERVICE_NAME = "railtracks"
INSTRUMENTATION_SCOPE = "railtracks"
# At exit, a collector that accepts nothing for this long is given up on, and
# no collector, however slow, holds the process longer than the cap (SPEC 5);
# what is left then goes to the outbox. After SIGTERM the cap is the stall time.
EXIT_STALL_SECONDS = 1.5


class RecordLocallySampler(Sampler):
    """Defers to ``inner`` for export, but turns DROP into RECORD_ONLY."""

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(  # noqa: PLR0917  # the signature is the SDK's Sampler interface
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP:
            return SamplingResult(Decision.RECORD_ONLY, result.attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordLocally{{{self._inner.get_description()}}}"


def service_resource() -> Resource:
    """The resource of railtracks' own providers: ``OTEL_*`` plus a default service name."""
    configured = CONFIG.telemetry.service_name
    resource = Resource.create({SERVICE_NAME: configured} if configured else {})
    service = str(resource.attributes.get(SERVICE_NAME, ""))
    if not service or service.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


class Telemetry:
    """The tracer, the provider it comes from, and railtracks' processors on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fanout = FanOutSpanProcessor()
        self.collector = SessionSpanCollector()
        self.fanout.add(self.collector)
        self._tracer: trace.Tracer | None = None
        self._pipeline = Pipeline()
        self._exit_registered = False
        CONFIG.on_change(self.invalidate)
        weak_child = weakref.WeakMethod(self._after_fork_in_child)
        os.register_at_fork(after_in_child=lambda: (method := weak_child()) and method())

    def tracer(self) -> trace.Tracer:
        _signals.install()
        tracer = self._tracer
        if tracer is None:
            with self._lock:
                if self._tracer is None:
                    self._tracer = self._build()
                tracer = self._tracer
        return tracer

    def _build(self) -> trace.Tracer:
        global_provider = trace.get_tracer_provider()
        if isinstance(global_provider, SdkTracerProvider):
            provider, owned = global_provider, False
        else:
            provider = SdkTracerProvider(
                resource=service_resource(),
                sampler=RecordLocallySampler(_get_from_env_or_default()),
                shutdown_on_exit=False,
            )
            # OTEL_SDK_DISABLED turns export off (see _export); railtracks' own
            # spans still drive the console and the saved state.
            provider._disabled = False
            owned = True
        pipeline = build_pipeline(owned, provider.resource)
        if self.fanout not in _installed_processors(provider):
            provider.add_span_processor(self.fanout)
        self._pipeline = pipeline
        for processor in pipeline.processors:
            self.fanout.add(processor)
        if not self._exit_registered:
            atexit.register(self.shutdown)
            _register_multiprocessing_exit(self)
            self._exit_registered = True
        return provider.get_tracer(INSTRUMENTATION_SCOPE, __version__)

    def invalidate(self) -> None:
        """Drop the pipeline after a configuration change; the next session rebuilds it."""
        with self._lock:
            # a configuration change does not wait for a slow collector: what the
            # old pipeline cannot send within the stall time waits in the outbox
            self._retire_pipeline(EXIT_STALL_SECONDS)
            self._tracer = None

    def _retire_pipeline(self, cap: float | None = None) -> None:
        pipeline, self._pipeline = self._pipeline, Pipeline()
        for processor in pipeline.processors:
            self.fanout.remove(processor)
        if cap is None:
            cap = EXIT_STALL_SECONDS if _signals.terminating() else exit_cap_seconds()
        pipeline.close(EXIT_STALL_SECONDS, cap)

    def flush(self, timeout_seconds: float = 30.0) -> bool:
        """Hand every finished span to the exporters and wait, at most ``timeout_seconds``.

        Never raises; False when something is still pending (spans not yet
        exported or spooled, or a metrics export that did not finish).
        """
        try:
            timeout_seconds = max(float(timeout_seconds), 0.0)
        except (TypeError, ValueError):
            timeout_seconds = 0.0
        deadline = time.monotonic() + timeout_seconds
        flushed = True
        for processor in self.fanout.processors:
            remaining_ms = int(max(deadline - time.monotonic(), 0) * 1000)
            try:
                flushed = bool(processor.force_flush(remaining_ms)) and flushed
            except Exception:  # a broken processor is a pending flush, not an error
                flushed = False
        metrics_flushed = self._pipeline.flush_metrics(max(deadline - time.monotonic(), 0))
        return flushed and metrics_flushed

    def shutdown(self) -> None:
        """At exit: export what is left while the collector accepts it, spool the rest."""
        with self._lock:
            self._retire_pipeline()

    def _after_fork_in_child(self) -> None:
        # The export threads did not survive the fork: restart them, without the
        # parent's queued spans (the parent sends those).
        self._lock = threading.Lock()
        _signals.after_fork_in_child()
        self._pipeline.after_fork_in_child()


def _register_multiprocessing_exit(telemetry: Telemetry) -> None:
    # A multiprocessing child ends with os._exit, which skips atexit: its own
    # finalizers are the only hook. Registered after each fork (the child's
    # registry is cleared at start) and now if this is already such a child.
    import multiprocessing  # noqa: PLC0415  # already imported by most programs that fork
    from multiprocessing import util  # noqa: PLC0415

    def in_child(_: object) -> None:
        util.Finalize(telemetry, telemetry.shutdown, exitpriority=0)

    util.register_after_fork(telemetry, in_child)
    if multiprocessing.parent_process() is not None:
        in_child(telemetry)


def _installed_processors(provider: SdkTracerProvider) -> tuple[SpanProcessor, ...]:
    # The SDK keeps processors on a private multi-processor; reading it is the
    # only way to stay idempotent when railtracks rebuilds its pipeline.
    multi = getattr(provider, "_active_span_processor", None)
    return tuple(getattr(multi, "_span_processors", ()))


TELEMETRY = Telemetry()
