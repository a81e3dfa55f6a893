"""Reading ``OTEL_*`` values as the SDK configuration specification says.

An empty value is the same as unset; a boolean is true only for the
case-insensitive string ``true`` (any other value but ``false`` warns and counts
as false); an enum or list entry railtracks does not know warns and is
ignored; a number that does not parse warns and is treated as unset. Every
warning is logged once and names the variable. The sampler and span limits of
railtracks' own provider are read here too, validated: the SDK's own readers
raise on a bad value.
"""

from __future__ import annotations

import os
from typing import Final

from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

from .._logs.log import warn_once

SAMPLERS: Final = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_INT_MAX: Final = 2**31 - 1


def env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None  # the spec: an empty value is the same as unset


def invalid(name: str, value: str, expected: str, fallback: str) -> None:
    warn_once(
        f"env:{name}={value}",
        f"{name}={value!r} is not valid ({expected}); using {fallback}",
    )


def env_flag(name: str) -> bool:
    """A spec boolean: only ``true`` (any case) is true; other values but ``false`` warn."""
    value = env(name)
    if value is None:
        return False
    lowered = value.lower()
    if lowered not in ("true", "false"):
        invalid(name, value, "expected true or false", "false")
    return lowered == "true"


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """A spec integer (0 .. 2**31-1 here, at least ``minimum``); invalid values warn."""
    value = env(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if not minimum <= number <= _INT_MAX:
        invalid(name, value, f"expected an integer >= {minimum}", f"the default {default}")
        return default
    return number


def env_list(name: str, known: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated enum list; unknown entries warn and are ignored."""
    value = env(name)
    if value is None:
        return default
    entries: list[str] = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry not in known:
            invalid(name, value, f"unknown entry {entry!r}; known: {', '.join(known)}", "the rest")
            continue
        entries.append(entry)
    return tuple(entries)


def sampler_from_env() -> Sampler:
    """``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``; bad values warn, default applies."""
    raw_name = env("OTEL_TRACES_SAMPLER") or "parentbased_always_on"
    name = raw_name.lower()
    if name not in SAMPLERS:
        name = "parentbased_always_on"
        invalid("OTEL_TRACES_SAMPLER", raw_name, f"known: {', '.join(SAMPLERS)}", name)
    if name.endswith("traceidratio"):
        rate = 1.0
        raw = env("OTEL_TRACES_SAMPLER_ARG")
        if raw is not None:
            try:
                rate = float(raw)
            except ValueError:
                rate = -1.0
            if not 0.0 <= rate <= 1.0:
                invalid("OTEL_TRACES_SAMPLER_ARG", raw, "expected a number in [0, 1]", "1.0")
                rate = 1.0
        return (
            ParentBasedTraceIdRatio(rate)
            if name.startswith("parentbased")
            else (TraceIdRatioBased(rate))
        )
    fixed: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": DEFAULT_ON,
        "parentbased_always_off": DEFAULT_OFF,
    }
    return fixed[name]


def span_limits_from_env() -> SpanLimits:
    """The span limits of the ``OTEL_*_LIMIT`` variables, validated (the SDK raises on bad ones)."""
    general_count = env_int("OTEL_ATTRIBUTE_COUNT_LIMIT", 128)
    general_length = env_int("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", -1, minimum=0)
    span_length = env_int("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", general_length, minimum=0)
    return SpanLimits(
        max_attributes=env_int("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", general_count),
        max_events=env_int("OTEL_SPAN_EVENT_COUNT_LIMIT", 128),
        max_links=env_int("OTEL_SPAN_LINK_COUNT_LIMIT", 128),
        max_span_attributes=env_int("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", general_count),
        max_event_attributes=env_int("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", general_count),
        max_link_attributes=env_int("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", general_count),
        max_attribute_length=general_length if general_length >= 0 else SpanLimits.UNSET,
        max_span_attribute_length=span_length if span_length >= 0 else SpanLimits.UNSET,
    )
