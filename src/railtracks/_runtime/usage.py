"""The usage totals a node's or session's span gets as it ends (SPEC 15)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from .._config import CONFIG
from .._logs.log import warn_once
from .._recording.fastspan import set_trusted
from .._recording.usage_rollup import ROLLUP

PENDING = ROLLUP.pending  # the node-call path looks here first: empty means nothing to do


def close_usage(span: trace.Span) -> None:
    """Set the usage totals on a node's span about to end (only called when ``PENDING``)."""
    attributes = usage_attributes(span)
    if attributes:
        set_trusted(span, attributes)


def usage_attributes(span: trace.Span) -> dict[str, AttributeValue]:
    """The ``railtracks.usage.*`` attributes of a span about to end ({} without usage)."""
    if not PENDING or not span.is_recording():
        return {}
    try:
        return ROLLUP.close(span, CONFIG.telemetry.prices)  # type: ignore[arg-type]  # an SDK span
    except Exception as exc:  # telemetry never changes the node's outcome
        warn_once("usage-close", f"summing model usage failed: {exc!r}")
        return {}
