"""Which saved states are still being written, so that readers in this process can wait.

The state writer (``_runs.writer``) marks a state pending when a session hands
it over and done when its file is complete (renamed into place and the
directory fsync'ed) or its write failed. Readers (``rt.load_state``, the CLI,
the viewer) and ``rt.flush`` wait here first, so no railtracks reader in the
process sees a state missing or older than the session that wrote it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Final

# A reader waits at most this long for a write (a hung disk never hangs a reader for good).
READER_WAIT_SECONDS: Final = 60.0


class PendingWrites:
    """Absolute state paths handed to the writer and not yet complete, with a count each."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._paths: dict[Path, int] = {}
        # read without the lock by the exit drain (an int read is atomic)
        self.count = 0

    def add(self, path: Path) -> None:
        with self._changed:
            self._paths[path] = self._paths.get(path, 0) + 1
            self.count += 1

    def done(self, paths: list[Path]) -> None:
        with self._changed:
            for path in paths:
                left = self._paths.get(path, 0) - 1
                if left > 0:
                    self._paths[path] = left
                else:
                    self._paths.pop(path, None)
            self.count = sum(self._paths.values())
            self._changed.notify_all()

    def has(self, path: Path) -> bool:
        return path in self._paths

    def wait(
        self, *, path: Path | None = None, directory: Path | None = None, timeout: float | None
    ) -> bool:
        """Wait until no write of ``path`` (or in ``directory``, or at all) is pending.

        True when none is; False at the timeout (None: no timeout).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._blocked(path, directory):
                if deadline is None:
                    self._changed.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def _blocked(self, path: Path | None, directory: Path | None) -> bool:
        if path is not None:
            return path in self._paths
        if directory is not None:
            return any(pending.parent == directory for pending in self._paths)
        return bool(self._paths)

    def after_fork_in_child(self) -> None:
        """The parent writes what it had pending; the child starts with nothing."""
        self._changed = threading.Condition(threading.Lock())
        self._paths = {}
        self.count = 0


PENDING = PendingWrites()
os.register_at_fork(after_in_child=PENDING.after_fork_in_child)


def absolute(path: Path) -> Path:
    """``path`` made absolute without touching the disk (the key pending writes are kept by)."""
    return Path(os.path.abspath(path))


def wait_for_state(path: Path, timeout: float = READER_WAIT_SECONDS) -> bool:
    """Wait until the state file ``path`` is not being written by this process."""
    return PENDING.wait(path=absolute(path), timeout=timeout)


def wait_for_directory(directory: Path, timeout: float = READER_WAIT_SECONDS) -> bool:
    """Wait until no state in ``directory`` is being written by this process."""
    return PENDING.wait(directory=absolute(directory), timeout=timeout)


def wait_for_all(timeout: float | None) -> bool:
    """Wait until every state handed to the writer is complete; False at the timeout."""
    return PENDING.wait(timeout=timeout)
