"""What the host application installed as its tracer provider, read without trusting it.

The global provider may be the SDK's ``TracerProvider``, a proxy or wrapper of
one (Logfire's ``ProxyTracerProvider`` wraps an SDK provider it can swap at
each ``logfire.configure``), or an object that is not the SDK's at all (a
vendor's own, a bare API ``TracerProvider`` subclass). railtracks makes no
assumption about such an object: it is compared by identity only (never
hashed, never ``==``), every attribute read and call on it is guarded, and a
wrapper is unwrapped through known attribute names, then through its instance
fields, to the SDK provider inside.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

from .._logs import log as _log

# Where wrappers keep the provider they wrap: Logfire's ``provider``, wrapt's
# ``__wrapped__``, the usual private spellings.
_WRAPPED_ATTRIBUTES = (
    "provider",
    "_provider",
    "tracer_provider",
    "_tracer_provider",
    "_delegate",
    "_wrapped",
    "__wrapped__",
)
_MAX_DEPTH = 4


def _read(candidate: object, name: str) -> object:
    try:
        return getattr(candidate, name, None)
    except Exception:  # a property of a foreign object may raise anything
        return None


def _fields(candidate: object) -> list[object]:
    """The values held directly by an object (its ``__dict__``), guarded."""
    try:
        values = vars(candidate)
    except TypeError:  # no __dict__: slots or a builtin
        return []
    try:
        return list(values.values())
    except Exception:  # a mapping-like __dict__ of a foreign object
        return []


def unwrap_sdk(provider: object) -> SdkTracerProvider | None:
    """The SDK ``TracerProvider`` that ``provider`` is or wraps, or None."""
    seen: list[object] = []
    candidate = provider
    for _ in range(_MAX_DEPTH):
        if isinstance(candidate, SdkTracerProvider):
            return candidate
        if any(candidate is earlier for earlier in seen):
            return None
        seen.append(candidate)
        inner = None
        for name in _WRAPPED_ATTRIBUTES:
            value = _read(candidate, name)
            if value is not None and value is not candidate and _is_provider(value):
                inner = value
                break
        if inner is None:
            inner = next((v for v in _fields(candidate) if isinstance(v, SdkTracerProvider)), None)
        if inner is None:
            return None
        candidate = inner
    return None


def _is_provider(value: object) -> bool:
    return isinstance(value, trace.TracerProvider) or callable(_read(value, "get_tracer"))


def add_processor(provider: object, processor: SpanProcessor) -> bool:
    """``provider.add_span_processor(processor)`` if it has one; False if it has not or failed."""
    add: Callable[[SpanProcessor], object] | None = _read(provider, "add_span_processor")  # type: ignore[assignment]  # checked below
    if not callable(add):
        return False
    try:
        add(processor)
    except Exception as exc:  # the host's object never breaks a run
        _log.warn_once(
            "host-provider-add",
            f"the application's tracer provider {type(provider).__name__} refused a span "
            f"processor ({exc!r}): railtracks records its sessions on its own provider",
        )
        return False
    return True


def sdk_tracer(provider: object, name: str, version: str) -> trace.Tracer | None:
    """``provider.get_tracer(...)`` when it yields the SDK's own tracer (SDK spans), else None."""
    get_tracer = _read(provider, "get_tracer")
    if not callable(get_tracer):
        return None
    try:
        tracer = get_tracer(name, version)
    except Exception:  # a foreign provider's get_tracer may raise: railtracks uses its own
        return None
    from opentelemetry.sdk.trace import Tracer  # noqa: PLC0415  # the SDK is imported already

    return tracer if isinstance(tracer, Tracer) else None


def installed_processors(provider: SdkTracerProvider) -> tuple[SpanProcessor, ...]:
    """The processors on an SDK provider, read from its private multi-processor.

    Reading them is the only way to stay idempotent when railtracks rebuilds
    its pipeline (the SDK has no API to list or remove a processor).
    """
    multi = getattr(provider, "_active_span_processor", None)
    return tuple(getattr(multi, "_span_processors", ()))


def has_processor(provider: SdkTracerProvider, processor: SpanProcessor) -> bool:
    return any(p is processor for p in installed_processors(provider))


@dataclasses.dataclass
class HostView:
    """The global provider as railtracks found it at its last look."""

    installed: object  # the global provider object itself (compared by identity)
    sdk: SdkTracerProvider | None  # the SDK provider it is or wraps


def look() -> HostView:
    installed = trace.get_tracer_provider()
    return HostView(installed, unwrap_sdk(installed))


class ForwardToHost(SpanProcessor):
    """On railtracks' own providers: hands spans on to an application's SDK provider.

    Instrumentations that took their tracer while railtracks' provider was the
    global one keep it; their spans still reach the application's processors.
    """

    def __init__(self, fanout: SpanProcessor) -> None:
        self._fanout = fanout
        self.host: SdkTracerProvider | None = None

    def _targets(self) -> tuple[SpanProcessor, ...]:
        host = self.host
        if host is None:
            return ()
        return tuple(p for p in installed_processors(host) if p is not self._fanout)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._targets():
            try:
                processor.on_start(span, parent_context)
            except Exception as exc:  # an application's processor never breaks a run
                _log.warn_once(f"forward:{type(processor).__name__}", f"span processor: {exc!r}")

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._targets():
            try:
                processor.on_end(span)
            except Exception as exc:  # an application's processor never breaks a run
                _log.warn_once(f"forward:{type(processor).__name__}", f"span processor: {exc!r}")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
