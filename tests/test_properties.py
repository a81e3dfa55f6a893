"""Property-based invariants (hypothesis) for hostile values, contexts and names.

For any value, context and name: the run's result is unchanged, nothing raises
from telemetry, the saved state is strict JSON that validates against the
published schema, and every span keeps its identity within bounded attributes.
"""

from __future__ import annotations

import asyncio
import io
import json
import unicodedata
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes

import railtracks as rt
from railtracks._logs.terminal import inert
from railtracks._recording import attributes as attr
from railtracks._recording.encoding import ValueEncoder
from railtracks._runs.schema import published_schema, validate_state
from railtracks.testing import capture_spans

_VALIDATOR = jsonschema.Draft202012Validator(published_schema())
# Text as hostile as Python strings get: controls, lone surrogates, any plane.
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([2**63, -(2**63) - 1])
    | st.builds(pow, st.just(10), st.just(4400))  # past what Python prints in decimal
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(_TEXT, inner, max_size=5)
        | st.tuples(inner, inner)
    ),
    max_leaves=20,
)
_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _strict_load(raw: bytes) -> Any:
    def reject(name: str) -> None:
        raise AssertionError(f"{name} written to the state")

    return json.loads(raw.decode("utf-8"), parse_constant=reject)


@_SETTINGS
@given(context=st.dictionaries(_TEXT, _VALUES, max_size=8), value=_VALUES, name=_TEXT)
def test_any_value_context_and_name(
    tmp_path_factory: Any, context: dict[str, Any], value: Any, name: str
) -> None:
    rt.testing.reset()
    rt.configure(console_stream=io.StringIO(), state_dir=tmp_path_factory.mktemp("states"))
    try:
        session_name: str | None = rt.Session(name=name).name
    except rt.errors.ConfigurationError:
        session_name = None  # rejected at construction, before anything runs

    @rt.function_node(name=name if name.strip() else "node")  # a blank node name is refused
    async def node(x: Any) -> Any:
        rt.context.put(name, x)
        await rt.broadcast(x)
        return x

    @rt.session(name=session_name, context=context, logging_setting="VERBOSE")
    async def flow() -> Any:
        return await rt.call(node, value)

    with capture_spans() as captured:
        result, session = asyncio.run(flow())
    assert result is value  # the run's result is unchanged
    assert session.status == "completed"
    for span in captured.spans(session):
        attributes = span.attributes or {}
        assert attributes[attr.SESSION_ID] == session.identifier
        assert attributes[attr.STATUS] == "completed"
        assert len(attributes) < 128
        assert span.dropped_attributes == 0
        for item in attributes.values():
            assert not isinstance(item, str) or len(item) <= 4096
    assert session.state_path is not None
    assert rt.flush(30)  # the state file is complete once flush returns
    document = _strict_load(session.state_path.read_bytes())
    _VALIDATOR.validate(document)
    validate_state(document)
    assert rt.load_state(session.state_path)["session"]["identifier"] == session.identifier


@_SETTINGS
@given(value=_VALUES)
def test_encoding_is_always_strict_and_bounded(value: Any) -> None:
    encoder = ValueEncoder(limit=256)
    text = encoder.json(value)
    assert len(text) <= 256
    text.encode("utf-8")
    if not text.endswith("...[truncated]"):
        json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(AssertionError(name)))
    encoded = encoder.encode(value)
    if isinstance(encoded, str):
        encoded.encode("utf-8")
        assert len(encoded) <= 256


@_SETTINGS
@given(text=_TEXT)
def test_inert_text_has_no_control_characters(text: str) -> None:
    shown = inert(text)
    for char in shown:
        assert unicodedata.category(char) not in ("Cc", "Cs", "Zl", "Zp"), ascii(shown)
        assert not 0x202A <= ord(char) <= 0x202E
        assert not 0x2066 <= ord(char) <= 0x2069
    if text.isprintable():
        assert shown == text


def test_hypothesis_examples_do_not_leave_files(tmp_path: Path) -> None:
    # the property test writes into its own temporary directories, never the cwd
    assert not (tmp_path / ".railtracks").exists()


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        _TEXT | st.sampled_from(["x", "user_id", "password", "api_key", "ghp_" + "a" * 36]),
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**64), max_value=2**64)
        | st.sampled_from([2**63 - 1, -(2**63), 2**63]),
        max_size=20,
    )
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.none()
    | st.booleans(),
    st.sampled_from([4, 12, 4096]),
    st.booleans(),
)
def test_the_fast_json_path_writes_what_the_cleaner_writes(
    value: Any, limit: int, redact: bool
) -> None:
    encoder = ValueEncoder(limit=limit, redact=redact)
    assert encoder.json(value) == encoder.cleaned_json(value)
    assert encoder.json(value) == encoder.cleaned_json(value)  # the key cache changes nothing


@settings(max_examples=200, deadline=None)
@given(context=st.dictionaries(_TEXT, _VALUES, max_size=8), value=_VALUES)
def test_what_railtracks_writes_on_its_spans_is_what_the_sdk_would_keep(
    context: dict[str, Any], value: Any
) -> None:
    """``_recording.fastspan`` skips the SDK's attribute checks for railtracks' own values:
    they must come through those checks unchanged (same keys, same values, same types)."""
    encoder = ValueEncoder()
    attributes, _ = encoder.context_attributes(attr.CONTEXT_PREFIX, context)
    attributes[attr.NODE_INPUT] = encoder.json(value)
    attributes["railtracks.test.value"] = encoder.encode(value)
    checked = BoundedAttributes(None, attributes, immutable=False)
    assert list(checked) == list(attributes)
    for key, kept in attributes.items():
        assert type(checked[key]) is type(kept)
        assert repr(checked[key]) == repr(kept)  # NaN included
