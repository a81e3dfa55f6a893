"""railtracks' pytest plugin (entry point ``pytest11``): ``rt_spans`` and ``rt_replay``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from ._runtime.replay import RecordedRun
from .testing import SpanCapture, capture_spans
from .testing._replay import RunSource, replay


@pytest.fixture
def rt_spans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanCapture]:
    """Capture every railtracks span finished during the test (see ``railtracks.testing``).

    The test's saved states go to a temporary directory and its console lines
    to ``rt_spans.console_output()``: the user's ``.railtracks/`` and terminal
    are left alone.
    """
    with capture_spans(isolate_in=tmp_path_factory.mktemp("railtracks-states")) as capture:
        yield capture


@pytest.fixture
def rt_replay() -> Iterator[Callable[..., RecordedRun]]:
    """``rt_replay(run, nodes=None, strict=True)``: replay ``run`` for the rest of the test.

    The same as ``with rt.testing.replay(...)`` around the rest of the test body.
    """
    with contextlib.ExitStack() as stack:

        def start(
            run: RunSource,
            nodes: Iterable[Callable[..., Any] | str] | None = None,
            *,
            strict: bool = True,
        ) -> RecordedRun:
            return stack.enter_context(replay(run, nodes, strict=strict))

        yield start
