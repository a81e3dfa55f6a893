"""railtracks' own spans (sessions and node calls), started without the SDK tracer's generic work.

``Tracer.start_span`` runs every span through machinery railtracks does not
need for its own: a ``SamplingResult``, a validation pass over every attribute
(railtracks writes only values its encoder already made valid), a lock-guarded
``BoundedList`` for events and another for links that most spans never use,
and at the end a ``ReadableSpan`` copy of the span for the processors. For a
node call that is most of the cost of the span.

``start_span`` makes the same span (same ids, flags, trace state, parent,
start and end times, resource, scope, limits, processors and their order) as a
``RailtracksSpan``: a subclass of the SDK's own ``Span``, so every processor,
exporter and ``isinstance`` check sees an SDK span. It keeps railtracks' trusted
attributes in a plain dict and creates the SDK's bounded containers only when
something else writes to the span (a node setting an attribute on its own span,
an event, a link): those writes are validated and bounded exactly as the SDK
does. It hands the processors the span itself when it ends, not a copy: an
ended span refuses every change, as the SDK's does.

It applies only where the result is the SDK's, to the letter: railtracks' own
``RecordLocallySampler`` around the default sampler, no attribute length limit
(the SDK would cut values), an enabled tracer, the SDK's internal span metrics
off. Anything else (an application's provider and sampler,
``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT``...) goes through
``tracer.start_span``. ``tests/test_fastspan.py`` compares the two ways field
by field.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, Span, SpanLimits, Tracer
from opentelemetry.sdk.trace.sampling import DEFAULT_ON
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from .sampling import RecordLocallySampler

_logger = logging.getLogger("opentelemetry.sdk.trace")  # the SDK's own warnings, word for word
_UNSET: Final = Status(StatusCode.UNSET)
_INTERNAL: Final = SpanKind.INTERNAL
_get_current_span = trace.get_current_span


def _set_items(bounded: BoundedAttributes, attributes: Mapping[str, Any]) -> None:
    """What the SDK's ``Span.set_attributes`` does with them, in this SDK version."""
    set_items = getattr(bounded, "_set_items", None)  # recent SDKs: one pass, invalid ones counted
    if set_items is not None:
        set_items(attributes)
        return
    for key, value in attributes.items():
        bounded[key] = value


class RailtracksSpan(Span):
    """An SDK ``Span`` whose railtracks-written attributes skip revalidation (see the module)."""

    # What every railtracks span starts with; an instance shadows what changes.
    _kind = _INTERNAL
    _trace_config = None
    _record_exception = True
    _set_status_on_exception = True
    _record_end_metrics = None
    _end_time: int | None = None
    _events: Any = ()
    _links: Any = ()
    _status = _UNSET
    # the processor's ``_on_ending``, in SDK versions that have it (set per tracer)
    _ending_hook: Callable[[Span], None] | None = None

    def set_trusted(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Attributes railtracks made valid itself (its encoder's values, its own keys)."""
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Setting attribute on ended span.")
                return
            current = self._attributes
            limit = self._limits.max_span_attributes
            if type(current) is dict and (limit is None or len(current) + len(attributes) <= limit):
                current.update(attributes)
                return
            _set_items(self._bounded(), attributes)  # past the count limit: the SDK's rules

    def _bounded(self) -> BoundedAttributes:
        """The SDK's attribute container, made from the trusted dict at the first other write."""
        current = self._attributes
        if isinstance(current, BoundedAttributes):
            return current
        bounded = BoundedAttributes(
            self._limits.max_span_attributes,
            current,
            immutable=False,
            max_value_len=self._limits.max_span_attribute_length,
        )
        self._attributes = bounded
        return bounded

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Setting attribute on ended span.")
                return
            _set_items(self._bounded(), attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Setting attribute on ended span.")
                return
            self._bounded()[key] = value

    def _add_event(self, event: Event) -> None:
        self._append("_events", event, self._limits.max_events, "_add_event")

    def _add_link(self, link: Link) -> None:
        self._append("_links", link, self._limits.max_links, "_add_link")

    def _append(self, field: str, item: object, limit: int | None, caller: str) -> None:
        """Add an event or a link, making the SDK's bounded list at the first one."""
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Tried calling %s on an ended span.", caller)
                return
            items = getattr(self, field)
            if type(items) is tuple:
                items = BoundedList(limit)
                setattr(self, field, items)
            items.append(item)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
            if isinstance(self._attributes, BoundedAttributes):
                self._attributes._immutable = True
        on_ending = self._ending_hook
        if on_ending is not None:
            on_ending(self)
        self._span_processor.on_end(self)


class _Plan:
    """What every span of one tracer shares, checked once: None from ``_plan`` when ineligible."""

    __slots__ = (
        "attribute_limit",
        "child_flags",
        "fields",
        "generate_span_id",
        "generate_trace_id",
        "is_enabled",
        "processor",
        "root_flags",
    )

    def __init__(self, tracer: Tracer) -> None:
        ids = tracer.id_generator
        self.processor = tracer.span_processor
        self.generate_span_id: Callable[[], int] = ids.generate_span_id
        self.generate_trace_id: Callable[[], int] = ids.generate_trace_id
        self.is_enabled: Callable[[], bool] | None = getattr(tracer, "_is_enabled", None)
        # SDKs that know the W3C "random trace id" flag set it on a root span when
        # their id generator is random, and carry the parent's to a child.
        random_flag = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
        knows_random = random_flag and hasattr(ids, "is_trace_id_random")
        root_random = random_flag if knows_random and ids.is_trace_id_random() else 0
        self.root_flags = TraceFlags(TraceFlags.SAMPLED | root_random)
        # by the parent's flags: sampled (1) and random (2) carried, nothing else
        self.child_flags = tuple(
            TraceFlags((bits & 1) | (bits & random_flag if knows_random else 0))
            for bits in range(4)
        )
        self.fields: dict[str, Any] = {
            "_resource": tracer.resource,
            "_instrumentation_info": tracer.instrumentation_info,
            "_instrumentation_scope": tracer._instrumentation_scope,
            "_sampler": tracer.sampler,
            "_span_processor": tracer.span_processor,
            "_limits": tracer._span_limits,
            "_ending_hook": getattr(tracer.span_processor, "_on_ending", None),
        }
        self.attribute_limit: int | None = tracer._span_limits.max_span_attributes


def _eligible(tracer: object) -> bool:
    if type(tracer) is not Tracer:
        return False
    sampler = tracer.sampler
    if type(sampler) is not RecordLocallySampler or sampler.inner is not DEFAULT_ON:
        return False
    limits: SpanLimits = tracer._span_limits  # an AttributeError here: see _plan
    if limits.max_span_attribute_length is not None:
        return False
    # the SDK's own span metrics (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED) count in start_span
    metrics = getattr(tracer, "_tracer_metrics", None)
    return metrics is None or type(metrics).__name__ == "NoOpTracerMetrics"


_last: tuple[object, _Plan | None] = (None, None)


def _plan(tracer: object) -> _Plan | None:
    global _last  # noqa: PLW0603  # one entry: a process has one railtracks tracer at a time
    last = _last
    if last[0] is tracer:
        return last[1]
    try:
        plan = _Plan(tracer) if _eligible(tracer) else None  # type: ignore[arg-type]  # an SDK Tracer
    except Exception:  # an SDK whose tracer is built otherwise: its own start_span, always
        plan = None
    _last = (tracer, plan)
    return plan


def start_span(
    tracer: trace.Tracer, name: str, attributes: dict[str, AttributeValue]
) -> trace.Span:
    """A started INTERNAL span under the current one, as ``tracer.start_span`` would make it.

    ``attributes`` must be railtracks' own, valid as they are; the span takes
    ownership of the dict.
    """
    plan = _plan(tracer)
    if plan is None:
        return tracer.start_span(name, kind=_INTERNAL, attributes=attributes)
    if plan.is_enabled is not None and not plan.is_enabled():
        return tracer.start_span(name, kind=_INTERNAL, attributes=attributes)
    parent = _get_current_span().get_span_context()
    if parent.is_valid:
        # ParentBased(ALWAYS_ON), where railtracks records what it does not sample
        flags = plan.child_flags[parent.trace_flags & 3]
        context = SpanContext(
            parent.trace_id, plan.generate_span_id(), False, flags, parent.trace_state
        )
        parent_context: SpanContext | None = parent
    else:
        trace_id = plan.generate_trace_id()
        context = SpanContext(trace_id, plan.generate_span_id(), False, plan.root_flags)
        parent_context = None
    span: RailtracksSpan = object.__new__(RailtracksSpan)
    span.__dict__.update(plan.fields)
    span._name = name
    span._context = context
    span._parent = parent_context
    span._lock = threading.Lock()
    limit = plan.attribute_limit
    span._attributes = (
        attributes
        if limit is None or len(attributes) <= limit
        else BoundedAttributes(limit, attributes, immutable=False)
    )
    span._start_time = time_ns()
    plan.processor.on_start(span, parent_context=None)
    return span


def set_trusted(span: trace.Span, attributes: Mapping[str, AttributeValue]) -> None:
    """Set railtracks-made attributes: without revalidation on its own spans."""
    if type(span) is RailtracksSpan:
        span.set_trusted(attributes)
    else:
        span.set_attributes(attributes)
