"""The pytest plugin railtracks registers (entry point ``pytest11``): the ``rt_spans`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import SpanCapture, capture_spans


@pytest.fixture
def rt_spans() -> Iterator[SpanCapture]:
    """Capture every railtracks span finished during the test (see ``railtracks.testing``)."""
    with capture_spans() as capture:
        yield capture
