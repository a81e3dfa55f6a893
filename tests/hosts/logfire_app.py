"""An application that configures Logfire, with railtracks sessions inside it.

Run by tests/test_host_logfire.py as ``python logfire_app.py WHEN`` (WHEN:
``before`` the first session, ``after`` it, or ``twice``: before, then again
after the first session, which moves Logfire onto a new SDK provider). Prints
one JSON report of the last session: its spans as Logfire's exporter got
them, and its saved state.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import logfire
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import railtracks as rt

WHEN = sys.argv[1]
exporter = InMemorySpanExporter()


def configure() -> None:
    # a new exporter each time: Logfire shuts the previous provider (and its exporters) down
    global exporter  # noqa: PLW0603
    exporter = InMemorySpanExporter()
    logfire.configure(
        send_to_logfire=False,
        console=False,
        additional_span_processors=[SimpleSpanProcessor(exporter)],
    )


@rt.function_node
async def leaf(x: int) -> int:
    with logfire.span("leaf work {x}", x=x):
        return x * 2


@rt.function_node
async def root(x: int) -> int:
    with logfire.span("root work"):
        return await rt.call(leaf, x) + 1


@rt.session(name="observed", logging_setting="NONE")
async def flow(x: int) -> int:
    return await rt.call(root, x)


def walk(nodes: list[dict[str, Any]]) -> list[Any]:
    return [[n["name"], bool(n.get("foreign")), n["span_id"], walk(n["children"])] for n in nodes]


if WHEN in ("before", "twice"):
    configure()
first, _ = asyncio.run(flow(1))
if WHEN in ("after", "twice"):
    configure()
exporter.clear()
result, session = asyncio.run(flow(3))
spans = exporter.get_finished_spans()
print(
    json.dumps(
        {
            "results": [first, result],
            "status": session.status,
            "trace_id": session.trace_id,
            "session_span_id": session.span_id,
            "spans": [
                {
                    "name": s.name,
                    "trace_id": format(s.context.trace_id, "032x"),
                    "span_id": format(s.context.span_id, "016x"),
                    "parent_id": None if s.parent is None else format(s.parent.span_id, "016x"),
                    "scope": s.instrumentation_scope.name if s.instrumentation_scope else None,
                }
                for s in spans
                if s.context is not None
            ],
            "state": walk(rt.load_state("observed")["nodes"]),
        }
    )
)
