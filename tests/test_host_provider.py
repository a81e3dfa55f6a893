"""Telemetry ownership: a host's provider is used, never replaced, whatever it is (SPEC 5)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .conftest import PYTHON, run, run_python

HOST_APP = textwrap.dedent(
    """
    import asyncio
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    host_exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(host_exporter))
    trace.set_tracer_provider(provider)

    import railtracks as rt

    @rt.function_node
    async def work() -> int:
        return 1

    @rt.session(name="hosted", logging_setting="NONE")
    async def flow():
        return await rt.call(work)

    async def request():
        with trace.get_tracer("web").start_as_current_span("POST /run"):
            return await flow()

    for _ in range(2):
        result, session = asyncio.run(request())
    assert trace.get_tracer_provider() is provider, "global provider replaced"
    names = [s.name for s in host_exporter.get_finished_spans()]
    print(sorted(names))
    print(len(session.state["nodes"]))
    """
)

STANDALONE = textwrap.dedent(
    """
    import asyncio
    from opentelemetry import trace
    import railtracks as rt

    async def main():
        return await rt.call(lambda: 1)

    asyncio.run(main())
    print(type(trace.get_tracer_provider()).__name__)
    """
)


def _run(script: str, cwd: Path) -> list[str]:
    done = run_python(script, cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_railtracks_adds_its_processors_to_the_host_provider(tmp_path: Path) -> None:
    lines = _run(HOST_APP, tmp_path)
    assert lines[0] == str(sorted(["POST /run", "session hosted", "work"] * 2))
    assert lines[1] == "1", "railtracks' own collector still builds the state"


def test_without_a_host_provider_railtracks_provider_is_global_unless_opted_out(
    tmp_path: Path,
) -> None:
    assert _run(STANDALONE, tmp_path) == ["TracerProvider"]
    done = run_python(STANDALONE, tmp_path, env={"RAILTRACKS_GLOBAL_PROVIDER": "0"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ProxyTracerProvider"]


FOREIGN_APP = Path(__file__).parent / "hosts" / "foreign_provider_app.py"
# railtracks' spans and the host's own span in the node, where each host's pipeline has them
HOST_SPANS = {
    "bare": [],  # takes no processor: nothing to join
    "unhashable": ["child", "parent", "session hosted", "vendor call"],
    # its tracers are not the SDK's: railtracks records on its own provider
    "vendor": ["vendor call"],
}


@pytest.mark.parametrize("kind", ["bare", "unhashable", "vendor"])
def test_a_host_provider_that_is_not_the_sdks_never_changes_the_outcome(
    tmp_path: Path, kind: str
) -> None:
    done = run([PYTHON, str(FOREIGN_APP), kind], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert report["results"] == [20, 30]
    assert report["status"] == "completed"
    assert report["state_path"] == ".railtracks/hosted.json"
    assert (tmp_path / ".railtracks" / "hosted.json").is_file()
    assert report["host_spans"] == HOST_SPANS[kind]
    if kind == "bare":  # its spans record nothing: the nodes alone
        assert report["state"] == [["parent", [["child", []]]]]
    else:  # the span its tracer made in the node is in the state, under its true parent
        assert report["state"] == [["parent", [["vendor call", [["child", []]]]]]]
