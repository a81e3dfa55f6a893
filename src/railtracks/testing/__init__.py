"""Test your workflows by their spans.

    import railtracks as rt
    from railtracks.testing import capture_spans

    def test_flow():
        with capture_spans() as spans:
            result, session = asyncio.run(flow())
        assert spans.tree(session) == '''
    session checkout
      fetch
      charge [failed]
    '''.strip()

With pytest, the ``rt_spans`` fixture (registered through railtracks' pytest
plugin) gives the same ``SpanCapture``, started before the test and stopped
after it, and isolates the test from the user's files and terminal: saved
states go to a fresh temporary directory (``rt_spans.state_dir``) instead of
``.railtracks/``, and the console lines go to ``rt_spans.console_output()``
instead of stderr (an explicit ``rt.configure(state_dir=..., console_stream=...)``
in the test still wins). ``reset()`` forgets every ``rt.set_config``/
``rt.configure`` setting.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .._config import CONFIG, ENV_STATE_DIR
from .._delivery.telemetry import TELEMETRY
from .._logs.log import LOGS
from .._logs.sinks import console_override
from .._recording import attributes as attr
from ._replay import replay

if TYPE_CHECKING:
    from .._runtime.session import Session

__all__ = ["SpanCapture", "capture_spans", "replay", "reset", "span_tree"]


def _status_label(span: ReadableSpan) -> str:
    status = (span.attributes or {}).get(attr.STATUS)
    return "" if status in (None, attr.STATUS_COMPLETED) else f" [{status}]"


def span_tree(
    spans: Iterable[ReadableSpan], *, attributes: Sequence[str] = (), show_status: bool = True
) -> str:
    """The spans as an indented tree, two spaces a level, children in start order.

    Each line is the span name, then `` [status]`` unless it completed, then
    ``{key=value, ...}`` for each of ``attributes`` the span has.
    """
    spans = list(spans)
    ids = {span.context.span_id for span in spans if span.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: (s.start_time or 0, s.name))
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        line = "  " * depth + span.name
        if show_status:
            line += _status_label(span)
        values = span.attributes or {}
        shown = [f"{key}={values[key]!r}" for key in attributes if key in values]
        if shown:
            line += " {" + ", ".join(shown) + "}"
        lines.append(line)
        assert span.context is not None  # SDK spans always have one
        for child in children.pop(span.context.span_id, []):  # once: ids may repeat
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)


class SpanCapture:
    """Every railtracks span that finishes while the capture is active."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.processor = SimpleSpanProcessor(self.exporter)
        self.state_dir: Path | None = None
        self.console = io.StringIO()

    def console_output(self) -> str:
        """What the console printed while the capture isolated it (``isolate_in``)."""
        return self.console.getvalue()

    def spans(self, session: Session | str | None = None) -> tuple[ReadableSpan, ...]:
        """Finished spans, all or those of one session (a ``Session`` or its trace id)."""
        finished = self.exporter.get_finished_spans()
        if session is None:
            return tuple(finished)
        trace_id = session if isinstance(session, str) else session.trace_id
        return tuple(
            s for s in finished if s.context and format(s.context.trace_id, "032x") == trace_id
        )

    def named(self, name: str) -> list[ReadableSpan]:
        """Finished spans with this name."""
        return [span for span in self.exporter.get_finished_spans() if span.name == name]

    def tree(
        self,
        session: Session | str | None = None,
        *,
        attributes: Sequence[str] = (),
        show_status: bool = True,
    ) -> str:
        """``span_tree`` of the captured spans (of one session's trace when given)."""
        return span_tree(self.spans(session), attributes=attributes, show_status=show_status)

    def clear(self) -> None:
        self.exporter.clear()


@contextmanager
def capture_spans(isolate_in: str | os.PathLike[str] | None = None) -> Iterator[SpanCapture]:
    """Capture railtracks' spans for the duration of the ``with`` block.

    With ``isolate_in`` (a directory), saved states are written there and the
    console goes to ``capture.console`` rather than ``.railtracks/`` and stderr.
    """
    capture = SpanCapture()
    previous_dir = os.environ.get(ENV_STATE_DIR)
    if isolate_in is not None:
        capture.state_dir = Path(isolate_in)
        os.environ[ENV_STATE_DIR] = os.fspath(isolate_in)
        console_override.append(capture.console)
    TELEMETRY.fanout.add(capture.processor)
    try:
        yield capture
    finally:
        TELEMETRY.fanout.remove(capture.processor)
        if isolate_in is not None:
            console_override.remove(capture.console)
            if previous_dir is None:
                os.environ.pop(ENV_STATE_DIR, None)
            else:
                os.environ[ENV_STATE_DIR] = previous_dir


def reset() -> None:
    """Forget ``rt.set_config``/``rt.configure`` settings and once-only warnings."""
    CONFIG.reset()
    LOGS.reset_warnings()
