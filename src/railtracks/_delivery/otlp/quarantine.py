"""Batches set aside: what no collector request can carry, or what a collector refused
for good (SPEC 5, "Nothing blocks the line").

Under an endpoint's outbox, ``quarantine/`` (mode 0700, files 0600) keeps each
set-aside batch, named like an outbox batch with the reason after it::

    {unix ns:020d}-{pid}-{seq:06d}-{spans}.otlp.{reason}

The reasons: ``too-large`` (one span over the request size limit),
``refused`` (HTTP 400, gRPC INVALID_ARGUMENT), ``unreadable`` (an outbox file
that is not a trace request). Nothing here is ever sent again by railtracks:
it is kept for a person to look at (``railtracks outbox`` shows it), bounded
in bytes like the outbox (the oldest evicted first).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Final

from .files import file_problem, prepare_directory, write_atomically

DIRECTORY: Final = "quarantine"
REASONS: Final = ("too-large", "refused", "unreadable")
_SEQUENCE = itertools.count()


@dataclasses.dataclass(frozen=True)
class Kept:
    """One set-aside batch."""

    path: Path
    spans: int
    size: int
    reason: str


def _parse(name: str) -> tuple[int, str] | None:
    """``(spans, reason)`` of a quarantined file's name; None for anything else."""
    base, _, reason = name.partition(".otlp.")
    parts = base.split("-")
    if reason not in REASONS or len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[3]), reason


class Quarantine:
    """The set-aside batches of one endpoint; safe to share between threads and processes."""

    def __init__(self, outbox_directory: Path, max_bytes: int) -> None:
        self.directory = outbox_directory / DIRECTORY
        self.max_bytes = max_bytes
        self.evicted_spans = 0
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def keep(self, data: bytes, spans: int, reason: str, created_ns: int | None = None) -> bool:
        """Write a set-aside batch; False when it alone is over the bound (not kept).

        Raises OSError when it cannot be written.
        """
        if len(data) > self.max_bytes:
            return False
        with self._lock:
            prepare_directory(self.directory)
            self._make_room(len(data))
            write_atomically(self.directory / self._name(spans, reason, created_ns), data)
        return True

    def move(self, path: Path, spans: int, reason: str, created_ns: int, size: int) -> bool:
        """Move an outbox file here unread (an atomic rename); False when it could not be."""
        if size > self.max_bytes:
            return False
        with self._lock:
            try:
                prepare_directory(self.directory)
                self._make_room(size)
                os.rename(path, self.directory / self._name(spans, reason, created_ns))
            except OSError:
                return False
        return True

    def _name(self, spans: int, reason: str, created_ns: int | None) -> str:
        created = time.time_ns() if created_ns is None else created_ns
        return f"{created:020d}-{os.getpid()}-{next(_SEQUENCE):06d}-{spans}.otlp.{reason}"

    def _make_room(self, incoming: int) -> None:
        kept = self.entries()
        total = sum(k.size for k in kept) + incoming
        for old in kept:
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                old.path.unlink()
                total -= old.size
                self.evicted_spans += old.spans

    def entries(self) -> list[Kept]:
        """What is set aside, oldest first (only regular files of the expected name)."""
        found = []
        try:
            with os.scandir(self.directory) as listing:
                for item in listing:
                    parsed = _parse(item.name)
                    if parsed is None:
                        continue
                    status = item.stat(follow_symlinks=False)
                    if file_problem(status, self.max_bytes) is None:
                        found.append(Kept(Path(item.path), parsed[0], status.st_size, parsed[1]))
        except OSError:
            return found
        found.sort(key=lambda k: k.path.name)
        return found
