"""Writing and reading saved states: atomic, durable, strict, and never in the way of a run.

Writing (SPEC 6): the document is encoded as strict RFC 8259 JSON in UTF-8
(see ``encode_state``), written to a temporary file beside the target,
synced, renamed over the target, and the directory fsync'ed so the rename
survives a crash (sessions' states: by the state writer, ``_runs.writer``).
Temporary files are named ``.rt-*.tmp``; a writer holds an advisory lock on
its own while writing, so ``clean_stale_temporaries`` removes only those no
live writer holds (left by a crash). States are created with mode 0600,
directories railtracks creates with 0700 (``_files``).

Reading (SPEC 7): a saved state is untrusted input. ``load_state`` accepts
only strict UTF-8 JSON (no ``NaN``) that validates against the published
schema (``_runs.schema``); anything else is an ``rt.errors.StateError`` saying what
is wrong and where, never a traceback or a ``RecursionError``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from .._config import CONFIG
from .._files import DIR_MODE
from .._gc import gc_paused
from .._recording.encoding import json_int, strict_float, strict_text
from ..errors import StateError, StateNotFoundError
from .head import document_counts
from .pending import wait_for_state
from .schema import SchemaError, validate_state
from .state import READABLE_SCHEMA_VERSIONS
from .tree import NodeWalk

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale files are recognised by age alone
    fcntl = None  # type: ignore[assignment]

TEMP_PREFIX: Final = ".rt-"
JOURNAL_SUFFIX: Final = ".journal"  # run journals (``_runs.journal``)
TEMP_SUFFIX: Final = ".tmp"
# What earlier railtracks versions named their temporary files: `.{name}.XXXXXXXX.tmp`.
_LEGACY_TEMP: Final = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# A temporary file younger than this may belong to a writer that has not locked it yet.
_STALE_AFTER_SECONDS: Final = 2.0
_WRITE_CHUNK: Final = 1 << 20
_STALE_WITHOUT_LOCKS_SECONDS: Final = 600.0


def state_path(name: str | None, identifier: str, state_dir: Path | None = None) -> Path:
    """``{state_dir}/{name}.json``, or ``{identifier}.json`` for an unnamed session."""
    return (state_dir or CONFIG.state_dir()) / f"{name or identifier}.json"


def _strict(value: Any) -> Any:  # noqa: PLR0911  # one exit per JSON type
    """A copy of a JSON-like value that strict JSON can carry (see ``encode_state``)."""
    kind = type(value)
    if kind is str:
        return strict_text(value)
    if kind is float:
        return strict_float(value)
    if kind is int:
        return json_int(value)
    if kind is dict:
        return {strict_text(str(k)): _strict(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_strict(v) for v in value]
    if value is None or kind is bool:
        return value
    return strict_text(repr(value))


def _encode(value: Any) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        text = json.dumps(
            _strict(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        return text.encode("utf-8")


def _opened(record: dict[str, Any], key: str) -> bytes:
    """``record`` without ``key``, as JSON left open for ``"key":[`` to follow."""
    own = _encode({name: value for name, value in record.items() if name != key})
    return own[:-1] + (b"," if len(own) > 2 else b"") + b'"' + key.encode() + b'":['


def encode_state_chunks(head: dict[str, Any], nodes: NodeWalk) -> Iterator[bytes]:
    """A state as strict RFC 8259 JSON in UTF-8, one node at a time, ending with a newline.

    ``head`` is the document but its nodes, ``nodes`` the walk of them (see
    ``_runs.state.state_parts``). Values the spans carry are already strict
    (``_recording.encoding``); anything else found here is written in the same documented
    form: ``NaN`` and infinities as the strings ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``, lone surrogates as U+FFFD, integers too long to print in
    decimal as ``0x`` hex strings.

    Each node is encoded on its own (``children`` last), so no single call
    holds the interpreter for the whole document and the text is never built
    whole: a thread writing a 100,000-node state leaves the event loop its turns.
    """
    yield _opened(head, "nodes")
    for item in nodes:
        if item is None:
            yield b"]}"
        else:
            index, record = item
            yield (b"," if index else b"") + _opened(record, "children")
    yield b"]}\n"


def _document_walk(nodes: Any) -> NodeWalk:
    """A built document's nodes as a walk (see ``encode_state_chunks``)."""
    stack: list[tuple[Any, int] | None] = (
        [(node, i) for i, node in reversed(list(enumerate(nodes)))]
        if isinstance(nodes, list)
        else []
    )
    while stack:
        item = stack.pop()
        if item is None:
            yield None
            continue
        node, index = item
        record = node if isinstance(node, dict) else {"value": node}
        yield index, {key: value for key, value in record.items() if key != "children"}
        stack.append(None)
        children = record.get("children")
        if isinstance(children, list):
            stack.extend((child, i) for i, child in reversed(list(enumerate(children))))


def document_chunks(document: dict[str, Any]) -> Iterator[bytes]:
    """A built state document as strict JSON chunks (see ``encode_state_chunks``)."""
    head = {key: value for key, value in document.items() if key != "nodes"}
    return encode_state_chunks(head, _document_walk(document.get("nodes")))


def encode_state(document: dict[str, Any]) -> bytes:
    """A built state document as strict JSON bytes (see ``encode_state_chunks``)."""
    return b"".join(document_chunks(document))


def _is_stale(entry: os.DirEntry[str], now: float) -> bool:
    try:
        age = now - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    if age < _STALE_AFTER_SECONDS:
        return False
    if fcntl is None:
        return age > _STALE_WITHOUT_LOCKS_SECONDS
    try:
        fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    finally:
        os.close(fd)
    return True


def clean_stale_temporaries(directory: Path, journals: list[Path] | None = None) -> int:
    """Remove temporary files left in ``directory`` by writers that died; how many.

    The run journals the same scan sees are added to ``journals`` when given.
    """
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if journals is not None and name.startswith(".") and name.endswith(JOURNAL_SUFFIX):
            journals.append(directory / name)
        if not name.endswith(TEMP_SUFFIX) or not name.startswith("."):
            continue
        if not (name.startswith(TEMP_PREFIX) or _LEGACY_TEMP.match(name)):
            continue
        if entry.is_file(follow_symlinks=False) and _is_stale(entry, now):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed


def fsync_directory(directory: Path) -> None:
    """Make the renames and deletions in ``directory`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory: the rename stands
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class WriteAbandoned(Exception):
    """A write given up on (the process is exiting): its temporary file is removed."""


# fdatasync flushes a file's data and the metadata needed to read it back (its size),
# which is what must be on disk before the rename; it skips the timestamps.
_sync_data = getattr(os, "fdatasync", os.fsync)


def write_and_rename(
    path: Path,
    data: bytes | Iterable[bytes],
    *,
    sync: Callable[[int], None] = _sync_data,
    abandon: Callable[[], bool] | None = None,
) -> None:
    """Write ``data`` to a locked temporary file beside ``path``, sync it, rename it over ``path``.

    The directory is not fsync'ed here (see ``write_bytes_atomically``; the
    state writer does it once per batch). ``abandon`` is asked between chunks:
    True gives the write up (``WriteAbandoned``), the temporary file removed.
    """
    directory = path.parent
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close(): marks the file as live
        pending: list[bytes] = []
        size = 0
        for chunk in [data] if isinstance(data, bytes) else data:
            pending.append(chunk)
            size += len(chunk)
            if size >= _WRITE_CHUNK:
                _check(abandon, path)
                _write_all(fd, b"".join(pending))
                pending, size = [], 0
        _write_all(fd, b"".join(pending))
        sync(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    finally:
        os.close(fd)


def _check(abandon: Callable[[], bool] | None, path: Path) -> None:
    if abandon is not None and abandon():
        raise WriteAbandoned(f"the write of {path} was given up at exit")


def write_bytes_atomically(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` atomically and durably, on the spot: clean, write, fsync, rename, fsync dir.

    Readers see the old file or the new one, never a torn one; concurrent
    writers of one name each rename a complete file, and the last one wins.
    Removes the directory's stale temporary files first. Sessions do not use
    this: their states go through the state writer (``_runs.writer``).
    """
    directory = path.parent
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    clean_stale_temporaries(directory)
    write_and_rename(path, data, sync=os.fsync)
    fsync_directory(directory)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def resolve_state_path(path_or_name: str | os.PathLike[str]) -> Path:
    """A saved state's file: an existing path, else a name in the state directory.

    Waits first for this process's pending write of that file, if any.
    """
    candidate = Path(path_or_name)
    _settle_journals(candidate)
    with contextlib.suppress(OSError, ValueError):  # a name no file system takes: not found
        wait_for_state(candidate)
    if _is_file(candidate):
        return candidate
    text = os.fspath(path_or_name)
    if "/" not in text and "\\" not in text:
        named = CONFIG.state_dir() / (text if text.endswith(".json") else f"{text}.json")
        with contextlib.suppress(OSError, ValueError):
            wait_for_state(named)
        if _is_file(named):
            return named
    raise StateNotFoundError(
        f"no saved state {text!r} (looked for that file and in {CONFIG.state_dir()}/)"
    )


def _settle_journals(candidate: Path) -> None:
    """Abandoned run journals where the state is looked for become states first (SPEC 13)."""
    from .recover import settle  # noqa: PLC0415  # recover writes states through this module

    with contextlib.suppress(OSError, ValueError):
        settle(CONFIG.state_dir())
        if candidate.parent != Path() and candidate.parent != CONFIG.state_dir():
            settle(candidate.parent)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_state(data: bytes, source: object) -> dict[str, Any]:
    """A validated state document from untrusted bytes; ``StateError`` otherwise."""
    # Parsing a 100,000-node state makes millions of acyclic containers: with the
    # cyclic collector on, it rescans them over and over (as in build_state).
    with gc_paused():
        return _parse_state(data, source)


def _parse_state(data: bytes, source: object) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise StateError(
            f"{source} is not a readable railtracks state: not UTF-8 ({exc.reason})"
        ) from None
    except RecursionError:
        raise StateError(
            f"{source} is not a readable railtracks state: nested too deeply"
        ) from None
    except ValueError as exc:
        raise StateError(f"{source} is not a readable railtracks state: not JSON ({exc})") from None
    if not isinstance(document, dict) or "schema_version" not in document:
        raise StateError(f"{source} is not a railtracks state (no schema_version)")
    version = document["schema_version"]
    if type(version) is int and version not in READABLE_SCHEMA_VERSIONS:
        raise StateError(
            f"{source} is a railtracks state of schema_version {version}, which this"
            f" version of railtracks cannot read (it reads {READABLE_SCHEMA_VERSIONS})"
        )
    try:
        validate_state(document)
    except SchemaError as exc:
        raise StateError(f"{source} is not a valid railtracks state: {exc}") from None
    except RecursionError:
        raise StateError(
            f"{source} is not a readable railtracks state: nested too deeply"
        ) from None
    counts = document.get("counts")
    if counts is not None and counts != (found := document_counts(document["nodes"])):
        # the head is what `railtracks runs` lists: it must not say something else
        raise StateError(
            f"{source} is not a valid railtracks state: its counts say {counts['nodes']} nodes"
            f" ({counts['failed']} failed), its call tree holds {found['nodes']}"
            f" ({found['failed']} failed)"
        )
    return document


def load_state(path_or_name: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a saved state: a file path, or a session name (or identifier) in the state directory.

    Returns the same tree as ``session.state``. Raises ``rt.errors.StateNotFoundError``
    when there is no such state and ``rt.errors.StateError`` when the file is not a
    valid one (not strict UTF-8 JSON, or not matching the published schema).
    """
    path = resolve_state_path(path_or_name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path} is not readable: {exc.strerror or exc}") from None
    return parse_state(data, path)
