"""The pytest plugin railtracks registers (entry point ``pytest11``): the ``rt_spans`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import SpanCapture, capture_spans


@pytest.fixture
def rt_spans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanCapture]:
    """Capture every railtracks span finished during the test (see ``railtracks.testing``).

    The test's saved states go to a temporary directory and its console lines
    to ``rt_spans.console_output()``: the user's ``.railtracks/`` and terminal
    are left alone.
    """
    with capture_spans(isolate_in=tmp_path_factory.mktemp("railtracks-states")) as capture:
        yield capture
