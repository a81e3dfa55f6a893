"""railtracks' own OTLP route (sender and outbox), the queue's byte estimate, the warning text."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan

from ..._recording import attributes as attr
from .outbox import Outbox
from .send import OtlpSender
from .sizing import Limit, max_request_bytes_from_env

_SPAN_OVERHEAD: Final = 1024  # bytes a ReadableSpan costs in memory beyond its values


def estimate_bytes(span: ReadableSpan, attributes: Mapping[str, object] | None = None) -> int:
    """A cheap estimate of a queued span's memory: a fixed cost plus its large values.

    Iterating every attribute costs more than the rest of ``on_end`` (the SDK's
    attribute mapping takes a lock per key), so only the values that can be
    large are measured: node input and output, and the
    exception events' messages and stack traces.
    """
    if attributes is None:
        attributes = span.attributes or {}
    size = _SPAN_OVERHEAD + 64 * len(attributes)
    for key in _LARGE_VALUES:
        value = attributes.get(key)
        if isinstance(value, str):
            size += len(value)
    for event in span.events:
        size += 256
        for value in (event.attributes or {}).values():
            if isinstance(value, str):
                size += len(value)
    return size


_LARGE_VALUES: Final = (attr.NODE_INPUT, attr.NODE_OUTPUT)


class OtlpRoute:
    """Where railtracks' own OTLP export goes: a sender, its request size limit
    (``RAILTRACKS_OTLP_MAX_REQUEST_BYTES``, validated here) and that endpoint's outbox."""

    def __init__(
        self, endpoint: str, protocol: str, headers: dict[str, str] | None, outbox: Outbox
    ) -> None:
        self.endpoint, self.protocol, self.headers = endpoint, protocol, headers
        self.limit = Limit(max_request_bytes_from_env())
        self.outbox = outbox
        outbox.file_bound = max(outbox.file_bound, self.limit.max_bytes)
        self.sender = OtlpSender(endpoint, protocol, headers)
        self._abandoned: list[OtlpSender] = []

    def renew_sender(self) -> None:
        # after a fork: the parent's connection or gRPC channel is not usable here,
        # and closing it from the child could disturb the parent's
        self._abandoned.append(self.sender)
        self.sender = OtlpSender(self.endpoint, self.protocol, self.headers)
        self.outbox.after_fork_in_child()


def problem_message(
    label: str,
    reason: str | None,
    counts: tuple[int, int, int],
    outbox: Path | None,
    status: str,
    *,
    set_aside: int = 0,
    in_doubt: int = 0,
) -> str:
    """The one warning of an export problem, with its counts."""
    where = f" to the outbox {outbox}" if outbox is not None else ""
    why = f" ({reason})" if reason else ""
    aside = ""
    if set_aside:
        kept = f" in {outbox / 'quarantine'}" if outbox is not None else ""
        aside = (
            f"{set_aside} set aside{kept} (too large for any request or refused for good; "
            "`railtracks outbox` lists them), "
        )
    doubt = ""
    if in_doubt:
        doubt = (
            f" ({in_doubt} of them in doubt: a request timed out, so the collector may have "
            "them; sent again only by `railtracks outbox send --in-doubt`)"
        )
    message = (
        f"{label} did not take every span{why}: {counts[0]} exported, "
        f"{counts[1]} spooled{where}{doubt}, {aside}{counts[2]} dropped {status}"
    )
    if outbox is not None and counts[1]:
        message += "; the next process exporting there or `railtracks outbox send` delivers them"
    return message
