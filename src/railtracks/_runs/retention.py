"""Keeping the newest N runs of a state directory (``RAILTRACKS_STATE_MAX_RUNS``, SPEC 6).

The writer thread keeps one ``RunIndex`` per directory: the directory is
scanned once per process (when retention first applies there), and from then
on the index is kept up to date by this process's own writes, so a save never
lists the directory. Only railtracks states are ever counted or deleted: a
regular ``*.json`` file (never a symlink, never followed) whose content begins
with a ``schema_version`` member. Any other file is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections import OrderedDict
from pathlib import Path
from typing import Final

# Every railtracks state begins with its head, ``schema_version`` first (``_runs.head``).
_STATE_HEAD: Final = re.compile(rb'^\{\s*"schema_version"\s*:')
_HEAD_BYTES: Final = 64
_NO_FOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_NON_BLOCKING: Final = getattr(os, "O_NONBLOCK", 0)


def is_state_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a symlink) that begins like a railtracks state."""
    if not path.name.endswith(".json") or path.name.startswith("."):
        return False
    try:
        # O_NOFOLLOW: a symlink is refused, never read through; O_NONBLOCK: a FIFO never hangs
        fd = os.open(path, os.O_RDONLY | _NO_FOLLOW | _NON_BLOCKING)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return _STATE_HEAD.match(os.read(fd, _HEAD_BYTES)) is not None
    except OSError:
        return False
    finally:
        os.close(fd)


def scan_states(directory: Path) -> list[str]:
    """The names of the state files in ``directory``, oldest first (by modification time)."""
    found: list[tuple[int, str]] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            modified = entry.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        if is_state_file(Path(entry.path)):
            found.append((modified, name))
    found.sort()
    return [name for _, name in found]


class RunIndex:
    """The state files of one directory, oldest first: scanned once, then kept by our writes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._names: OrderedDict[str, None] = OrderedDict.fromkeys(scan_states(directory))

    def __len__(self) -> int:
        return len(self._names)

    def written(self, name: str, keep: int) -> list[str]:
        """``name`` was just written: it is the newest; delete the oldest beyond ``keep``.

        Returns the names deleted. A file that is no longer a state (replaced
        meanwhile by something else, or by a symlink) is dropped from the index
        and left alone.
        """
        self._names.pop(name, None)
        self._names[name] = None
        deleted: list[str] = []
        while len(self._names) > keep:
            oldest, _ = self._names.popitem(last=False)
            path = self.directory / oldest
            if is_state_file(path):
                with contextlib.suppress(OSError):  # gone already, or not ours to remove
                    os.unlink(path)  # unlink never follows a symlink; is_state_file refused one
                deleted.append(oldest)
        return deleted
