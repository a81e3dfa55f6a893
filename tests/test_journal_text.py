"""The run journal's compact span lines (SPEC 13): made once by the thread that ends a span.

Past the records a session keeps, a span goes to its journal as the payload
``_recording.compact.journal_text`` makes (an ``"S"`` line), not as a record
the journal thread encodes. Read back, it is the same record; a state
assembled from such lines is the state built from every record; and a
crafted ``"S"`` line is a one-line error, like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from binascii import b2a_base64
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

import railtracks as rt
from railtracks._recording.collector import SessionSpanCollector
from railtracks._recording.compact import JOURNAL_HEAD, journal_text, origin_pair, record
from railtracks._runs import journal
from railtracks._runs.journal_lines import Decoder, JournalError
from railtracks._runs.journal_write import LineEncoder, header_line
from railtracks._runs.state import build_state

HEADER = header_line("0b7f3c1e-5a53-4b38-9d0e-1c2d3e4f5a6b", "mixed", "mixed.json", 1)


async def _workflow() -> None:
    """Nodes of every shape a journal meets: failures, events, foreign spans, odd values."""

    @rt.function_node
    async def leaf(i: int) -> str:
        if i % 5 == 4:
            raise ValueError(f"leaf {i} \u00e9\U0001f600")
        return f'v\u00e9 {i}\n"quoted" \\ \x1f'  # a newline, quotes, a separator

    @rt.function_node
    def changes_context(i: int) -> int:
        rt.context.put("seen", i)  # an event on its span: journaled as a record
        return i

    @rt.function_node
    async def branch(n: int) -> int:
        with trace.get_tracer("other.lib").start_as_current_span("http") as span:
            span.set_attribute("http.status_code", 200)  # an int value: a record
            span.set_attribute("http.url", "https://example.test/\u00e9")
        done = await asyncio.gather(*[rt.call(leaf, i) for i in range(n)], return_exceptions=True)
        await rt.call(changes_context, n)
        return len(done)

    async with rt.Session(name="mixed", logging_setting="NONE", context={"k": 1}) as session:
        for n in range(8):
            await rt.call(branch, n)
        while session.journal is None or not session.journal.path.exists():  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # a session longer than one journal write


def test_a_state_assembled_from_compact_lines_is_the_state_of_every_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(journal, "KEPT_RECORDS", 3)  # past three, spans go as payloads
    records: list[Any] = []
    texts: list[Any] = []
    keep = SessionSpanCollector._keep

    def keeping(self: SessionSpanCollector, session_id: str, span: ReadableSpan) -> None:
        records.append(record(span))
        texts.append(journal_text(span))
        keep(self, session_id, span)

    monkeypatch.setattr(SessionSpanCollector, "_keep", keeping)
    asyncio.run(_workflow())
    made = [text for text in texts if text is not None]
    assert len(made) > 20  # most node spans were payloads
    assert len(made) < len(texts)  # and the spans with events or int values records
    assembled = rt.load_state("mixed")  # from the journal file
    assert assembled["counts"]["nodes"] > 40
    assert assembled == build_state(records)


def test_a_compact_line_reads_back_as_the_spans_record(tmp_path: Path) -> None:
    spans: list[ReadableSpan] = []
    keep = SessionSpanCollector._keep

    def keeping(self: SessionSpanCollector, session_id: str, span: ReadableSpan) -> None:
        spans.append(span)
        keep(self, session_id, span)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SessionSpanCollector, "_keep", keeping)
        asyncio.run(_workflow())
    compared = 0
    for span in spans:
        text = journal_text(span)
        if text is None:
            continue
        lines = LineEncoder().lines([text]).splitlines()
        assert lines[-1].startswith(b'["S",')
        decoder = Decoder("test")
        numbered = enumerate([HEADER.rstrip(), *lines], 1)
        read = [decoder.decode(line, number) for number, line in numbered]
        assert read[-1] is not None
        expected = record(span)
        assert read[-1].record[:14] == (*expected[:4], None, *expected[5:14])
        assert read[-1].record[16:] == expected[16:]
        resource, scope = read[-1].record[15]
        assert resource.attributes == origin_pair(expected[15])[0].attributes
        assert scope == origin_pair(expected[15])[1]
        compared += 1
    assert compared > 20


def _payload(*, name: bytes = b"n", values: bytes = b"x", **head: int) -> str:
    fields = {"span": 5, "parent": 0, "start": 1, "end": 2, "flags": 1, "kind": 0, "code": 0,
              "form": 0, "outcome": 0}  # fmt: skip
    fields.update((k, v) for k, v in head.items() if k in fields)
    described = head.get("described", -1)
    packed = JOURNAL_HEAD.pack(
        *fields.values(),
        0, 0, 0, head.get("name_length", len(name)), described,
    )  # fmt: skip
    return b2a_base64(packed + name + values, newline=False).decode()


def _s(payload: str, head: str = "7,0,0") -> str:
    return f'["S",{head},"{payload}"]'


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (_s(_payload(), "0,0,0"), "no trace id"),
        (_s(_payload(values=b"x\x1fy")), "keys and values differ"),
        (_s(_payload(name_length=99)), "bad length"),
        (_s(_payload(name=b"\xff")), "decode"),
        (_s(_payload(kind=9)), "bad id, kind or code"),
        (_s(_payload(span=0)), "bad id, kind or code"),
        (_s(_payload(form=2)), "bad values form"),
        (_s(_payload(form=1, values=b"[" * 100_000)), "recursion"),
        (_s(_payload(form=1, values=b'[{"a":1}]')), "bad value"),
        (_s("AAAA"), "payload too short"),
        (_s("not base64!"), ""),
        (_s(_payload(), "7,0,5"), "no origin or key list"),
        (_s(_payload(), "7,[1],0"), "bad keys"),
        ('["S",7,0]', "bad span line"),
        (_s(_payload(outcome=1)), "its status differs"),
    ],
)
def test_a_crafted_compact_line_is_a_journal_error_naming_it(line: str, why: str) -> None:
    decoder = Decoder("crafted")
    origin = b'["o",0,{},"railtracks",null]'
    lines = [HEADER.rstrip(), origin, b'["k",0,["a"]]', line.encode()]
    for number, raw in enumerate(lines[:-1], 1):
        decoder.decode(raw, number)
    with contextlib.suppress(JournalError):  # the first pass reads an "S" line's head only
        decoder.scan(lines[-1], 4)
    with pytest.raises(JournalError, match=r"crafted is not a readable run journal: line 4") as err:
        decoder.decode(lines[-1], 4)
    assert why in str(err.value)


def test_a_forked_child_holds_no_journal_lock_and_writes_nothing(tmp_path: Path) -> None:
    """A real ``os.fork`` in a session: the child closes its copy of the journal file."""

    @rt.function_node
    async def leaf(i: int) -> int:
        return i

    async def main() -> tuple[int, bytes]:
        async with rt.Session(name="forked", logging_setting="NONE") as session:
            await rt.call(leaf, 1)
            while session.journal is None or not session.journal.path.exists():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            journal = session.journal
            size = journal.path.stat().st_size
            told, tell = os.pipe()
            done, finish = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: its copy of the journal writes nothing
                try:
                    journal.queue.append(record_of_a_span())
                    journal.drain(sync=True)
                    os.write(tell, b"1" if journal.path.stat().st_size == size else b"0")
                    os.read(done, 1)  # alive (its descriptors open) until the parent looked
                finally:
                    os._exit(0)
            answer = os.read(told, 1)
            held = _descriptors_of(pid, journal.path)
            os.write(finish, b"x")
            await asyncio.to_thread(os.waitpid, pid, 0)
            await rt.call(leaf, 2)  # the parent's journal goes on
        return held, answer

    held, answer = asyncio.run(main())
    assert answer == b"1"  # the child wrote nothing into the parent's journal
    assert held == 0  # and kept no descriptor of it (nor its lock)
    assert rt.load_state("forked")["counts"]["nodes"] == 2


def record_of_a_span() -> Any:
    with trace.get_tracer("test").start_as_current_span("x") as span:
        pass
    return record(span)  # type: ignore[arg-type]


def _descriptors_of(pid: int, path: Path) -> int:
    """How many of process ``pid``'s descriptors are open on ``path`` (Linux's /proc)."""
    directory = Path(f"/proc/{pid}/fd")
    count = 0
    for entry in directory.iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(entry) == str(path)
    return count
