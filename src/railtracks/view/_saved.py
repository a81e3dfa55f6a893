"""Saved runs: state files of the state directory, read as untrusted input.

Every field is checked before use; unknown fields are ignored and optional
ones may be missing, so states written by newer railtracks versions (foreign
spans, limit counts, sampling markers) still show. A file that is not a state
is listed as unreadable. Parsed runs are cached by file size and mtime.
"""

from __future__ import annotations

import gc
import json
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final

from .._runs.head import read_head
from .._runs.pending import wait_for_directory
from .._runs.recover import settle
from .._runs.state import READABLE_SCHEMA_VERSIONS
from ..errors import StateError
from ._model import Run, Span
from ._values import error_of, events_of, kind_of, nanos, shown, shown_mapping, status_of, text

_SPAN_ID: Final = re.compile(r"[0-9a-f]{16}")
_TRACE_ID: Final = re.compile(r"[0-9a-f]{32}")
_MAX_FILE_BYTES: Final = 1 << 30
# Parsed runs kept: at most 4, and at most 250,000 spans in all (a parsed
# 100,000-node run holds 250-400 MB); the most recent one always stays.
_CACHED_RUNS: Final = 4
_CACHED_SPANS: Final = 250_000


# Record fields the page shows in places of their own.
_SHOWN: Final = frozenset(
    {
        "name", "span_id", "parent_span_id", "status", "kind", "start_time_unix_nano",
        "end_time_unix_nano", "duration_seconds", "context", "error", "context_changes",
        "events", "attributes", "input", "output", "children", "answer", "span_name", "trace_id",
        "final_context",
    }
)  # fmt: skip


class StateUnreadable(Exception):
    """The file is not a railtracks state this viewer can read."""


def _span_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _SPAN_ID.fullmatch(value) else None


def _is_foreign(record: dict[str, Any]) -> bool:
    marker = record.get("foreign")
    if marker is True:
        return True
    return "foreign" in (record.get("origin"), record.get("role"), record.get("source"))


def _span(record: dict[str, Any], role: str, name: str, fallback_id: str) -> Span:
    """What the outline needs; the rest is read from ``raw`` when the span is looked at."""
    return Span(
        span_id=_span_id(record.get("span_id")) or fallback_id,
        parent_id=_span_id(record.get("parent_span_id")),
        name=name,
        status=status_of(record.get("status"), isinstance(record.get("error"), dict)),
        role=role,
        start=nanos(record.get("start_time_unix_nano")),
        end=nanos(record.get("end_time_unix_nano")),
        raw=record,
    )


def _expand(span: Span) -> None:
    """Read (and redact) a saved span's details from its record."""
    record = span.raw or {}
    span.kind = kind_of(record.get("kind"))
    span.context = shown_mapping(record.get("context"))
    span.context_changes = events_of(record.get("context_changes"))
    span.events = events_of(record.get("events"))
    span.error = error_of(record.get("error"))
    span.attributes = shown_mapping(record.get("attributes"))
    if span.role == "session":
        span.output = shown(record.get("answer"))
        final = record.get("final_context")
        span.final_context = shown_mapping(final) if isinstance(final, dict) else None
    else:
        span.input = shown(record.get("input"))
        span.output = shown(record.get("output"))
    # the session's own fields, and whatever newer railtracks versions add
    # (limit counts, sampling markers, ...), are shown as they are
    span.extra = {
        key: shown({key: value})[key]
        for key, value in record.items()
        if isinstance(key, str) and key not in _SHOWN
    }


def _session_root(session: dict[str, Any], answer: Any, key: str) -> tuple[str, str | None, Span]:
    """``(run name, trace id, root span)`` of a state's session record."""
    name = text(session.get("name")) or text(session.get("identifier")) or key
    trace = session.get("trace_id")
    trace_id = trace if isinstance(trace, str) and _TRACE_ID.fullmatch(trace) else None
    root = _span(session, "session", text(session.get("span_name"), "session"), "0" * 16)
    # the answer is read with the session's other details
    root.raw = {**session, "answer": answer}
    return name, trace_id, root


def summary_from_head(path: Path) -> dict[str, Any] | None:
    """A saved run's row in the runs list, from the head of its file (``_runs.head``).

    A version 2 state says its node count before its nodes, so a run of any
    size is listed without parsing it; None for a file without that head
    (version 1) or whose head the strict reader refuses, which is then read
    whole (the viewer shows what it can of a file ``railtracks runs`` rejects).
    """
    try:
        head = read_head(path)
    except StateError:
        return None
    if head is None:
        return None
    name, trace_id, root = _session_root(head.session, head.answer, path.stem)
    run = Run("saved", path.stem, name, trace_id, {root.span_id: root}, root_id=root.span_id)
    summary = run.summary()
    summary["nodes"] = head.nodes
    summary["spans"] = head.nodes + 1
    return summary


def run_from_state(document: Any, key: str) -> Run:
    """The run of a saved state document (already parsed JSON, untrusted)."""
    if (
        not isinstance(document, dict)
        or document.get("schema_version") not in READABLE_SCHEMA_VERSIONS
    ):
        raise StateUnreadable("not a railtracks state (schema_version 1 or 2)")
    session = document.get("session")
    nodes = document.get("nodes")
    if not isinstance(nodes, list) or not (session is None or isinstance(session, dict)):
        raise StateUnreadable("no session record or node list")
    spans: dict[str, Span] = {}
    root_id: str | None = None
    name = key
    trace_id: str | None = None
    if isinstance(session, dict):
        name, trace_id, root = _session_root(session, document.get("answer"), key)
        spans[root.span_id] = root
        root_id = root.span_id
    stack: list[tuple[Any, str | None]] = [(node, root_id) for node in reversed(nodes)]
    while stack:
        record, parent = stack.pop()
        if not isinstance(record, dict):
            continue
        role = "foreign" if _is_foreign(record) else "node"
        span = _span(record, role, text(record.get("name"), "node"), f"{len(spans):016x}")
        if span.parent_id is None or span.parent_id not in spans:
            span.parent_id = parent
        if span.span_id in spans:
            continue  # a duplicated id in a hostile file: the first one stands
        spans[span.span_id] = span
        children = record.get("children")
        if isinstance(children, list):
            stack.extend((child, span.span_id) for child in reversed(children))
    return Run("saved", key, name, trace_id, spans, root_id=root_id, expand=_expand)


def read_run(path: Path) -> Run:
    """Parse one state file into a run; ``StateUnreadable`` when it is not one."""
    # a state is a large tree of fresh, acyclic containers: the cyclic collector
    # would rescan them over and over while they are built (as in _runs/state.py)
    paused = gc.isenabled()
    gc.disable()
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise StateUnreadable("larger than 1 GiB")
        document = json.loads(path.read_bytes().decode("utf-8"))
        return run_from_state(document, path.stem)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise StateUnreadable(f"not readable JSON: {type(exc).__name__}") from exc
    finally:
        if paused:
            gc.enable()


class SavedRuns:
    """The state directory's runs, with parsed runs and summaries cached by (size, mtime)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._summaries: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._runs: OrderedDict[str, tuple[tuple[int, int], Run]] = OrderedDict()

    def _files(self) -> list[Path]:
        wait_for_directory(self.directory)  # states this process is still writing
        settle(self.directory)  # runs whose process died, as crashed states (SPEC 13)
        try:
            return [p for p in self.directory.glob("*.json") if p.is_file()]
        except OSError:
            return []

    def summaries(self) -> list[dict[str, Any]]:
        result = []
        for path in self._files():
            try:
                stat = path.stat()
            except OSError:
                continue
            stamp = (stat.st_size, stat.st_mtime_ns)
            with self._lock:
                cached = self._summaries.get(path.stem)
            if cached is None or cached[0] != stamp:
                try:
                    summary = summary_from_head(path) or self._load(path, stamp).summary()
                except StateUnreadable as exc:
                    summary = {
                        "source": "saved",
                        "key": path.stem,
                        "name": path.stem,
                        "status": "unreadable",
                        "reason": str(exc),
                        "start": None,
                        "start_ms": stat.st_mtime_ns / 1e6,
                        "duration_s": None,
                        "nodes": None,
                    }
                with self._lock:
                    self._summaries[path.stem] = (stamp, summary)
                cached = (stamp, summary)
            result.append(cached[1])
        return result

    def _load(self, path: Path, stamp: tuple[int, int]) -> Run:
        run = read_run(path)
        # A 100,000-node run is about a million containers. Frozen, they are left
        # out of the collector's full passes, which would otherwise rescan them
        # all during later requests (half a second each); refcounting still frees
        # them when the run leaves the cache.
        gc.freeze()
        with self._lock:
            self._runs[path.stem] = (stamp, run)
            self._runs.move_to_end(path.stem)
            while len(self._runs) > 1 and (
                len(self._runs) > _CACHED_RUNS
                or sum(len(r.spans) for _, r in self._runs.values()) > _CACHED_SPANS
            ):
                self._runs.popitem(last=False)
        return run

    def get(self, key: str) -> Run | None:
        """The run saved as ``{key}.json``, or None (missing, unreadable, or not a plain name)."""
        if not key or "/" in key or "\\" in key or key.startswith(".") or "\0" in key:
            return None
        path = self.directory / f"{key}.json"
        wait_for_directory(self.directory)
        try:
            stat = path.stat()
        except (OSError, ValueError):
            return None
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._runs.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            return self._load(path, stamp)
        except StateUnreadable:
            return None


def resolve(run: str, directory: Path) -> Path | None:
    """A RUN argument as a state file: an existing path, else a name in ``directory``."""
    wait_for_directory(directory)
    candidate = Path(run)
    if candidate.is_file():
        return candidate
    if os.sep not in run and "/" not in run:
        named = directory / (run if run.endswith(".json") else f"{run}.json")
        if named.is_file():
            return named
    return None
