"""The public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import inspect

import railtracks as rt
from railtracks import errors


def test_all_is_exactly_the_spec_surface() -> None:
    assert sorted(rt.__all__) == sorted(
        [
            "function_node",
            "call",
            "session",
            "Session",
            "context",
            "set_config",
            "configure",
            "flush",
            "flush_async",  # issue 8: the awaitable flush, never blocking the event loop
            "broadcast",
            "session_id",
            "current_session",
            "load_state",
            "session_carrier",
            "session_segment",
            "merge_segment",
            "record_usage",  # issue 23: a model call no instrumentation sees (SPEC 15)
            "errors",
            "testing",
            "__version__",
        ]
    )
    for name in rt.__all__:
        assert hasattr(rt, name), name


def test_submodule_surfaces() -> None:
    assert sorted(rt.context.__all__) == [
        "as_dict",
        "delete",
        "get",
        "items",
        "keys",
        "put",
        "update",
    ]
    assert sorted(rt.errors.__all__) == [
        "CarrierError",
        "ConfigurationError",
        "ContextError",
        "GlobalTimeOutError",
        "NodeSerializationError",
        "RailtracksError",
        "RemoteCallError",
        "ReplayMismatchError",
        "StateError",
        "StateNotFoundError",
        "WorkerLostError",
    ]
    assert sorted(rt.testing.__all__) == [
        "SpanCapture",
        "capture_spans",
        "replay",
        "reset",
        "span_tree",
    ]
    import railtracks.view

    assert railtracks.view.__all__ == []  # the viewer is a command, not an API


def test_error_hierarchy() -> None:
    assert issubclass(errors.GlobalTimeOutError, errors.RailtracksError)
    assert issubclass(errors.GlobalTimeOutError, TimeoutError)
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.ContextError, errors.RailtracksError)
    assert issubclass(errors.StateNotFoundError, FileNotFoundError)
    assert issubclass(errors.StateNotFoundError, errors.StateError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.RailtracksError)


def test_public_callables_are_documented() -> None:
    for name in rt.__all__:
        value = getattr(rt, name)
        if callable(value) and not inspect.isclass(value):
            assert inspect.getdoc(value), f"rt.{name} has no docstring"
    assert inspect.getdoc(rt.Session)


def test_version_is_a_string() -> None:
    assert rt.__version__.count(".") == 2


def test_flush_and_its_awaitable_form() -> None:
    assert str(inspect.signature(rt.flush)) == "(timeout: float = 30.0) -> bool"
    assert inspect.iscoroutinefunction(rt.flush_async)
    assert str(inspect.signature(rt.flush_async)) == "(timeout: float = 30.0) -> bool"
