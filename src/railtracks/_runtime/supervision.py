"""What stops a session's nodes: its timeout, ``end_on_error`` and its own end (SPEC 2).

``Supervision`` is the part of ``Session`` that watches the node calls it
runs: the timer, the node tasks started with ``asyncio.gather`` or
``asyncio.create_task`` (cancelled when the session must stop, and when it
ends before them), and the outcome those lead to. ``Session.__init__`` sets
the fields declared here. ``_arm_deadline`` and ``_disarm`` are the one clock
of every session, a ``_remote.segment.Segment`` included.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from .._recording import attributes as attr
from .._recording import spans as _spans
from ..errors import GlobalTimeOutError

if TYPE_CHECKING:
    from .options import SessionOptions


class Supervision:
    """Timeout, ``end_on_error`` and detached node tasks of one session."""

    _options: SessionOptions
    # the state before the session starts; set on the instance as it runs
    ended = False
    loop: asyncio.AbstractEventLoop | None = None  # where the session runs
    task: asyncio.Task[Any] | None = None  # the session's own task
    _timer: asyncio.TimerHandle | None = None
    _deadline: float | None = None  # time.monotonic() when the session times out
    cancel_reason: str | None = None  # why its nodes must stop: timeout or failed
    _cancelled_task: asyncio.Task[Any] | None = None
    _first_error: BaseException | None = None
    # node spans open in tasks other than the session's own (gather, create_task)
    _node_tasks: dict[asyncio.Task[Any], list[trace.Span]]

    def _arm_deadline(self, seconds: float | None) -> None:
        """Start the clock: the session may run ``seconds`` more (None: no limit).

        Notes the running loop and task, what a timeout or ``end_on_error``
        cancels. Outside any event loop (a plain ``with``) there is no timer:
        each node call checks the deadline as it starts.
        """
        try:
            self.loop = asyncio.get_running_loop()
            self.task = asyncio.current_task(self.loop)
        except RuntimeError:
            self.loop = None
        if seconds is None:
            return
        self._deadline = time.monotonic() + seconds
        if self.loop is not None:
            self._timer = self.loop.call_later(
                max(seconds, 0), self._interrupt, attr.STATUS_TIMEOUT
            )

    def _disarm(self) -> None:
        """The session ends: its timer stops, and the one ``cancel()`` it made is balanced."""
        self.ended = True
        if self._timer is not None:
            self._timer.cancel()
        if self._cancelled_task is not None:
            self._cancelled_task.uncancel()

    def time_left(self) -> float | None:
        """Internal: seconds before the session times out (None: no timeout), for carriers."""
        if self._deadline is None:
            return None
        return self._deadline - time.monotonic()

    def _interrupt(self, reason: str) -> None:
        """Loop callback: stop everything the session runs (timeout or end_on_error)."""
        if self.ended:
            return
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self._cancel_nodes()
        task = self.task
        if (
            self._cancelled_task is None  # once: _finish balances exactly one cancel()
            and task is not None
            and not task.done()
            and task is not asyncio.current_task()
        ):
            task.cancel()
            self._cancelled_task = task

    def _cancel_nodes(self) -> None:
        current = asyncio.current_task() if self.loop is not None else None
        for task in list(self._node_tasks):
            if task is not current and not task.done():
                task.cancel()

    def check_running(self) -> None:
        """Raise if the session must not start another node (timed out or ended on error)."""
        if self.cancel_reason is None:
            if self._deadline is None or time.monotonic() < self._deadline:
                return
            self.cancel_reason = attr.STATUS_TIMEOUT
            self._cancel_nodes()
        if self.cancel_reason == attr.STATUS_TIMEOUT:
            raise GlobalTimeOutError(self._options.timeout or 0.0, self._options.name)
        assert self._first_error is not None  # the only other reason
        raise self._first_error

    def node_failed(self, exc: BaseException) -> None:
        """A node raised: with ``end_on_error`` the first such error ends the session."""
        if not self._options.end_on_error or self.cancel_reason is not None:
            return
        self._first_error = exc
        self.cancel_reason = attr.STATUS_FAILED
        if self._timer is not None:
            self._timer.cancel()  # the session now ends on this error, not on its timeout
        if self.loop is not None:
            # From a callback, not here: cancelling the running task would leave
            # a cancellation pending past the session's end.
            self.loop.call_soon(self._interrupt, attr.STATUS_FAILED)

    def register_node(self, task: asyncio.Task[Any], span: trace.Span) -> None:
        open_spans = self._node_tasks.get(task)
        if open_spans is None:
            self._node_tasks[task] = [span]
        else:
            open_spans.append(span)

    def unregister_node(self, task: asyncio.Task[Any], span: trace.Span) -> None:
        open_spans = self._node_tasks.get(task)
        if open_spans is None:
            return
        if len(open_spans) == 1:
            del self._node_tasks[task]
        else:
            open_spans.remove(span)

    def _end_detached_nodes(self) -> None:
        """Cancel node tasks still running at the end, and end their spans now.

        A node started with ``asyncio.create_task`` and never awaited would
        otherwise outlive its session (and its timeout) and miss its state.
        """
        for task, open_spans in list(self._node_tasks.items()):
            if not task.done():
                task.cancel()
            for span in reversed(open_spans):
                if span.is_recording():
                    _spans.mark_interrupted(
                        span, attr.STATUS_CANCELLED, "CancelledError: the session ended first"
                    )
                    span.end()
        self._node_tasks.clear()

    def _outcome(self, exc: BaseException | None) -> tuple[str, BaseException | None]:
        """The final status, and the exception to raise instead of ``exc`` (if any)."""
        reason = self.cancel_reason
        if reason == attr.STATUS_TIMEOUT:
            if isinstance(exc, GlobalTimeOutError):
                return attr.STATUS_TIMEOUT, None
            return attr.STATUS_TIMEOUT, GlobalTimeOutError(
                self._options.timeout or 0.0, self._options.name
            )
        if reason == attr.STATUS_FAILED:
            first = self._first_error
            return attr.STATUS_FAILED, (None if exc is first else first)
        if exc is None:
            return attr.STATUS_COMPLETED, None
        if isinstance(exc, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt):
            return attr.STATUS_CANCELLED, None
        return attr.STATUS_FAILED, None
