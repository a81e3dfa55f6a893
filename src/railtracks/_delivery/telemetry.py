"""Who owns the tracer provider, and which processors railtracks feeds.

At first use railtracks looks at the global tracer provider. If the host
application installed an SDK ``TracerProvider``, or a proxy or wrapper of one
(Logfire's), railtracks adds its one fan-out processor to that SDK provider,
takes its tracer from it and never replaces it. A host provider that is not
the SDK's at all is used when its tracers are the SDK's and it takes the
fan-out; otherwise railtracks records on its own provider and gives the host's
provider, if it takes processors, the span collector alone (``_foreign_tracer``).
With no host provider railtracks builds its own, whose sampler still *records*
every span it would drop, so the console and the saved state stay complete
while the sampler decides what is exported, and makes it the global one
*provisionally*: other instrumentation (HTTP clients, manual
``get_tracer(...)`` spans) inside nodes is recorded with zero configuration,
yet an application's own ``set_tracer_provider`` made later still succeeds.
railtracks notices such a provider (or a wrapper that moved onto another SDK
provider) at the next session and moves onto it.
``RAILTRACKS_GLOBAL_PROVIDER=0`` keeps railtracks' provider private instead.
The host's objects are compared by identity only (``host_provider``).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

from .._config import CONFIG
from .._logs import log as _log
from .._recording.collector import SessionSpanCollector
from .._recording.sampling import RecordLocallySampler
from .._recording.usage_rollup import ROLLUP as USAGE_ROLLUP
from .._version import __version__
from ..errors import ConfigurationError
from . import signals as _signals
from .export import sdk_disabled
from .host_provider import (
    ForwardToHost,
    HostView,
    add_processor,
    has_processor,
    look,
    sdk_tracer,
    unwrap_sdk,
)
from .otel_env import sampler_from_env, span_limits_from_env
from .pipeline import Pipeline, build_pipeline, exit_cap_seconds
from .processors import FanOutSpanProcessor

DEFAULT_SERVICE_NAME = "railtracks"
INSTRUMENTATION_SCOPE = "railtracks"
# At exit, a collector that accepts nothing for this long is given up on, and
# no collector, however slow, holds the process longer than the cap (SPEC 5);
# what is left then goes to the outbox. After SIGTERM the cap is the stall time.
EXIT_STALL_SECONDS = 1.5


def service_resource() -> Resource:
    """The resource of railtracks' own providers: ``OTEL_*`` plus a default service name."""
    configured = CONFIG.telemetry.service_name
    resource = Resource.create({SERVICE_NAME: configured} if configured else {})
    service = str(resource.attributes.get(SERVICE_NAME, ""))
    if not service or service.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


ENV_GLOBAL_PROVIDER = "RAILTRACKS_GLOBAL_PROVIDER"


def _make_global_wanted() -> bool:
    value = os.environ.get(ENV_GLOBAL_PROVIDER, "").strip()
    if value in ("", "1"):
        return True
    if value == "0":
        return False
    raise ConfigurationError(f"{ENV_GLOBAL_PROVIDER}: expected 0 or 1, got {value!r}")


def _install_provisionally(provider: SdkTracerProvider) -> None:
    """Make ``provider`` the global one, leaving the API's set-once guard open.

    ``trace.set_tracer_provider`` may be called once per process; railtracks
    does not use up that call, so an application that installs its own
    provider later still succeeds (and railtracks follows it).
    """
    trace._TRACER_PROVIDER = provider


class Telemetry:
    """The tracer, the provider it comes from, and railtracks' processors on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fanout = FanOutSpanProcessor()
        self.collector = SessionSpanCollector()
        self.fanout.add(self.collector)
        self.fanout.add(USAGE_ROLLUP)  # model calls' tokens summed up the tree (SPEC 15)
        # on a host provider whose tracers railtracks cannot use: spans made there
        # inside nodes reach the sessions' states, and nothing else of railtracks
        self._collect_only = FanOutSpanProcessor()
        self._collect_only.add(self.collector)
        self._tracer: trace.Tracer | None = None
        # the global provider as last seen, and railtracks' own providers (which it
        # may have made global); spans from any of them reach the same fan-out
        self._seen: HostView | None = None
        self._owned: weakref.WeakSet[SdkTracerProvider] = weakref.WeakSet()
        self._fed: list[tuple[object, SpanProcessor]] = []  # non-SDK hosts, by identity
        self._forward = ForwardToHost(self.fanout)
        self._pipeline = Pipeline()
        self._exit_registered = False
        CONFIG.on_change(self.invalidate)
        weak_child = weakref.WeakMethod(self._after_fork_in_child)
        os.register_at_fork(after_in_child=lambda: (method := weak_child()) and method())

    def tracer(self) -> trace.Tracer:
        _signals.install()
        tracer = self._tracer
        if tracer is not None and self._superseded():
            self.invalidate()  # an application installed its provider since: move onto it
            tracer = None
        if tracer is None:
            with self._lock:
                if self._tracer is None:
                    self._tracer = self._build()
                tracer = self._tracer
        return tracer

    def _is_owned(self, provider: object) -> bool:
        # by identity: a host's object may be unhashable or compare oddly
        return any(provider is own for own in list(self._owned))

    def _superseded(self) -> bool:
        """The global provider changed since railtracks looked, or the wrapper it was moved on."""
        seen = self._seen
        if seen is None:
            return False
        current = trace.get_tracer_provider()
        if current is not seen.installed:
            return True
        if seen.sdk is current or current is trace._PROXY_TRACER_PROVIDER:
            return False
        # a wrapper may move onto another SDK provider (Logfire's, at each logfire.configure)
        return unwrap_sdk(current) is not seen.sdk

    def _build(self) -> trace.Tracer:
        seen = look()
        host = seen.sdk
        if host is not None and not self._is_owned(host):
            # an application's SDK provider, installed as it is or wrapped (Logfire)
            self._follow(host)
            self._note_host_provider()
            if not has_processor(host, self.fanout):
                host.add_span_processor(self.fanout)
            tracer = host.get_tracer(INSTRUMENTATION_SCOPE, __version__)
            owned, resource = False, host.resource
        else:
            foreign = self._foreign_tracer(seen.installed)
            owned = foreign is None
            tracer = foreign or self._own_provider(seen).get_tracer(
                INSTRUMENTATION_SCOPE, __version__
            )
            resource = getattr(tracer, "resource", None) or service_resource()
        self._seen = seen
        pipeline = build_pipeline(owned, resource)
        self._pipeline = pipeline
        for processor in pipeline.processors:
            self.fanout.add(processor)
        if not self._exit_registered:
            atexit.register(self.shutdown)
            _register_multiprocessing_exit(self)
            self._exit_registered = True
        return tracer

    def _own_provider(self, seen: HostView) -> SdkTracerProvider:
        """A provider of railtracks' own, made global when nobody else's is."""
        provider = SdkTracerProvider(
            resource=service_resource(),
            sampler=RecordLocallySampler(sampler_from_env()),
            span_limits=span_limits_from_env(),
            shutdown_on_exit=False,
        )
        # OTEL_SDK_DISABLED turns export off (see _delivery.export); railtracks' own
        # spans still drive the console and the saved state.
        provider._disabled = False
        self._owned.add(provider)
        provider.add_span_processor(self.fanout)
        installed = seen.installed
        nobody_elses = installed is trace._PROXY_TRACER_PROVIDER or self._is_owned(installed)
        if nobody_elses and _make_global_wanted() and not sdk_disabled():
            _install_provisionally(provider)
            seen.installed = seen.sdk = provider
        return provider

    def _foreign_tracer(self, installed: object) -> trace.Tracer | None:
        """railtracks' tracer from a host provider that is not (or hides) the SDK's, if usable.

        Usable when its tracers are the SDK's and take railtracks' fan-out: its
        spans then join the host's pipeline. Otherwise railtracks records on its
        own provider, and a host provider that takes processors gets the
        collector alone, so the spans its tracers make inside nodes still
        belong to the sessions.
        """
        if installed is trace._PROXY_TRACER_PROVIDER or self._is_owned(installed):
            return None
        tracer = sdk_tracer(installed, INSTRUMENTATION_SCOPE, __version__)
        if tracer is not None and self._feed(installed, self.fanout):
            processors = getattr(tracer.span_processor, "_span_processors", ())  # type: ignore[attr-defined]  # an SDK Tracer
            if any(p is self.fanout for p in processors):
                return tracer
        self._feed(installed, self._collect_only)
        return None

    def _feed(self, host: object, processor: SpanProcessor) -> bool:
        """``processor`` on a non-SDK host provider, once; False when it takes none."""
        if any(fed is host and p is processor for fed, p in self._fed):
            return True
        if not add_processor(host, processor):
            return False
        self._fed.append((host, processor))
        return True

    def _follow(self, host: SdkTracerProvider) -> None:
        """Hand on the spans of railtracks' earlier providers to ``host`` (added only now:
        a processor costs on every span)."""
        self._forward.host = host
        for own in list(self._owned):
            if not has_processor(own, self._forward):
                own.add_span_processor(self._forward)

    @staticmethod
    def _note_host_provider() -> None:
        if any(
            os.environ.get(name, "").strip()
            for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        ):
            _log.LOGS.warn_once(
                "host-provider-endpoint",
                "the application installed its own TracerProvider: its exporters ship "
                "railtracks' spans, and railtracks leaves OTEL_EXPORTER_OTLP_ENDPOINT to them "
                "(rt.configure(endpoint=...) exports from railtracks as well)",
                level="INFO",
            )

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


TELEMETRY = Telemetry()
