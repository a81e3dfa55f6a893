"""The state of a session an application's sampler dropped (SPEC 6): no span was recorded.

railtracks saw none of the session's spans (they were never recording), so
its state is built from what the session itself knows rather than its spans.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .state import RAILTRACKS_SCOPE, SCHEMA_VERSION, iso_time, json_or_raw


def unsampled_state(
    *,
    identifier: str,
    name: str | None,
    span_name: str,
    trace_id: str,
    span_id: str,
    status: str,
    times: tuple[int, int],
    timeout: float | None,
    context: Mapping[str, Any],
    final_context: Mapping[str, Any],
    error: tuple[str, str] | None,
    answer_json: str | None,
) -> dict[str, Any]:
    """The state of a session an application's sampler dropped: no span was recorded.

    railtracks saw none of its spans (they were never recording), so the state
    holds what the session itself knows, says ``"sampled": false`` and has no
    nodes, rather than being empty.
    """
    start, end = times
    session: dict[str, Any] = {
        "identifier": identifier,
        "name": name,
        "span_name": span_name,
        "trace_id": trace_id,
        "timeout": timeout,
        "started_at": iso_time(start),
        "ended_at": iso_time(end),
        "span_id": span_id,
        "parent_span_id": None,
        "status": status,
        "status_code": "UNSET" if error is None else "ERROR",
        "kind": "INTERNAL",
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "duration_seconds": (end - start) / 1e9,
        "context": dict(context),
        "error": None if error is None else {"type": error[0], "message": error[1]},
        "context_changes": [],
        "events": [],
        "attributes": {},
        "resource": {},
        "scope": {"name": RAILTRACKS_SCOPE, "version": None},
        "sampled": False,
        "final_context": dict(final_context),
    }
    answer = json_or_raw(answer_json)[0] if answer_json is not None else None
    return {
        "schema_version": SCHEMA_VERSION,
        "counts": {"nodes": 0, "failed": 0},
        "session": session,
        "answer": answer,
        "nodes": [],
    }
