"""railtracks inside an application that configured Logfire (SPEC 5, host providers).

Logfire installs its own ``ProxyTracerProvider`` (unhashable, wrapping an SDK
provider it replaces at each ``logfire.configure``). Each case runs in its own
process: the global tracer provider can be set only once per process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import PYTHON, run

APP = Path(__file__).parent / "hosts" / "logfire_app.py"


def _report(tmp_path: Path, when: str, global_provider: str) -> dict[str, Any]:
    done = run(
        [PYTHON, str(APP), when],
        tmp_path,
        env={"RAILTRACKS_GLOBAL_PROVIDER": global_provider, "LOGFIRE_IGNORE_NO_CONFIG": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "Overriding of current TracerProvider is not allowed" not in done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize("global_provider", ["1", "0"])
@pytest.mark.parametrize("when", ["before", "after", "twice"])
def test_one_trace_in_logfire_with_the_logfire_spans_in_the_state(
    tmp_path: Path, when: str, global_provider: str
) -> None:
    report = _report(tmp_path, when, global_provider)
    assert report["results"] == [3, 7], "telemetry never changes the outcome"
    assert report["status"] == "completed"
    spans = {span["name"]: span for span in report["spans"]}
    assert sorted(spans) == ["leaf", "leaf work {x}", "root", "root work", "session observed"]
    assert len(report["spans"]) == 5, report["spans"]
    assert {span["trace_id"] for span in report["spans"]} == {report["trace_id"]}
    session = spans["session observed"]
    assert session["span_id"] == report["session_span_id"]
    assert session["parent_id"] is None
    assert spans["root"]["parent_id"] == session["span_id"]
    assert spans["root work"]["parent_id"] == spans["root"]["span_id"]
    assert spans["leaf"]["parent_id"] == spans["root work"]["span_id"]
    assert spans["leaf work {x}"]["parent_id"] == spans["leaf"]["span_id"]
    assert spans["root"]["scope"] == "railtracks"
    assert spans["root work"]["scope"] == "logfire"
    # the saved state: Logfire's spans under their true parents, marked foreign
    assert report["state"] == [
        [
            "root",
            False,
            spans["root"]["span_id"],
            [
                [
                    "root work",
                    True,
                    spans["root work"]["span_id"],
                    [
                        [
                            "leaf",
                            False,
                            spans["leaf"]["span_id"],
                            [["leaf work {x}", True, spans["leaf work {x}"]["span_id"], []]],
                        ]
                    ],
                ]
            ],
        ]
    ]
