"""A session's ``log_file``: a loguru sink that a full or broken disk can never turn into an error.

loguru's own file sink reports a failed write with a 40-line traceback per
record on stderr, and a failed flush at removal raises out of the session.
This sink writes each record itself: on the first ``OSError`` it reports one
line (``RT.Session : ERROR - log file ...: ...; its later records are
dropped``), closes the file and drops the session's later records. The file
is created with mode 0600 (it may hold inputs and outputs, even redacted),
its directory with 0700 when railtracks creates it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .._files import DIR_MODE, FILE_MODE

if TYPE_CHECKING:
    from loguru import Message


class LogFileSink:
    """Appends formatted records to one file; gives up, once and quietly, on the first error."""

    def __init__(self, path: Path, on_error: Callable[[str], None]) -> None:
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        self._path = path
        self._file: IO[str] | None = os.fdopen(fd, "a", encoding="utf-8", errors="replace")
        self._on_error = on_error
        self._lock = threading.Lock()

    def write(self, message: Message) -> None:
        with self._lock:
            handle = self._file
            if handle is None:
                return
            try:
                handle.write(str(message))
                handle.flush()
                return
            except (OSError, ValueError) as exc:
                failure = exc
                self._file = None
                with contextlib.suppress(OSError, ValueError):
                    handle.close()
        # outside the lock: the report is itself a record
        self._on_error(f"log file {self._path}: {failure}; its later records are dropped")

    def close(self) -> None:
        with self._lock:
            handle, self._file = self._file, None
        if handle is not None:
            try:
                handle.close()
            except (OSError, ValueError) as exc:  # the last flush hit a full disk
                self._on_error(f"log file {self._path}: {exc}; its last records are lost")
