"""Runs for the viewer's tests: real railtracks processes, and big states built directly."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
XSS_CONTEXT = '<svg onload="window.__xss=3"></svg><b>bold?</b>'
SECRET = "sk-live-do-not-show-1234567890"

# A real workflow: concurrent calls, a nested call, a handled failure, context
# holding markup and a secret, outputs holding markup. ``WAIT_FOR`` (a path,
# or empty) holds the session open until that file exists, for the live test.
WORKFLOW = f"""
import asyncio, os, pathlib, sys
import railtracks as rt

XSS = {XSS!r}
NAME = sys.argv[1]
WAIT_FOR = sys.argv[2] if len(sys.argv) > 2 else ""

@rt.function_node
async def fetch(item: str) -> dict:
    await asyncio.sleep(0.02)
    return {{"item": item, "html": XSS, "password": "hunter2"}}

@rt.function_node
async def enrich(items: list) -> list:
    return [await rt.call(fetch, i) for i in items[:2]]

@rt.function_node
def broken(x: int) -> int:
    raise ValueError("bad <b>x</b> " + XSS)

@rt.session(name=NAME, context={{"user": {XSS_CONTEXT!r}, "api_key": {SECRET!r}}})
async def flow():
    found = await asyncio.gather(*(rt.call(fetch, f"i{{i}}") for i in range(3)))
    rt.context.put("step", {XSS_CONTEXT!r})
    await rt.call(enrich, ["a", "b", "c"])
    try:
        await rt.call(broken, 1)
    except ValueError:
        pass
    if WAIT_FOR:
        while not pathlib.Path(WAIT_FOR).exists():
            await asyncio.sleep(0.05)
    return found

asyncio.run(flow())
"""


def _node(span_id: int, parent: int, name: str, start: int, status: str) -> dict[str, Any]:
    return {
        "name": name,
        "span_id": f"{span_id:016x}",
        "parent_span_id": f"{parent:016x}",
        "status": status,
        "status_code": "ERROR" if status == "failed" else "UNSET",
        "kind": "INTERNAL",
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + 900_000,
        "duration_seconds": 0.0009,
        "context": {},
        "error": None if status == "completed" else {"type": "ValueError", "message": "no"},
        "context_changes": [],
        "events": [],
        "attributes": {},
        "input": {"i": span_id},
        "output": span_id,
        "children": [],
    }


def big_state(path: Path, parents: int = 100, children: int = 999) -> int:
    """Write a state of ``parents * (children + 1)`` nodes; returns the node count."""
    base = 1_795_000_000_000_000_000
    session_id = 1
    nodes = []
    next_id = 2
    for p in range(parents):
        parent_id = next_id
        next_id += 1
        start = base + p * 1_000_000_000
        parent = _node(parent_id, session_id, f"batch_{p}", start, "completed")
        parent["end_time_unix_nano"] = start + 999_000_000
        for c in range(children):
            status = "failed" if c % 97 == 0 else "completed"
            child = _node(next_id, parent_id, f"item_{p}_{c}", start + c * 1_000_000, status)
            if c % 50 == 1:  # other instrumentation's span (an HTTP call, say) under its node
                child["foreign"] = True
            parent["children"].append(child)
            next_id += 1
        nodes.append(parent)
    end = base + parents * 1_000_000_000
    document = {
        "schema_version": 1,
        "session": {
            "identifier": str(uuid.uuid4()),
            "name": path.stem,
            "span_name": f"session {path.stem}",
            "trace_id": "ab" * 16,
            "timeout": None,
            "resource": {},
            "scope": {"name": "railtracks", "version": "0"},
            "started_at": "2026-11-18T10:13:20.000000Z",
            "ended_at": "2026-11-18T10:15:00.000000Z",
            "span_id": f"{session_id:016x}",
            "parent_span_id": None,
            "status": "completed",
            "status_code": "UNSET",
            "kind": "INTERNAL",
            "start_time_unix_nano": base,
            "end_time_unix_nano": end,
            "duration_seconds": (end - base) / 1e9,
            "context": {},
            "error": None,
            "context_changes": [],
            "events": [],
            "attributes": {},
        },
        "answer": None,
        "nodes": nodes,
    }
    path.write_text(json.dumps(document, separators=(",", ":")))
    return parents * (children + 1)
