"""The outbox's files: untrusted on disk, written atomically (SPEC 5).

Only regular files owned by this user, within a size bound, in a directory
that is a real directory owned by this user and writable by nobody else, are
read. A file is opened without following a symbolic link and without blocking
(a FIFO never hangs the reader), checked on the opened descriptor, and read up
to the bound; anything else raises ``Untrusted`` before a byte is read.
Listings use ``lstat`` only: what they skip is never opened.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
from pathlib import Path
from typing import Final

MAX_FILE_BYTES: Final = 64 * 1024 * 1024  # a batch file railtracks could have written
_SEQUENCE = itertools.count()
_READ: Final = (
    os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | os.O_CLOEXEC
)
_DIRECTORY: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Untrusted(OSError):
    """A path the outbox does not read: what it is instead."""


def directory_problem(status: os.stat_result) -> str | None:
    """Why a directory (by its ``lstat``) is not to be trusted; None when it is."""
    if not stat.S_ISDIR(status.st_mode):
        return "not a directory (a symbolic link?)"
    if status.st_uid != os.geteuid():
        return f"owned by uid {status.st_uid}, not this user"
    if status.st_mode & 0o022:
        return "writable by other users"
    return None


def file_problem(status: os.stat_result, bound: int) -> str | None:
    """Why a file (by its ``lstat`` or ``fstat``) is not to be read; None when it may be."""
    mode = status.st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else None
        return kind or "not a regular file"
    if status.st_uid != os.geteuid():
        return f"owned by uid {status.st_uid}, not this user"
    if status.st_size > bound:
        return f"{status.st_size} bytes, over the bound of {bound}"
    return None


def checked_directory(directory: Path) -> str | None:
    """Why ``directory`` is not to be read from (None: it may be, or it does not exist)."""
    try:
        status = os.lstat(directory)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror})"
    return directory_problem(status)


def read_file(directory: Path, name: str, bound: int) -> bytes:
    """The bytes of ``directory/name`` if it is a file the outbox may read; else ``Untrusted``."""
    directory_fd = os.open(directory, _DIRECTORY)
    try:
        problem = directory_problem(os.fstat(directory_fd))
        if problem is not None:
            raise Untrusted(f"{directory}: {problem}")
        try:
            fd = os.open(name, _READ, dir_fd=directory_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Untrusted(f"{name}: a symbolic link") from None
            raise
        try:
            status = os.fstat(fd)
            problem = file_problem(status, bound)
            if problem is not None:
                raise Untrusted(f"{name}: {problem}")
            chunks = []
            left = min(status.st_size, bound) + 1  # one byte more shows a file that grew
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
            if len(data) > bound:
                raise Untrusted(f"{name}: grew over the bound of {bound} bytes")
            return data
        finally:
            os.close(fd)
    finally:
        os.close(directory_fd)


def write_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename: readers never see a torn file."""
    temporary = target.with_name(f".tmp-{os.getpid()}-{next(_SEQUENCE)}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def prepare_directory(directory: Path) -> None:
    """Create ``directory`` (mode 0700) if needed; ``Untrusted`` if it is not ours alone."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    problem = checked_directory(directory)
    if problem is not None:
        raise Untrusted(f"{directory}: {problem}")
