"""Model calls in the viewer (SPEC 15), in a real headless chromium.

A run made with the real ``openai`` SDK and its instrumentation (prompts and
completions captured on the spans) against a local server: the run's token
and cost totals, a usage badge per span, and the model call's messages as a
conversation, with markup in a prompt shown as text.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from ..conftest import REPO, run
from .conftest import Page, Viewer

HOSTILE = "<img src=x onerror=window.__xss=1> what is <b>bold?</b>"

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {repo!r})
    import openai
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    import railtracks as rt
    from tests.fake_openai import fake_openai

    OpenAIInstrumentor().instrument()
    rt.configure(prices={{"gpt-4o-mini": {{"input": 1, "output": 2}}}})
    with fake_openai() as (url, _):
        client = openai.AsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0)

        @rt.function_node
        async def answer(question):
            reply = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{{"role": "system", "content": "be brief"}},
                          {{"role": "user", "content": question}}])
            return reply.choices[0].message.content

        @rt.function_node
        async def bookkeeping():
            rt.record_usage(model="in-house", input_tokens=1000, output_tokens=1)

        @rt.session(name="chatty")
        async def flow():
            await rt.call(bookkeeping)
            return await rt.call(answer, {hostile!r})

        asyncio.run(flow())
    """
)


def test_usage_totals_badges_and_the_conversation(
    page: Page, viewer: Viewer, state_dir: Path, tmp_path: Path
) -> None:
    env = {
        "RAILTRACKS_STATE_DIR": str(state_dir),
        "RAILTRACKS_LOGGING_SETTING": "NONE",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
    }
    script = SCRIPT.format(repo=str(REPO), hostile=HOSTILE)
    done = run([sys.executable, "-c", script], tmp_path, env)
    assert done.returncode == 0, done.stderr
    # prompt: 10 + the words of both messages (tests/fake_openai.py); 5 out
    prompt = 10 + 2 + len(HOSTILE.split())
    p = page.page
    p.goto(f"{viewer.url}#/run/saved/chatty")
    p.wait_for_selector(".row .name")
    tokens = p.locator(".run-head .run-usage").inner_text()
    assert tokens.startswith(f"{1001 + prompt + 5:,} (2 model calls) · $")
    badges = dict(
        zip(
            p.locator(".row:not([hidden]) .name").all_inner_texts(),
            p.locator(".row:not([hidden]) .cell-name").all_inner_texts(),
            strict=True,
        )
    )
    assert "1,001 tok" in badges["bookkeeping"]  # in-house has no price: no cost
    assert badges["session chatty"].endswith(" + unpriced")  # the cost is gpt-4o-mini's
    assert f"{prompt + 5} tok · $" in badges["answer"]
    assert f"{prompt + 5} tok · $" in badges["chat gpt-4o-mini"]
    p.locator(".row", has_text="chat gpt-4o-mini").click()
    p.wait_for_selector(".details h2:text('chat gpt-4o-mini')")
    prompt_pane = p.locator(".details [data-section='input'] .conversation")
    assert prompt_pane.locator(".role").all_text_contents() == ["system", "user"]
    assert prompt_pane.locator("pre").all_inner_texts() == ["be brief", HOSTILE]
    completion = p.locator(".details [data-section='output'] .conversation pre").inner_text()
    assert completion == "pong from the fake model"
    usage = p.locator(".details [data-section='usage'] tr").all_inner_texts()
    assert usage[1].split("\t")[:4] == ["gpt-4o-mini", "1", str(prompt), "5"]
    page.screenshot("model-call-conversation")
    assert p.locator("#app img, #app script").count() == 0
    assert p.locator("#app b:text-is('bold?')").count() == 0
    assert p.evaluate("window.__xss") is None
    assert page.dialogs == []
