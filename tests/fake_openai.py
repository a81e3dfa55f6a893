"""A local OpenAI-compatible server for tests: ``/v1/chat/completions``, plain and streamed.

Each answer's usage is a function of the request (the prompt's word count), so
a test knows the exact figures the real SDK and its instrumentation report:
``prompt_tokens = 10 + words``, ``completion_tokens = 5``, of which 3 cached
input tokens and 2 reasoning tokens.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLETION_TOKENS = 5
CACHED_TOKENS = 3
REASONING_TOKENS = 2
REPLY = "pong from the fake model"


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return 10 + sum(len(str(m.get("content", "")).split()) for m in messages)


def _usage(request: dict[str, Any]) -> dict[str, Any]:
    prompt = prompt_tokens(request.get("messages", []))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": prompt + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
        "completion_tokens_details": {"reasoning_tokens": REASONING_TOKENS},
    }


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base's name
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        model = str(request.get("model", "fake"))
        self.server.requests.append(request)  # type: ignore[attr-defined]
        if request.get("stream"):
            self._stream(request, model)
            return
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": f"{model}-2026",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(request),
        }
        self._send(200, "application/json", json.dumps(body).encode())

    def _stream(self, request: dict[str, Any], model: str) -> None:
        base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1}
        chunks: list[dict[str, Any]] = []
        for i, word in enumerate(REPLY.split()):
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": " " + word}
            chunks.append(
                {
                    **base,
                    "model": f"{model}-2026",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
            )
        chunks.append(
            {
                **base,
                "model": f"{model}-2026",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
        if (request.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {**base, "model": f"{model}-2026", "choices": [], "usage": _usage(request)}
            )
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        self._send(200, "text/event-stream", body.encode())

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def fake_openai() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(base_url, the requests it received)`` of a server on 127.0.0.1, for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
