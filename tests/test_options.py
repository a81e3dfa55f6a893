"""Every session option: validation before anything runs, and precedence."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import railtracks as rt
from railtracks.errors import ConfigurationError
from railtracks.testing import SpanCapture

BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"logging_setting": "LOUD"}, "logging_setting: unknown logging setting 'LOUD'"),
    ({"context": ["a", "b"]}, "context: expected a mapping, got list"),
    ({"timeout": 0}, "timeout: must be a positive number of seconds, got 0"),
    ({"timeout": -1.5}, "timeout: must be a positive number of seconds, got -1.5"),
    ({"timeout": "30"}, "timeout: expected seconds as a number"),
    ({"name": ""}, "it is empty"),
    ({"name": "x" * 129}, "129 characters long"),
    ({"name": "a/b"}, "path separator"),
    ({"name": "a\\b"}, "path separator"),
    ({"name": "..secret"}, "contains '..'"),
    ({"name": "nul\x00byte"}, "NUL or control character"),
    ({"name": "tab\there"}, "NUL or control character"),
    ({"save_state": "yes"}, "save_state: expected True or False"),
    ({"end_on_error": 1}, "end_on_error: expected True or False"),
    ({"broadcast_callback": 42}, "broadcast_callback: expected a callable"),
    ({"log_file": 3}, "log_file: expected a file path"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_fail_before_anything_runs(
    options: dict[str, Any], message: str, rt_spans: SpanCapture, tmp_path: Path
) -> None:
    ran: list[bool] = []

    with pytest.raises(ConfigurationError, match=None) as caught:

        @rt.session(**options)
        async def flow() -> None:
            ran.append(True)

    assert message in str(caught.value)
    with pytest.raises(ConfigurationError) as again:
        rt.Session(**options)
    assert message in str(again.value)
    with pytest.raises(ConfigurationError):
        rt.set_config(**options)
    assert ran == []
    assert rt_spans.spans() == ()
    assert not (tmp_path / ".railtracks").exists()


def test_a_non_positive_timeout_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="timeout"):
        rt.Session(timeout=0)


def test_unknown_option_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown session option 'color'"):
        rt.set_config(color="red")
    with pytest.raises(TypeError):
        rt.Session(color="red")  # type: ignore[call-arg]  # proving it is refused


def test_session_decorator_refuses_a_sync_function() -> None:
    with pytest.raises(TypeError, match=r"only works on async functions: .*not_async"):

        @rt.session
        def not_async() -> None:
            return None

    with pytest.raises(TypeError, match="async"):

        @rt.session(name="x")
        def also_not_async() -> None:
            return None


def test_defaults() -> None:
    session = rt.Session()
    options = session.options
    assert options.name is None
    assert dict(options.context) == {}
    assert options.timeout is None
    assert options.logging_setting.name == "REGULAR"
    assert options.save_state is True
    assert options.end_on_error is False
    assert options.log_file is None
    assert options.broadcast_callback is None
    assert session.status == "pending"


def test_precedence_argument_then_set_config_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAILTRACKS_LOGGING_SETTING", "verbose")
    monkeypatch.setenv("RAILTRACKS_SAVE_STATE", "0")
    assert rt.Session().options.logging_setting.name == "VERBOSE"
    assert rt.Session().options.save_state is False
    rt.set_config(logging_setting="quiet", save_state=True, timeout=9, name="defaulted")
    assert rt.Session().options.logging_setting.name == "QUIET"
    assert rt.Session().options.save_state is True
    assert rt.Session().options.timeout == 9
    explicit = rt.Session(logging_setting="NONE", timeout=1, name="mine")
    assert explicit.options.logging_setting.name == "NONE"
    assert (explicit.options.timeout, explicit.name) == (1, "mine")
    assert rt.Session(timeout=None).options.timeout is None


def test_set_config_applies_to_decorated_sessions_at_call_time() -> None:
    @rt.session
    async def flow() -> str | None:
        current = rt.current_session()
        assert current is not None
        return current.options.logging_setting.name

    rt.set_config(logging_setting="NONE", save_state=False)
    (setting, session) = asyncio.run(flow())
    assert setting == "NONE"
    assert session.state_path is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RAILTRACKS_LOGGING_SETTING", "chatty"), ("RAILTRACKS_SAVE_STATE", "maybe")],
)
def test_invalid_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        rt.Session()


def test_logging_setting_aliases_are_case_insensitive() -> None:
    expected = {
        "debug": "VERBOSE",
        "Verbose": "VERBOSE",
        "INFO": "REGULAR",
        "regular": "REGULAR",
        "warning": "QUIET",
        "ERROR": "QUIET",
        "quiet": "QUIET",
        "none": "NONE",
    }
    for given, name in expected.items():
        assert rt.Session(logging_setting=given).options.logging_setting.name == name


def test_every_session_gets_a_fresh_uuid4() -> None:
    @rt.session(logging_setting="NONE", save_state=False)
    async def flow() -> None:
        return None

    ids = {asyncio.run(flow())[1].identifier for _ in range(5)}
    ids |= {rt.Session().identifier for _ in range(5)}
    assert len(ids) == 10
    session = rt.Session()
    assert session._identifier == session.identifier


def test_a_session_object_cannot_be_entered_twice() -> None:
    session = rt.Session(logging_setting="NONE", save_state=False)
    with session:
        pass
    with pytest.raises(RuntimeError, match="entered only once"), session:
        pass


def test_session_attributes_after_the_run() -> None:
    @rt.session(name="attrs", context={"k": "v"}, logging_setting="NONE")
    async def flow() -> str:
        current = rt.current_session()
        assert current is not None
        assert current.status == "running"
        assert current.ended_at is None
        return "ok"

    _, session = asyncio.run(flow())
    assert session.status == "completed"
    assert session.started_at is not None
    assert session.ended_at is not None
    assert session.ended_at >= session.started_at
    assert session.duration is not None
    assert 0 <= session.duration < 5
    assert session.trace_id is not None
    assert len(session.trace_id) == 32
    int(session.trace_id, 16)
    assert dict(session.context) == {"k": "v"}
    assert session.state is not None
    assert session.state_path == Path(".railtracks/attrs.json")
    assert session.error is None
