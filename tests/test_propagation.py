"""The session across any transport: carrier, segment, merge (SPEC 12), and ``executor=``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import railtracks as rt
from railtracks import errors
from railtracks._remote import carrier as _carrier
from railtracks._remote.carrier import RemoteCall
from railtracks._remote.segment import execute_call
from tests.conftest import REPO, run_python


@rt.function_node
async def child(tag: str) -> dict[str, Any]:
    rt.context.put("child", tag)
    return {"tag": tag, "seen": rt.context.get("k"), "session": rt.session_id()}


@rt.function_node
async def parent_in_segment(tag: str) -> dict[str, Any]:
    return await rt.call(child, tag)


@rt.function_node
def sync_failure() -> None:
    raise LookupError("nothing here")


class PickleExecutor:
    """Runs calls in a thread after a pickle round trip: a process boundary without processes.

    The function itself stays as it is (plain pickle cannot ship a decorated
    function by value; Ray's cloudpickle can, see tests/distributed).
    """

    async def run_call(self, call: RemoteCall) -> Any:
        without = pickle.loads(pickle.dumps(dataclasses.replace(call, func=None)))
        shipped = dataclasses.replace(without, func=call.func)
        reply = await asyncio.to_thread(execute_call, shipped)
        return pickle.loads(pickle.dumps(reply))


def test_readme_http_example_runs_as_documented(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- example: http-propagation -->\n```python\n(.*?)```", readme, re.S)
    assert found, "the README's HTTP propagation example is missing"
    script = tmp_path / "http_example.py"
    script.write_text(found.group(1), encoding="utf-8")
    result = run_python(
        f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')", tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "total: 2.0",
        "priced in another process: True",
        "spans: ['price', 'remote_price', 'session quote']",
    ]
    state = json.loads((tmp_path / ".railtracks" / "quote.json").read_text(encoding="utf-8"))
    (remote,) = state["nodes"]
    assert remote["name"] == "remote_price"
    assert [node["name"] for node in remote["children"]] == ["price"]


def test_segment_continues_the_session_and_merges_back(quiet: None) -> None:
    async def flow() -> Any:
        async with rt.Session(name="caller", context={"k": "v"}, timeout=60) as session:
            headers = rt.session_carrier()
            assert set(headers) >= {"traceparent", "railtracks-session", "railtracks-context"}

            async def far_side() -> Any:  # what a service does with the headers
                async with rt.session_segment(dict(headers)) as segment:
                    assert rt.session_id() == session.identifier
                    assert segment._deadline is not None
                    result = await rt.call(parent_in_segment, "x")
                return result, json.loads(json.dumps(segment.reply()))

            result, reply = await asyncio.create_task(far_side(), context=_empty_context())
            assert rt.context.get("child") is None  # not applied before the merge
            rt.merge_segment(reply)
            return result, session

    result, session = asyncio.run(flow())
    assert result == {"tag": "x", "seen": "v", "session": session.identifier}
    assert session.context["child"] == "x"
    names = [span.name for span in session.spans]
    assert names == ["child", "parent_in_segment", "session caller"]
    spans = {span.name: span for span in session.spans}
    assert spans["parent_in_segment"].parent.span_id == spans["session caller"].context.span_id
    assert spans["child"].parent.span_id == spans["parent_in_segment"].context.span_id


def _empty_context() -> Any:
    import contextvars

    return contextvars.Context()  # the far side shares nothing with the caller


def test_carrier_and_reply_are_untrusted_input(quiet: None) -> None:
    with pytest.raises(errors.CarrierError, match="railtracks-session"):
        rt.session_segment({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    good = {"id": "7d7f3f0e-6d1c-4b7a-9d55-2f9d2c1e0a11", "logging_setting": "REGULAR"}
    for bad in (
        "not json",
        "[1]",
        json.dumps({**good, "id": "x"}),
        json.dumps({**good, "name": "../etc"}),
        json.dumps({**good, "deadline": "soon"}),
        json.dumps({**good, "logging_setting": "LOUD"}),
    ):
        with pytest.raises(errors.CarrierError):
            rt.session_segment({"railtracks-session": bad})
    with (
        pytest.raises(errors.CarrierError, match="traceparent"),
        rt.session_segment({"railtracks-session": json.dumps(good)}),
    ):
        pass

    async def flow() -> rt.Session:
        async with rt.Session(name="victim") as session:
            with pytest.raises(errors.CarrierError):
                rt.merge_segment({"version": 1, "session_id": "other", "trace_id": "0"})
            headers = rt.session_carrier()
            with rt.session_segment(headers) as segment:
                pass
            reply = segment.reply()
            span = {
                "name": "injected",
                "span_id": "00000000000000aa",
                "parent_span_id": None,
                "kind": "INTERNAL",
                "start": 1,
                "end": 2,
                "attributes": {},
                "events": [],
                "status": ["UNSET", None],
                "scope": None,
            }
            reply["spans"] = [
                "junk",
                {**span, "span_id": "zz"},
                {**span, "attributes": {"railtracks.session.id": "someone-else"}},
                {**span, "attributes": {"ok": "yes", "bad": {"nested": 1}, "list": [1, "a"]}},
            ]
            reply["context_changes"] = [["put", "fine", 1], ["exec", "x"], ["put", 3, 4]]
            rt.merge_segment(reply)
            return session

    session = asyncio.run(flow())
    assert dict(session.context) == {"fine": 1}
    assert [span.name for span in session.spans] == ["session victim"]  # no session id: foreign


def test_remote_executor_path_keeps_types_context_and_spans(quiet: None) -> None:
    @rt.session(name="picked", executor=PickleExecutor(), context={"k": 1})
    async def flow() -> Any:
        out = await rt.call(parent_in_segment, "y")
        with pytest.raises(LookupError, match="nothing here"):
            await rt.call(sync_failure)
        return out

    out, session = asyncio.run(flow())
    assert out["seen"] == 1
    assert session.context["child"] == "y"
    names = sorted(span.name for span in session.spans)
    assert names == ["child", "parent_in_segment", "session picked", "sync_failure"]
    failed = next(s for s in session.spans if s.name == "sync_failure")
    assert failed.attributes["railtracks.status"] == "failed"
    assert failed.attributes["error.type"] == "LookupError"


def test_deadline_is_enforced_on_the_far_side(quiet: None) -> None:
    async def capture() -> Any:
        async with rt.Session(timeout=60) as session:
            carrier = _carrier.capture(session)
            return dataclasses.replace(carrier, deadline=time.time() - 1)

    expired = asyncio.run(capture())
    reply = execute_call(RemoteCall("child", child.func, True, ("late",), {}, expired))
    assert reply["outcome"] == "error"
    assert isinstance(reply["value"], errors.GlobalTimeOutError)
    assert reply["spans"] == []  # the node never started


def test_executor_option_is_validated_with_precedence() -> None:
    with pytest.raises(errors.ConfigurationError, match="executor"):
        rt.Session(executor=42)
    with pytest.raises(errors.ConfigurationError, match="executor"):
        rt.function_node(executor="everywhere")(lambda: None)
    with pytest.raises(errors.ConfigurationError, match="executor"):
        rt.session(executor=object())
    pickled = PickleExecutor()
    rt.set_config(executor=pickled)
    assert rt.Session().options.executor is pickled
    assert rt.Session(executor="local").options.executor is None
    assert rt.Session(executor=None).options.executor is None


def test_import_railtracks_never_imports_ray(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
        "import railtracks, railtracks.ray\n"
        "from railtracks.ray import RayExecutor\n"
        "ex = RayExecutor(num_cpus=1)\n"
        "try:\n"
        "    ex.connect()\n"
        "except railtracks.errors.ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    result = run_python(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pip install 'railtracks[ray]'" in result.stdout


HOSTED = """
import asyncio
from collections import Counter
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

import railtracks as rt
from tests.test_propagation import PickleExecutor, parent_in_segment

@rt.session(name="hosted", executor=PickleExecutor(), logging_setting="NONE")
async def flow():
    return await rt.call(parent_in_segment, "z")

asyncio.run(flow())
counts = Counter(span.context.span_id for span in exporter.get_finished_spans())
print(sorted(span.name for span in exporter.get_finished_spans()), max(counts.values()))
"""


def test_remote_spans_reach_a_host_providers_exporters_once(tmp_path: Path) -> None:
    result = run_python(HOSTED, tmp_path, env={"PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['child', 'parent_in_segment', 'session hosted'] 1"


GOOD_FIELDS = {"id": "7d7f3f0e-6d1c-4b7a-9d55-2f9d2c1e0a11", "logging_setting": "REGULAR"}
TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"


class _ExplodingItems:
    def items(self) -> Any:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    "headers",
    [
        [("railtracks-session", json.dumps(GOOD_FIELDS))],  # a list as headers
        ("railtracks-session", "{}"),
        "railtracks-session",
        b"railtracks-session",
        None,
        42,
        _ExplodingItems(),
        {"railtracks-session": json.dumps({**GOOD_FIELDS, "deadline": 10**400})},
        {"railtracks-session": json.dumps({**GOOD_FIELDS, "timeout": -(10**400)})},
        {"railtracks-session": json.dumps({**GOOD_FIELDS, "deadline": [1]})},
        {"railtracks-session": json.dumps({**GOOD_FIELDS, "logging_setting": [1]})},
        {"railtracks-session": json.dumps({**GOOD_FIELDS, "logging_setting": {}})},
        {"railtracks-session": json.dumps({**GOOD_FIELDS, "name": {"a": 1}})},
        {"railtracks-session": json.dumps({**GOOD_FIELDS, "id": None})},
        {"railtracks-session": json.dumps(GOOD_FIELDS), "railtracks-context": "[]"},
    ],
    ids=lambda value: type(value).__name__,
)
def test_malformed_carrier_headers_of_any_type_are_carrier_errors(headers: Any) -> None:
    with (
        pytest.raises(errors.CarrierError),
        rt.session_segment(
            {**headers, "traceparent": TRACEPARENT} if isinstance(headers, dict) else headers
        ),
    ):
        pass


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "name", "deadline", "timeout", "logging_setting", "other"]),
        _JSON,
    ),
    _JSON,
    st.one_of(st.just(TRACEPARENT), st.text(max_size=60)),
)
def test_any_carrier_fields_open_a_segment_or_raise_carrier_error(
    fields: dict[str, Any], context: Any, traceparent: str
) -> None:
    headers = {
        "railtracks-session": json.dumps({**GOOD_FIELDS, **fields}),
        "railtracks-context": json.dumps(context),
        "traceparent": traceparent,
    }
    try:
        with rt.session_segment(headers) as segment:
            segment.reply()
    except errors.CarrierError:
        pass


def test_a_reply_whose_error_is_not_an_exception_is_a_carrier_error(quiet: None) -> None:
    class Forged:
        async def run_call(self, call: RemoteCall) -> Any:
            reply = await asyncio.to_thread(execute_call, call)
            reply["outcome"] = "error"
            reply["value"] = SystemExit(3)  # would end the caller's process if raised
            reply["worker"] = {"pid": "x", "host": 5}
            return reply

    @rt.session(name="forged", executor=Forged())
    async def flow() -> Any:
        return await rt.call(child, "z")

    with pytest.raises(errors.CarrierError, match="not an exception"):
        asyncio.run(flow())
