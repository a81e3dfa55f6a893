"""Reading an OTLP trace file from disk (``railtracks import``, ``railtracks view FILE``).

Accepted: OTLP/JSON as the OpenTelemetry Collector's file exporter writes it
(one ``ExportTraceServiceRequest`` per line), one JSON document, or several
one after another; field names in lowerCamelCase or as in the ``.proto``
(snake_case), as the protobuf JSON mapping lets a writer choose. Or
OTLP/protobuf: one serialized ``ExportTraceServiceRequest``. Either may be
gzip-compressed. Decoding is the viewer's receiver's (``_otlp``,
``_protobuf``); this module adds what a file needs.

The file is untrusted (SPEC 7): it must be a regular file (a FIFO or a device
is refused, and opened without blocking); it is read up to ``MAX_BYTES`` and
inflates to at most ``MAX_BYTES`` (a gzip bomb stops there); JSON nested
deeper than the parser goes, truncated data and wrong types are one
``OtlpFileError`` line. Values are redacted by key and scrubbed of credential
shapes (SPEC 3) before anything keeps them.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from .._gc import gc_paused
from .._recording.encoding import REDACTED
from .._reuse.imported import ImportedTrace, Traces, free_path, import_name, save_trace
from .._runs.schema import SchemaError
from ..errors import StateError
from ._otlp import BadPayload, decode_protobuf, json_records
from ._redact import is_sensitive
from ._values import shown, shown_mapping

MAX_BYTES: Final = 256 << 20
_CHUNK: Final = 1 << 20
_GZIP: Final = b"\x1f\x8b"
_SNAKE: Final = re.compile(r"_([a-z])")
_STATE_KEY: Final = re.compile(rb'"schema_version"\s*:')
_OTLP_KEY: Final = re.compile(rb'"resource_?[sS]pans"\s*:')
_WHITESPACE: Final = re.compile(r"\s*")


class OtlpFileError(StateError):
    """The file is not OTLP trace data railtracks can read: one line says why."""


def _read_regular(path: Path, limit: int) -> bytes:
    """The file's bytes: a regular file only (checked on the open descriptor), at most ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OtlpFileError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OtlpFileError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise OtlpFileError(f"{path}: larger than {limit >> 20} MiB")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, _CHUNK):
            size += len(chunk)
            if size > limit:  # grew while read
                raise OtlpFileError(f"{path}: larger than {limit >> 20} MiB")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise OtlpFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _inflated(data: bytes, path: Path, limit: int) -> bytes:
    """gzip data inflated a chunk at a time: a bomb stops at ``limit`` bytes held, no more."""
    inflater = zlib.decompressobj(wbits=31)
    chunks: list[bytes] = []
    size = 0
    pending = data
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            if not chunk and not pending:  # all read, and the stream did not end
                break
            size += len(chunk)
            if size > limit:
                raise OtlpFileError(f"{path}: inflates to more than {limit >> 20} MiB")
            chunks.append(chunk)
    except zlib.error as exc:
        raise OtlpFileError(f"{path}: bad gzip data ({exc})") from None
    if not inflater.eof:
        raise OtlpFileError(f"{path}: truncated gzip data")
    return b"".join(chunks)


def read_file_bytes(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The file's content, inflated when it is gzip."""
    data = _read_regular(path, limit)
    return _inflated(data, path, limit) if data[:2] == _GZIP else data


def is_state_file(path: Path) -> bool:
    """Whether a file reads as a railtracks state (``"schema_version":`` near its start, and
    no OTLP ``"resourceSpans":`` there): anything else is tried as OTLP."""
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return True  # the state reader says what is wrong with it
    return _STATE_KEY.search(head) is not None and _OTLP_KEY.search(head) is None


def _camel_case(document: Any) -> Any:
    """Field names as in the ``.proto`` (``resource_spans``) made lowerCamelCase, in place."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in [k for k in item if "_" in k]:
                item[_SNAKE.sub(lambda m: m.group(1).upper(), key)] = item.pop(key)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return document


def _json_documents(text: str, path: Path) -> Iterator[dict[str, Any]]:
    """Each top-level JSON value of the text: one per line, or one, or several in a row."""
    decoder = json.JSONDecoder()
    position = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]  # \s* always matches
    while position < len(text):
        try:
            document, position = decoder.raw_decode(text, position)
        except RecursionError:
            raise OtlpFileError(f"{path}: JSON nested too deeply to read") from None
        except ValueError as exc:
            raise OtlpFileError(f"{path}: not OTLP/JSON: {exc}") from None
        if not isinstance(document, dict):
            raise OtlpFileError(f"{path}: not OTLP/JSON: a request is not a JSON object")
        yield _camel_case(document) if "resource_spans" in document else document
        position = _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]


class _Redactor:
    """``shown`` for the values of one file's spans, each distinct short string redacted once.

    Most attribute values repeat from span to span (node and session names,
    kinds, mime types, statuses): ``shown`` of a string depends on the string
    alone, so it is remembered (bounded); a payload travels twice on a
    railtracks span (``railtracks.node.input`` and ``input.value``) and is
    redacted once too.
    """

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[str, Any] = {}

    def text(self, value: str) -> Any:
        found = self._memo.get(value)
        if found is None:
            found = shown(value)
            if len(value) <= _MEMO_TEXT and len(self._memo) < _MEMO_ENTRIES:
                self._memo[value] = found
        return found

    def attributes(self, attributes: Any) -> dict[str, Any]:
        """``shown_mapping`` of a span's attributes."""
        if not isinstance(attributes, dict):
            return {}
        seen: dict[str, Any] = {}
        kept: dict[str, Any] = {}
        for key, value in attributes.items():
            if is_sensitive(str(key)):
                kept[key] = REDACTED
            elif type(value) is str:
                found = seen.get(value)
                if found is None:
                    found = seen[value] = self.text(value)
                kept[key] = found
            elif type(value) in _SCALARS:
                kept[key] = value
            else:
                kept[key] = shown(value)
        return kept

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        """A decoded span with its values redacted as the viewer shows them (SPEC 3)."""
        if record.get("trace_id") is None:
            return record
        record["attributes"] = self.attributes(record.get("attributes"))
        message = record.get("status_message")
        record["status_message"] = self.text(message) if type(message) is str else shown(message)
        for event in record.get("events") or ():
            event["attributes"] = shown_mapping(event.get("attributes"))
        return record


_MEMO_TEXT: Final = 256  # longer strings are payloads: seldom repeated
_MEMO_ENTRIES: Final = 1 << 16
_SCALARS: Final = frozenset({int, float, bool, type(None)})


def read_otlp_file(path: Path, limit: int = MAX_BYTES) -> Iterator[dict[str, Any]]:
    """The spans of an OTLP file as decoded records (``_otlp``); ``OtlpFileError`` if it is not."""
    data = read_file_bytes(path, limit)
    redacted = _Redactor()
    start = data[: 1 << 10].lstrip()
    if start[:1] == b"{":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OtlpFileError(f"{path}: not OTLP/JSON: not UTF-8 ({exc.reason})") from None
        del data
        for document in _json_documents(text, path):
            yield from map(redacted, json_records(document))
        return
    try:
        records = decode_protobuf(data)  # the framing is checked before the first span
        yield from map(redacted, records)
    except BadPayload as exc:
        raise OtlpFileError(f"{path}: not OTLP/JSON or OTLP/protobuf ({exc})") from None


def import_file(
    path: Path, directory: Path, name: str | None = None
) -> tuple[list[tuple[ImportedTrace, Path]], list[str], int]:
    """Save every trace of ``path`` as a run in ``directory``: ``(saved, problems, rejected)``.

    A run is named ``name`` (then ``name-2``...), else after its session or root
    span; ``rejected`` counts spans without valid ids. ``OtlpFileError`` (one
    line) when the file is not OTLP trace data or holds no span.
    """
    # a file's spans are many acyclic containers: never worth the cyclic collector's rescans
    with gc_paused():
        traces = Traces(read_otlp_file(path))
        if not traces.count:
            why = f" ({traces.rejected} without valid ids)" if traces.rejected else ""
            raise OtlpFileError(f"{path}: no OTLP spans in it{why}")
        taken: set[str] = set()
        saved: list[tuple[ImportedTrace, Path]] = []
        problems: list[str] = []
        for trace in traces.states():
            session = trace.head["session"]
            own = session["name"] or session["span_name"]  # a railtracks session: its own name
            target = free_path(directory, name or import_name(str(own)), taken)
            try:
                save_trace(trace, target)
            except (SchemaError, OSError) as exc:
                problems.append(f"trace {trace.trace_id} not saved: {exc}")
                continue
            saved.append((trace, target))
        return saved, problems, traces.rejected
