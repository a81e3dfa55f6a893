"""A FastAPI service instrumented by ``FastAPIInstrumentor`` with its own SDK provider,
one railtracks session of 5 nodes per request, served by a real uvicorn.

Run by tests/test_service_asgi.py as ``python asgi_service.py REQUESTS CONCURRENCY``.
uvicorn serves on a socket bound here to a free port (listening before the
server starts, so the first request waits in the backlog until it is served);
httpx drives the requests. Prints one JSON report: each response, every
finished span, and the console stream.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import railtracks as rt

REQUESTS, CONCURRENCY = int(sys.argv[1]), int(sys.argv[2])

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

console = io.StringIO()
rt.configure(console_stream=console)

# a state file of each name exists already: each session logs the overwrite warning once
Path(".railtracks").mkdir()
for number in range(REQUESTS):
    Path(f".railtracks/req-{number}.json").write_text("{}")

app = FastAPI()


@rt.function_node
async def step(request_id: str, index: int) -> str:
    await asyncio.sleep(0)  # let the other requests' nodes interleave with this one's
    return f"{request_id}:{index}"


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@app.get("/work/{request_id}")
async def work(request_id: str) -> dict[str, Any]:
    async with rt.Session(name=f"req-{request_id}", logging_setting="REGULAR") as session:
        outputs = [await rt.call(step, request_id, index) for index in range(5)]
    return {
        "outputs": outputs,
        "trace_id": session.trace_id,
        "session_span_id": session.span_id,
        "session_id": session.identifier,
        "state_path": str(session.state_path),
    }


FastAPIInstrumentor.instrument_app(app)


async def drive(port: int) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
        (await client.get("/health", timeout=30)).raise_for_status()  # served: the server is up
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(number: int) -> dict[str, Any]:
            async with gate:
                response = await client.get(f"/work/{number}", timeout=60)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return {"request": str(number), **body}

        return await asyncio.gather(*(one(number) for number in range(REQUESTS)))


def main() -> None:
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    listening.listen(256)
    port = listening.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        responses = asyncio.run(drive(port))
    finally:
        server.should_exit = True
        thread.join(30)
    assert rt.flush(30), "every state written and every span handed on"
    spans = [
        {
            "name": s.name,
            "kind": s.kind.name,
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": None if s.parent is None else format(s.parent.span_id, "016x"),
            "session_name": (s.attributes or {}).get("railtracks.session.name"),
            "route": (s.attributes or {}).get("http.route"),
            "target": (s.attributes or {}).get("http.target")
            or (s.attributes or {}).get("url.path"),
        }
        for s in exporter.get_finished_spans()
        if s.context is not None
    ]
    print(json.dumps({"responses": responses, "spans": spans, "console": console.getvalue()}))


main()
