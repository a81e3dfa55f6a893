"""Writing a run journal's lines (the format is described in ``journal_lines``).

``LineEncoder`` turns the journal thread's queue items into lines, numbering
origins and key lists as they first appear; ``header_line`` is a journal's
first line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from .._recording.compact import (
    JOURNAL_TEXT_LENGTH,
    JournalText,
    Record,
    origin_pair,
)
from .journal_lines import MAGIC, VERSION

_KEY_LISTS_KEPT: Final = 4096
_ORIGIN: Final = 15  # the origin's place in a record (``_recording.compact``)


def header_line(identifier: str, name: str | None, state: str, pid: int) -> bytes:
    fields = {"session_id": identifier, "name": name, "state": state, "pid": pid}
    return _dump([MAGIC, VERSION, fields])


def _encoder() -> Callable[[Any], str]:
    """One JSON encoder for every line (``json.dumps`` with options builds one per call)."""
    encoder = json.JSONEncoder(separators=(",", ":"), default=repr)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # not CPython's C accelerator: the encoder's own one-shot path
        return encoder.encode
    # what JSONEncoder.encode builds afresh for every call, built once
    c_encode = make(
        None, repr, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    return lambda value: "".join(c_encode(value, 0))


_ENCODE: Final = _encoder()


def _dump(value: Any) -> bytes:
    return _ENCODE(value).encode("ascii") + b"\n"


class LineEncoder:
    """Encodes queue items as lines, numbering origins and key lists as they first appear.

    An item is a span's ``Record`` (encoded here, on the journal thread) or the
    text of its line made once by the thread that ended it
    (``_recording.compact.journal_text``), to which only the journal's numbers
    are added here.
    """

    def __init__(self) -> None:
        self._origins: dict[object, int] = {}
        # id(key tuple) -> (the tuple, its number): keys are shared tuples (_recording.compact),
        # and an int hashes at once where a tuple of 17 strings is hashed again every time
        self._keys: dict[int, tuple[tuple[str, ...], int]] = {}
        self._trace: int | None = None  # written once ("t"): a span line of it says 0

    def line(self, item: Record | JournalText, kind: str = "s") -> bytes:
        """The line(s) of one item: a span that ended (``"s"``) or that has started (``"b"``)."""
        if len(item) == JOURNAL_TEXT_LENGTH:
            trace, keys, _, origin_key, payload = item
            prefix, trace, number, origin = self._numbers(trace, keys, origin_key)
            keys_field = number if type(number) is int else _ENCODE(number)
            head = f'["S",{trace},{keys_field},{origin},"'.encode("ascii")
            return b"".join((prefix, head, payload, b'"]\n'))
        prefix, trace, number, origin = self._numbers(item[1], item[11], item[_ORIGIN])
        fields = [kind, item[0], trace, *item[2:4], *item[5:11], number, item[12], item[13],
                  origin, *item[16:19]]  # fmt: skip
        return prefix + _dump(fields)

    def lines(self, items: list[Any]) -> bytes:
        """The lines of every item, in order, as one write.

        Most items are payloads of one node's calls in one trace: their line
        head (trace, key list and origin numbers) is made once and reused.
        """
        out: list[bytes] = []
        append = out.append
        last: tuple[object, object] | None = None  # (keys, origin key) of ``head``
        head = b""
        for item in items:
            if len(item) != JOURNAL_TEXT_LENGTH:
                append(self.line(item))
                continue
            trace, keys, origin = item[0], item[1], item[3]
            if last is None or keys is not last[0] or origin != last[1] or trace != self._trace:
                prefix, trace, number, origin = self._numbers(trace, keys, origin)
                keys_field = number if type(number) is int else _ENCODE(number)
                head = f'["S",{trace},{keys_field},{origin},"'.encode("ascii")
                append(prefix)
                last = (keys, item[3]) if trace == 0 and type(number) is int else None
            append(head)
            append(item[4])
            append(b'"]\n')
        return b"".join(out)

    def _numbers(
        self, trace: int, keys: tuple[str, ...], origin_key: object
    ) -> tuple[bytes, int, object, int]:
        """``(lines to write first, trace (0: the journal's), key list number, origin number)``."""
        prefix = b""
        origin = self._origins.get(origin_key if type(origin_key) is int else id(origin_key))
        if origin is None:
            origin, prefix = self._new_origin(origin_key)
        entry = self._keys.get(id(keys))
        number: object
        if entry is not None and entry[0] is keys:
            number = entry[1]
        elif len(self._keys) < _KEY_LISTS_KEPT:
            number = len(self._keys)
            self._keys[id(keys)] = (keys, number)  # kept alive: its id stays its own
            prefix += _dump(["k", number, keys])
        else:
            number = list(keys)  # the line carries its keys
        if self._trace is None:
            self._trace = trace
            prefix += _dump(["t", trace])
        return prefix, 0 if trace == self._trace else trace, number, origin

    def _new_origin(self, key: object) -> tuple[int, bytes]:
        resource, scope = origin_pair(key)
        number = self._origins[key if type(key) is int else id(key)] = len(self._origins)
        attributes = {k: list(v) if type(v) is tuple else v for k, v in resource.attributes.items()}
        line = ["o", number, attributes, scope and scope.name, scope and scope.version]
        return number, _dump(line)
