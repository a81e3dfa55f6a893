"""The real ``openai`` SDK and its OpenTelemetry instrumentation, against a local server (SPEC 15).

Each scenario runs as a new user's script in a fresh process (the
instrumentation patches the SDK process-wide), then ``railtracks show`` and
``railtracks runs`` read what it saved, as subprocesses too.
"""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import REPO, run, run_python
from tests.fake_openai import COMPLETION_TOKENS

RAILTRACKS = str(Path(__import__("sys").executable).with_name("railtracks"))

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path.insert(0, {repo!r})

    import openai
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    import railtracks as rt
    from tests.fake_openai import fake_openai

    OpenAIInstrumentor().instrument()
    rt.configure(console_stream=sys.stdout,
                 prices={{"gpt-4o-mini": {{"input": "0.15", "output": "0.60"}}}})
    STREAM = {{"stream": True, "stream_options": {{"include_usage": True}}}}

    def ask(words):
        return [{{"role": "user", "content": words}}]

    with fake_openai() as (url, requests):
        aclient = openai.AsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0)
        client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)

        @rt.function_node
        async def plain_async(words):
            answer = await aclient.chat.completions.create(model="gpt-4o-mini", messages=ask(words))
            return answer.choices[0].message.content

        @rt.function_node
        async def streamed_async(words):
            chunks = await aclient.chat.completions.create(
                model="gpt-4o-mini", messages=ask(words), **STREAM)
            return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])

        @rt.function_node
        def plain_sync(words):
            answer = client.chat.completions.create(model="gpt-4o", messages=ask(words))
            return answer.choices[0].message.content

        @rt.function_node
        def streamed_sync(words):
            chunks = client.chat.completions.create(model="gpt-4o", messages=ask(words), **STREAM)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

        @rt.function_node
        async def agent():
            return await asyncio.gather(
                rt.call(plain_async, "one two"),
                rt.call(streamed_async, "one two three"),
                rt.call(plain_sync, "four"),
                rt.call(streamed_sync, "five six"),
            )

        @rt.session(name="models")
        async def flow():
            return await rt.call(agent)

        answers, session = asyncio.run(flow())
    rt.flush()
    print("ANSWERS " + json.dumps(answers))
    """
)


def _nodes(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for node in nodes:
        found[node["name"]] = node
        found.update(_nodes(node["children"]))
    return found


def test_openai_sdk_calls_are_summed_on_every_surface(tmp_path: Path) -> None:
    done = run_python(SCRIPT.format(repo=str(REPO)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("ANSWERS ")
    # prompt tokens: 10 + the words of the prompt (tests/fake_openai.py)
    mini, big = (12 + 13), (11 + 12)
    state = json.loads((tmp_path / ".railtracks" / "models.json").read_text("utf-8"))
    usage = state["session"]["usage"]
    assert usage["calls"] == 4
    assert usage["input_tokens"] == mini + big
    assert usage["output_tokens"] == 4 * COMPLETION_TOKENS
    assert usage["models"]["gpt-4o-mini"]["input_tokens"] == mini
    assert usage["models"]["gpt-4o"]["calls"] == 2
    expected = (mini * Decimal("0.15") + 10 * Decimal("0.60")) / 10**6
    assert Decimal(usage["models"]["gpt-4o-mini"]["cost_usd"]) == expected
    nodes = _nodes(state["nodes"])
    assert nodes["agent"]["usage"] == usage
    for name, tokens in (("plain_async", 12), ("streamed_async", 13), ("plain_sync", 11)):
        assert nodes[name]["usage"]["input_tokens"] == tokens, name
        (call,) = nodes[name]["children"]
        assert call["foreign"] is True
        assert call["usage"]["calls"] == 1
    assert nodes["streamed_sync"]["usage"]["input_tokens"] == 12
    # the console: a usage note on the node lines and on the session's end line
    console = done.stdout
    assert "plain_async completed" in console
    assert "[1 model call, 12 in / 5 out tokens, $0.0000048]" in console
    session_line = next(line for line in console.splitlines() if "session models completed" in line)
    assert f"[4 model calls, {mini + big} in / 20 out tokens, $" in session_line
    # `railtracks show` and `railtracks runs`, as a user runs them
    shown = run([RAILTRACKS, "show", "models"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "[4 model calls, 48 in / 20 out tokens" in lines[0]
    assert any(line.strip().startswith("model gpt-4o-mini: 2 model calls") for line in lines)
    assert any("plain_async" in line and "12 in / 5 out tokens" in line for line in lines)
    listed = run([RAILTRACKS, "runs"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[-2:] == ["TOKENS", "COST"]
    assert row.split()[-2:] == ["68", "$" + usage["cost_usd"]]
