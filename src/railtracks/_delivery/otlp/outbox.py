"""The durable outbox: OTLP trace requests that could not be delivered yet (SPEC 5, 7).

Layout, under ``{state dir}/outbox/``: one directory per (protocol, endpoint),
named by a hash of both, holding ``endpoint.json`` (what it is for), one file
per batch, the ``ExportTraceServiceRequest`` bytes exactly as they would have
been sent, and ``quarantine/`` (batches set aside, see ``quarantine``)::

    {unix ns:020d}-{pid}-{seq:06d}-{spans}.otlp          waiting
    {...}.otlp.sending-{pid}                             claimed by process pid
    {...}.otlp.indoubt                                   sent, answer unknown

At most once per endpoint: a file is claimed by an atomic rename before it is
sent and removed once the collector accepted it, so two processes never send
the same file. A batch whose request timed out, or whose claiming process
died, may have reached the collector: it is *in doubt* and not re-sent on its
own (``railtracks outbox send --in-doubt`` sends it anyway). Files are written
to a temporary name, fsynced and renamed, so a crash never leaves a torn batch.
The directory is bounded in bytes (``RAILTRACKS_OUTBOX_MAX_BYTES``, default 256
MiB per endpoint): the oldest waiting batches are evicted, and counted, to make
room for new ones.

The outbox is untrusted on disk (``files``): only regular files of the
expected name, owned by this user and within ``file_bound`` bytes, in a
directory of this user's writable by nobody else, are listed and read;
anything else named like a batch is skipped (``skipped``), never opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

from ...errors import ConfigurationError
from .files import (
    MAX_FILE_BYTES,
    Untrusted,
    checked_directory,
    directory_problem,
    file_problem,
    prepare_directory,
    read_file,
    write_atomically,
)
from .quarantine import Quarantine

DEFAULT_MAX_BYTES: Final = 256 * 1024 * 1024
ENV_MAX_BYTES: Final = "RAILTRACKS_OUTBOX_MAX_BYTES"
SUFFIX: Final = ".otlp"
IN_DOUBT: Final = ".indoubt"
_SENDING: Final = ".sending-"
_META: Final = "endpoint.json"
_META_MAX_BYTES: Final = 4096
_KEY_LENGTH: Final = 16
_STALE_TMP_SECONDS: Final = 3600.0
_RESCAN_SECONDS: Final = 5.0
_SEQUENCE = itertools.count()


def max_bytes_from_env() -> int:
    """``RAILTRACKS_OUTBOX_MAX_BYTES`` (a positive integer), or the default."""
    raw = os.environ.get(ENV_MAX_BYTES, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigurationError(f"{ENV_MAX_BYTES}: expected a positive integer, got {raw!r}")
    return value


def endpoint_key(endpoint: str, protocol: str) -> str:
    return hashlib.sha256(f"{protocol} {endpoint}".encode()).hexdigest()[:_KEY_LENGTH]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One spooled batch."""

    path: Path
    created_ns: int
    spans: int
    size: int

    @property
    def in_doubt(self) -> bool:
        return self.path.name.endswith(IN_DOUBT)


def _parse(path: Path) -> tuple[int, int] | None:
    """``(created_ns, spans)`` from a batch file's name, None for anything else."""
    name = path.name.split(SUFFIX, 1)[0]
    parts = name.split("-")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[3])


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class Outbox:
    """The spool of one endpoint; safe to share between threads and processes."""

    def __init__(self, root: Path, endpoint: str, protocol: str, max_bytes: int) -> None:
        self.root = root
        self.endpoint = endpoint
        self.protocol = protocol
        self.max_bytes = max_bytes
        self.directory = root / endpoint_key(endpoint, protocol)
        self.file_bound = MAX_FILE_BYTES
        self.quarantine = Quarantine(self.directory, max_bytes)
        self.evicted_spans = 0
        self.skipped: dict[str, str] = {}  # name: why, of the last listing
        self.untrusted: str | None = None  # why the directory itself is not read
        self._unreadable: dict[str, str] = {}  # name: why, of what failed the checks once read
        self._lock = threading.Lock()
        self._total: int | None = None  # bytes on disk, rescanned every few seconds
        self._scanned = 0.0

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # the parent's thread may have held it at the fork
        self.quarantine.after_fork_in_child()

    # -- writing -------------------------------------------------------------------------
    def _prepare(self) -> None:
        prepare_directory(self.directory)  # Untrusted (an OSError) when not ours alone
        if not (self.directory / _META).exists():
            meta = json.dumps({"endpoint": self.endpoint, "protocol": self.protocol})
            write_atomically(self.directory / _META, meta.encode())

    def spool(
        self, data: bytes, spans: int, *, in_doubt: bool = False, created_ns: int | None = None
    ) -> Path:
        """Write one encoded batch (marked in doubt if asked; dated ``created_ns`` to keep
        its place); raises OSError when it cannot be written (disk full)."""
        created = time.time_ns() if created_ns is None else created_ns
        name = f"{created:020d}-{os.getpid()}-{next(_SEQUENCE):06d}-{spans}{SUFFIX}"
        if in_doubt:
            name += IN_DOUBT
        with self._lock:
            self._prepare()
            self._make_room(len(data))
            target = self.directory / name
            write_atomically(target, data)
            return target

    def set_aside(self, data: bytes, spans: int, reason: str) -> bool:
        """Keep a batch in this endpoint's quarantine (see ``Quarantine.keep``)."""
        with self._lock:
            self._prepare()  # listed by endpoint, like the outbox
        return self.quarantine.keep(data, spans, reason)

    def mark_in_doubt(self, path: Path) -> Path | None:
        """Mark a waiting or claimed batch in doubt (its request timed out); its new path."""
        base = path.name.rsplit(_SENDING, 1)[0].removesuffix(IN_DOUBT)
        target = self.directory / (base + IN_DOUBT)
        try:
            os.replace(path, target)
        except OSError:
            return None
        return target

    def clear_doubt(self, path: Path) -> None:
        """An in doubt batch the collector certainly did not take: waiting again."""
        if path.name.endswith(IN_DOUBT):
            with contextlib.suppress(OSError):
                os.replace(path, path.with_name(path.name.removesuffix(IN_DOUBT)))

    def read(self, path: Path, listed: Path | None = None) -> bytes:
        """A batch's bytes, if it is a file the outbox may read (else ``Untrusted``, and
        the batch, by its ``listed`` name, is left out of later listings)."""
        try:
            return read_file(self.directory, path.name, self.file_bound)
        except Untrusted as exc:
            self._unreadable[(listed or path).name] = str(exc)
            raise

    def _make_room(self, incoming: int) -> None:
        now = time.monotonic()
        recent = self._total is not None and now - self._scanned < _RESCAN_SECONDS
        if recent and self._total is not None and self._total + incoming <= self.max_bytes:
            self._total += incoming
            return
        entries = self.entries()
        total = sum(e.size for e in entries) + incoming
        for entry in entries:
            if total <= self.max_bytes:
                break
            if entry.in_doubt:
                continue
            with contextlib.suppress(OSError):
                entry.path.unlink()
                total -= entry.size
                self.evicted_spans += entry.spans
        self._total, self._scanned = total, now

    def forget(self, path: Path) -> bool:
        """Remove a waiting file nobody claimed (its spans were delivered after all)."""
        try:
            path.unlink()
        except OSError:
            return False
        return True

    # -- reading ---------------------------------------------------------------------------
    def entries(self, *, include_claimed: bool = False) -> list[Entry]:
        """Batches waiting or in doubt (and claimed ones, if asked), oldest first.

        What is named like a batch but is not a regular file of this user's
        within ``file_bound`` is left out, noted in ``skipped``; a directory
        that is not this user's alone is not listed at all (``untrusted``).
        """
        found: list[Entry] = []
        self.skipped = {}
        self.untrusted = checked_directory(self.directory)
        if self.untrusted is not None:
            return found
        try:
            with os.scandir(self.directory) as listing:
                items = list(listing)
        except OSError:
            return found
        now = time.time()
        for item in items:
            name = item.name
            if name.startswith(".tmp-"):
                with contextlib.suppress(OSError):
                    status = item.stat(follow_symlinks=False)
                    if now - status.st_mtime > _STALE_TMP_SECONDS:
                        os.unlink(item.path)
                continue
            claimed = _SENDING in name
            if not (name.endswith((SUFFIX, IN_DOUBT)) or claimed):
                continue
            parsed = _parse(Path(name))
            if parsed is None:
                continue
            try:
                status = item.stat(follow_symlinks=False)
            except OSError:
                continue
            problem = file_problem(status, self.file_bound) or self._unreadable.get(name)
            if problem is not None:
                self.skipped[name] = problem
                continue
            if claimed and not include_claimed:
                continue
            found.append(Entry(Path(item.path), parsed[0], parsed[1], status.st_size))
        found.sort(key=lambda e: e.path.name)
        return found

    def recover(self) -> int:
        """Mark the batches of senders that died mid-request as in doubt; returns their spans."""
        spans = 0
        for entry in self.entries(include_claimed=True):
            name = entry.path.name
            if _SENDING not in name:
                continue
            pid = name.rsplit(_SENDING, 1)[1]
            if pid.isdigit() and not _alive(int(pid)):
                base = name.rsplit(_SENDING, 1)[0]
                with contextlib.suppress(OSError):
                    os.replace(entry.path, self.directory / (base + IN_DOUBT))
                    spans += entry.spans
        return spans

    # -- delivering --------------------------------------------------------------------------
    def claim(self, entry: Entry) -> Path | None:
        """Take a batch for sending (atomic rename); None when another process has it."""
        base = entry.path.name.removesuffix(IN_DOUBT)
        if not base.endswith(SUFFIX):
            base += SUFFIX
        claimed = self.directory / f"{base}{_SENDING}{os.getpid()}"
        try:
            os.rename(entry.path, claimed)
        except OSError:
            return None
        return claimed

    def release(self, claimed: Path) -> None:
        """Put a claimed batch back (the collector did not take it)."""
        base = claimed.name.rsplit(_SENDING, 1)[0]
        with contextlib.suppress(OSError):
            os.replace(claimed, self.directory / base)

    def done(self, claimed: Path) -> None:
        with contextlib.suppress(OSError):
            claimed.unlink()


@dataclasses.dataclass(frozen=True)
class Summary:
    """What waits for one endpoint."""

    endpoint: str
    protocol: str
    files: int
    spans: int
    bytes: int
    oldest_ns: int | None
    in_doubt_spans: int
    set_aside: dict[str, tuple[int, int]]  # reason: (batches, spans), in the quarantine
    skipped: dict[str, str]  # name: why, of what is not read
    untrusted: str | None  # why the directory is not read at all


def outboxes(
    root: Path, max_bytes: int = DEFAULT_MAX_BYTES, problems: dict[Path, str] | None = None
) -> Iterator[Outbox]:
    """Every endpoint's outbox under ``root`` (``endpoint.json`` is untrusted input).

    What is named like an endpoint's directory but is not one of this user's
    alone is left out, noted in ``problems`` when given.
    """
    problems = {} if problems is None else problems
    directories = []
    try:
        with os.scandir(root) as listing:
            for item in listing:
                if len(item.name) != _KEY_LENGTH:
                    continue
                try:
                    problem = directory_problem(item.stat(follow_symlinks=False))
                except OSError as exc:
                    problem = f"cannot be inspected ({exc.strerror})"
                if problem is None:
                    directories.append(Path(item.path))
                else:
                    problems[Path(item.path)] = problem
    except OSError:
        return
    for directory in sorted(directories):
        try:
            meta = json.loads(read_file(directory, _META, _META_MAX_BYTES).decode("utf-8"))
            endpoint, protocol = meta["endpoint"], meta["protocol"]
        except (OSError, ValueError, KeyError, TypeError):  # Untrusted is an OSError
            continue
        if not _valid_endpoint(endpoint) or protocol not in ("grpc", "http/protobuf"):
            continue
        if endpoint_key(endpoint, protocol) != directory.name:
            continue  # a renamed or forged directory is not sent anywhere
        yield Outbox(root, endpoint, protocol, max_bytes)


def _valid_endpoint(endpoint: object) -> bool:
    if not isinstance(endpoint, str) or not endpoint.isprintable() or len(endpoint) > 2048:
        return False
    parsed = urlparse(endpoint)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def summarize(outbox: Outbox) -> Summary:
    """What waits, is in doubt, is set aside or is skipped in one endpoint's outbox."""
    entries = outbox.entries(include_claimed=True)
    set_aside: dict[str, tuple[int, int]] = {}
    if outbox.untrusted is None:
        for kept in outbox.quarantine.entries():
            batches, spans = set_aside.get(kept.reason, (0, 0))
            set_aside[kept.reason] = (batches + 1, spans + kept.spans)
    return Summary(
        endpoint=outbox.endpoint,
        protocol=outbox.protocol,
        files=len(entries),
        spans=sum(e.spans for e in entries),
        bytes=sum(e.size for e in entries),
        oldest_ns=min((e.created_ns for e in entries), default=None),
        in_doubt_spans=sum(e.spans for e in entries if e.in_doubt),
        set_aside=set_aside,
        skipped=dict(outbox.skipped),
        untrusted=outbox.untrusted,
    )
