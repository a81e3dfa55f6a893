"""Fixtures for integration tests against a real Arize Phoenix trace backend.

Phoenix runs in its own virtual environment at ``<repo>/.backends/phoenix``,
installed by ``bash tests/backends/install_phoenix.sh``. The session-scoped
``phoenix`` fixture starts one ``phoenix serve`` for the whole test session, on
free loopback ports, with a fresh working directory (SQLite database) and no
outbound requests of its own; it yields a :class:`PhoenixServer`. When Phoenix
is not installed, tests using the fixture are skipped, except when ``CI=true``,
where they fail: integration tests must never be silently skipped in CI.

Sending spans: run the code under test in a subprocess whose environment holds
``phoenix.otel_env(project, protocol)``. Spans land in the Phoenix project named
by the ``openinference.project.name`` resource attribute, which that
environment sets; ``service.name`` is ignored by Phoenix.

Reading spans back: ``phoenix.spans(project, trace_id, min_count=N)`` returns
the spans exactly as ``GET /v1/projects/{project}/spans`` returns them, in the
order Phoenix stored them. Each span is a dict shaped like this (Phoenix
20.26.1)::

    {
        "id": "U3Bhbjox",                 # Phoenix's own id, not the OTel span id
        "name": "child",
        "context": {
            "trace_id": "c3a910e87e17aee3e704c8f572267aaa",  # 32 lowercase hex
            "span_id": "dfafcd8880783e65",                   # 16 lowercase hex
        },
        "parent_id": "e501bd0ec48da66e",  # parent's span_id; None for a root span
        "span_kind": "UNKNOWN",           # OpenInference kind, NOT the OTel SpanKind
        "start_time": "2026-11-24T19:43:53.235373+00:00",   # ISO 8601, UTC, µs
        "end_time": "2026-11-24T19:43:53.235412+00:00",
        "status_code": "ERROR",           # "UNSET" | "OK" | "ERROR"
        "status_message": "boom",         # "" when none was set
        "attributes": {                   # flat: dotted keys are kept as written,
            "a.int": 7,                   # values keep their JSON type
            "a.float": 1.5,
            "a.bool": True,
            "a.list": [1, 2],
        },
        "events": [
            {
                "name": "ev1",
                "timestamp": "2026-11-24T19:43:53.235391+00:00",
                "attributes": {"k": "v", "n": 3},
            },
        ],
    }

Spans are listed in the order Phoenix stored them, which follows the order
they were exported (roughly the order they ended: a parent after its children).
Times are ISO 8601 in UTC with an explicit ``+00:00`` offset, rounded to the
microsecond (OTel's nanoseconds are lost), and the fraction is left out when it
is zero (``"2023-11-14T22:13:20+00:00"``): parse them with
``datetime.fromisoformat``, never by string slicing. The OTel status codes come
back as the strings ``"UNSET"``, ``"OK"`` and ``"ERROR"``; the SDK itself drops a
description set with any status but ERROR. Attribute values keep their types
(int, float, bool, str, homogeneous lists, an empty list; big ints exactly).

What Phoenix loses or rewrites on the way: the OTel span kind (``span_kind``
is the OpenInference kind: the ``openinference.span.kind`` attribute, which
is then removed from ``attributes``, else ``"UNKNOWN"``); links; resource
attributes (``service.name`` included) and instrumentation scope; trace state;
dropped-attribute and dropped-event counts. A string attribute named
``metadata`` holding JSON is parsed and comes back expanded as ``metadata.<key>``
entries. Check those with an in-process exporter instead.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pytest

from railtracks.testing._procs import STALL_S, free_port, stop_process, wait_for_progress

REPO_ROOT = Path(__file__).resolve().parents[2]
# RAILTRACKS_PHOENIX_VENV overrides where the venv is looked for (the harness's
# own tests use it to check the missing-backend policy).
PHOENIX_VENV = Path(
    os.environ.get("RAILTRACKS_PHOENIX_VENV") or REPO_ROOT / ".backends" / "phoenix"
)
PHOENIX_BIN = PHOENIX_VENV / "bin" / "phoenix"
NOT_INSTALLED = "Phoenix not installed: run `bash tests/backends/install_phoenix.sh`"

# Generous bounds on a process that makes no progress we could watch (a loaded
# two-core machine starts Phoenix in ~20 s).
READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 15.0
START_ATTEMPTS = 3  # a free port can be taken by someone else before Phoenix binds it
PAGE_LIMIT = 1000  # the largest page GET /v1/projects/{project}/spans accepts
# Polls back off to this: Phoenix serves queries and writes spans on one event
# loop, and polling 4 times a second slowed a 20,000-span burst by half.
POLL_FIRST_S = 0.1
POLL_MAX_S = 2.0
HTTP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 40
MAX_SPANS_QUEUED = 1_000_000

OtlpProtocol = Literal["grpc", "http/protobuf"]
Span = dict[str, Any]

# Characters allowed in a project name: it travels unescaped in
# OTEL_RESOURCE_ATTRIBUTES and in a URL path.
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")

_SERVER_KEY = pytest.StashKey["PhoenixServer"]()


class PhoenixError(RuntimeError):
    """Phoenix answered something other than data or "not yet"."""


@dataclass(frozen=True)
class PhoenixServer:
    """A running ``phoenix serve``, and the ways to send it spans and read them back."""

    http_port: int
    grpc_port: int
    working_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    @property
    def http_base(self) -> str:
        """Base URL of the HTTP server (REST API, OTLP/HTTP receiver, UI)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def http_traces_endpoint(self) -> str:
        """Full OTLP/HTTP traces URL, for an exporter given an explicit endpoint."""
        return f"{self.http_base}/v1/traces"

    @property
    def grpc_endpoint(self) -> str:
        """OTLP/gRPC endpoint; the ``http`` scheme makes the exporter use plaintext."""
        return f"http://127.0.0.1:{self.grpc_port}"

    def otel_env(self, project: str, protocol: OtlpProtocol = "grpc") -> dict[str, str]:
        """Environment variables that point a subprocess's OTLP trace exporter here.

        Merge them over ``os.environ`` for the subprocess. For ``http/protobuf``
        the endpoint is the base URL: the SDK appends ``/v1/traces`` to
        ``OTEL_EXPORTER_OTLP_ENDPOINT`` itself. Signal-specific variables
        (``OTEL_EXPORTER_OTLP_TRACES_*``) would override these: do not set them.
        Phoenix receives traces only, so an OTLP metrics or logs exporter
        pointed here by the same variables gets errors.
        """
        _check_project(project)
        if protocol == "grpc":
            endpoint = self.grpc_endpoint
        elif protocol == "http/protobuf":
            endpoint = self.http_base
        else:
            raise ValueError(f"unsupported OTLP protocol {protocol!r}")
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
        }

    def spans(
        self,
        project: str,
        trace_id: str | None = None,
        min_count: int = 1,
        stall: float = STALL_S,
    ) -> list[Span]:
        """The spans of ``project`` (of one trace when ``trace_id`` is given).

        Phoenix acknowledges OTLP before it stores the spans (60-400 a second,
        depending on the machine's load), so this first waits, as
        :meth:`wait_for_count` does, until at least ``min_count`` are stored,
        then reads them all (in pages of 1,000, the API's largest) and returns
        them in the order Phoenix stored them; after a stall that may be fewer
        than ``min_count``, possibly none. Pass the number of spans you expect:
        with the default of 1, the first batch stored ends the wait.
        """
        self.wait_for_count(project, trace_id, min_count, stall)
        return self._read_spans(project, trace_id) or []

    def span_count(self, project: str, trace_id: str | None = None) -> int:
        """How many spans of ``project`` (of one trace, if given) are stored now.

        One GraphQL query, however many spans there are: much cheaper than
        reading them all. 0 while the project or the trace is not there yet.
        """
        _check_project(project)
        if trace_id is not None:
            _check_trace_id(trace_id)
        project_id = self._project_id(project)
        if project_id is None:
            return 0
        query = (
            "query($id: ID!, $traceId: ID!, $oneTrace: Boolean!) { node(id: $id) {"
            " ... on Project { recordCount @skip(if: $oneTrace)"
            " trace(traceId: $traceId) @include(if: $oneTrace) { numSpans } } } }"
        )
        variables = {"id": project_id, "traceId": trace_id or "", "oneTrace": trace_id is not None}
        node = self._graphql(query, variables)["node"]
        if trace_id is None:
            return int(node["recordCount"])
        trace = node["trace"]
        return 0 if trace is None else int(trace["numSpans"])

    def wait_for_count(
        self,
        project: str,
        trace_id: str | None = None,
        min_count: int = 1,
        stall: float = STALL_S,
    ) -> int:
        """Poll :meth:`span_count` until it reaches ``min_count``; the last count seen.

        A wait on Phoenix's progress, never on a guess of its speed: it goes on
        as long as the count keeps growing, and gives up (returning a count
        below ``min_count``) only when nothing new was stored for ``stall``
        seconds, in this project or any other (``stall=0``: one look), or after
        ``railtracks.testing._procs``' generous overall bound. Polls back off
        to one every 2 s: Phoenix serves queries and writes spans on one event
        loop.
        """
        return wait_for_progress(
            lambda: self.span_count(project, trace_id),
            min_count,
            stall=stall,
            poll_max=POLL_MAX_S,
            # spans of earlier tests stored first are progress too
            activity=self.stored_total,
        )

    def run_while_storing(
        self, command: list[str], cwd: Path, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (``railtracks outbox send`` to here) for as long as it takes.

        How long it takes is Phoenix's speed, so it is waited on as Phoenix's
        progress: it is stopped (and the test fails) only when it is still
        running while Phoenix stored nothing new for ``STALL_S`` seconds.
        """
        out, err = cwd / "run.stdout", cwd / "run.stderr"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                command, cwd=cwd, env={**os.environ, **env}, stdout=stdout, stderr=stderr
            )
            try:
                wait_for_progress(
                    lambda: 0 if process.poll() is None else 1, 1, activity=self.stored_total
                )
            finally:
                stop_process(process, STOP_TIMEOUT_S)
        return subprocess.CompletedProcess(
            command, process.returncode, out.read_text(), err.read_text()
        )

    def stored_total(self) -> int:
        """How many spans Phoenix has stored in all, every project together."""
        query = "{ projects { edges { node { recordCount } } } }"
        edges = self._graphql(query, {})["projects"]["edges"]
        return sum(int(edge["node"]["recordCount"]) for edge in edges)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server's log (stdout and stderr), and how it ended if it did."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            text = f"(cannot read {self.log_path}: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        ended = self.ended()
        return tail if ended is None else f"{tail}\n{ended}"

    def ended(self) -> str | None:
        """How the server process ended (a signal it died of by name), or None while it runs.

        A server killed from outside (the OOM killer's SIGKILL) writes nothing
        to its log: this says so instead of leaving "connection refused".
        """
        code = None if self.process is None else self.process.poll()
        if code is None:
            return None
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"Phoenix is no longer running: killed by {name}"
        return f"Phoenix is no longer running: exited with code {code}"

    def _read_spans(self, project: str, trace_id: str | None) -> list[Span] | None:
        """Every stored span, in the order stored; None while the project does not exist."""
        spans: list[Span] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": PAGE_LIMIT, "sort": "id", "order": "asc"}
            if trace_id is not None:
                params["trace_id"] = trace_id
            if cursor is not None:
                params["cursor"] = cursor
            page = self._get_json(f"/v1/projects/{project}/spans", params)
            if page is None:
                return None
            spans.extend(page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                return spans

    def _project_id(self, project: str) -> str | None:
        body = self._get_json(f"/v1/projects/{project}", {})
        return None if body is None else str(body["data"]["id"])

    def _get_json(self, path: str, params: dict[str, str | int]) -> Any:
        """GET a JSON document; None on 404 (Phoenix's "no such project yet")."""
        url = f"{self.http_base}{path}"
        if params:
            url = f"{url}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise self._error(f"GET {url} answered {exc.code}: {_body(exc)}") from exc
        except urllib.error.URLError as exc:
            raise self._error(f"GET {url} failed: {exc.reason}") from exc

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.http_base}/graphql"
        request = urllib.request.Request(
            url,
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            raise self._error(f"POST {url} answered {exc.code}: {_body(exc)}") from exc
        except urllib.error.URLError as exc:
            raise self._error(f"POST {url} failed: {exc.reason}") from exc
        if body.get("errors"):
            raise self._error(f"POST {url} answered errors: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    def _error(self, message: str) -> PhoenixError:
        return PhoenixError(f"{message}\nPhoenix log: {self.log_path}\n{self.log_tail()}")


def _check_project(project: str) -> None:
    if not _PROJECT_NAME.fullmatch(project):
        raise ValueError(f"project name {project!r} must match {_PROJECT_NAME.pattern}")


def _check_trace_id(trace_id: str) -> None:
    if not _TRACE_ID.fullmatch(trace_id):
        raise ValueError(f"trace id {trace_id!r} must be 32 lowercase hex digits")


def _body(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read().decode("utf-8", errors="replace")[:500]
    except OSError:
        return "(no body)"


def _phoenix_env(working_dir: Path, http_port: int, grpc_port: int) -> dict[str, str]:
    # Nothing of the caller's own Phoenix or OpenTelemetry settings leaks in.
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PHOENIX_", "OTEL_"))
    }
    env.update(
        PHOENIX_WORKING_DIR=str(working_dir),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(http_port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_TELEMETRY_ENABLED="false",
        # No requests to the internet of its own (web fonts, a WASM binary, a
        # docs MCP server): there is no network here, and tests must not
        # depend on one.
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_DISABLE_AGENT_ASSISTANT="true",
        PHOENIX_ENABLE_MCP_SERVER="false",
        # Phoenix answers 503 to new exports while 20,000 spans (its default)
        # wait to be written, and the exporter drops a batch after a few
        # retries: a burst test would lose spans. It writes ~400 spans/s.
        PHOENIX_MAX_SPANS_QUEUE_SIZE=str(MAX_SPANS_QUEUED),
    )
    return env


def _is_ready(http_base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{http_base}/readyz", timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class _StartError(Exception):
    """Phoenix did not become ready; ``exited`` tells whether it died trying."""

    def __init__(self, exited: bool, message: str) -> None:
        super().__init__(message)
        self.exited = exited


def _start(base_dir: Path, attempt: int) -> tuple[PhoenixServer, subprocess.Popen[bytes]]:
    """Start Phoenix and wait until it is ready; _StartError with its log if it is not."""
    working_dir = base_dir / f"working-{attempt}"
    working_dir.mkdir()
    server = PhoenixServer(
        http_port=free_port(),
        grpc_port=free_port(),
        working_dir=working_dir,
        log_path=base_dir / f"phoenix-{attempt}.log",
    )
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PHOENIX_BIN), "serve"],
            env=_phoenix_env(working_dir, server.http_port, server.grpc_port),
            cwd=working_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Left in pytest's process group on purpose, so that whatever stops
            # the test run as a group (Ctrl-C, a job runner) stops Phoenix too.
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            if _is_ready(server.http_base):
                return replace(server, process=process), process
            time.sleep(POLL_FIRST_S)
    except BaseException:  # an interrupt while waiting must not leave Phoenix running
        stop_process(process, STOP_TIMEOUT_S)
        raise
    exited = process.poll() is not None
    stop_process(process, STOP_TIMEOUT_S)
    reason = (
        f"exited with code {process.returncode}"
        if exited
        else f"not ready within {READY_TIMEOUT_S:.0f} s"
    )
    raise _StartError(exited, f"Phoenix {reason}; log: {server.log_path}\n{server.log_tail()}")


def _start_with_retries(base_dir: Path) -> tuple[PhoenixServer, subprocess.Popen[bytes]]:
    failure = ""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return _start(base_dir, attempt)
        except _StartError as exc:
            # An early exit is most likely a port taken meanwhile: try new ports.
            failure = str(exc)
            if not exc.exited:
                break
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def phoenix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PhoenixServer]:
    """A Phoenix server for the whole session: see this module's docstring."""
    if not (PHOENIX_BIN.is_file() and os.access(PHOENIX_BIN, os.X_OK)):
        if os.environ.get("CI") == "true":
            pytest.fail(NOT_INSTALLED)
        pytest.skip(NOT_INSTALLED)
    server, process = _start_with_retries(tmp_path_factory.mktemp("phoenix"))
    request.config.stash[_SERVER_KEY] = server
    try:
        yield server
    finally:
        del request.config.stash[_SERVER_KEY]
        stop_process(process, STOP_TIMEOUT_S)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the tail of Phoenix's log to the report of a failed test that used it."""
    report = yield
    server = item.config.stash.get(_SERVER_KEY, None)
    if report.failed and server is not None and "phoenix" in getattr(item, "fixturenames", ()):
        report.sections.append(
            ("Phoenix log", f"{server.log_path} (last {LOG_TAIL_LINES} lines)\n{server.log_tail()}")
        )
    return report
