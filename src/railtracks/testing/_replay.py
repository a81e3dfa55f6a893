"""``rt.testing.replay``: answer node calls from a recorded run, as a test fixture (SPEC 14).

    with rt.testing.replay("checkout-golden", nodes=[ask_llm]):
        result, session = await checkout(order)

Every session started inside the block (implicit ones included) replays the
run: a call whose call key (place and arguments digest) matches a completed
recorded call returns its recorded output without running. ``nodes`` keeps
replay to those nodes (the others run live); with ``strict`` a call of a
replayed node that has no recorded match raises ``ReplayMismatchError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .._runs.store import load_state
from .._runtime.node import as_node
from .._runtime.replay import RecordedRun
from .._runtime.resume import TEST_REPLAYS
from .._runtime.session import Session

RunSource = str | os.PathLike[str] | Session | Mapping[str, Any]


def _state(run: RunSource) -> tuple[Mapping[str, Any], str]:
    if isinstance(run, Session):
        state = run.state
        if state is None:
            raise ValueError("rt.testing.replay(session): the session has not ended yet")
        return state, f"session {run.name or run.identifier!r}"
    if isinstance(run, Mapping):
        return run, "the given state"
    return load_state(run), f"run {os.fspath(run)!r}"


def _names(nodes: Iterable[Callable[..., Any] | str] | None) -> list[str] | None:
    if nodes is None:
        return None
    return [node if isinstance(node, str) else as_node(node).name for node in nodes]


@contextmanager
def replay(
    run: RunSource,
    nodes: Iterable[Callable[..., Any] | str] | None = None,
    *,
    strict: bool = True,
) -> Iterator[RecordedRun]:
    """Answer node calls from ``run`` (a run name, a state file, an ended session or a state).

    ``nodes``: the nodes (or node names) to replay; None replays every node.
    Raises ``rt.errors.StateNotFoundError``/``StateError`` when the run
    cannot be read.
    """
    state, source = _state(run)
    recorded = RecordedRun(state, source=source, nodes=_names(nodes), strict=strict)
    TEST_REPLAYS.append(recorded)
    try:
        yield recorded
    finally:
        TEST_REPLAYS.remove(recorded)
