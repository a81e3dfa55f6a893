"""Two states of one path in one writer batch (SPEC 6): the last is written, the first told so."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from railtracks._runs.writer import StateWriter, WriteJob


def _job(path: Path, content: bytes, calls: list[object], *, fail: bool = False) -> WriteJob:
    def chunks() -> Iterable[bytes]:
        if fail:
            raise OSError("disk full")
        return [content]

    return WriteJob(
        path=path,
        chunks=chunks,
        keep=None,
        large=False,
        written=lambda instead: calls.append((content, "written", instead)),
        failed=lambda exc: calls.append((content, "failed", str(exc))),
    )


def test_a_superseded_state_gets_its_callback_naming_the_state_written_instead(
    tmp_path: Path,
) -> None:
    calls: list[object] = []
    path = tmp_path / "same.json"
    first, last = _job(path, b"first", calls), _job(path, b"last", calls)
    StateWriter()._write_batch([first, last])
    assert path.read_bytes() == b"last"
    assert calls == [(b"last", "written", None), (b"first", "written", last)]


def test_a_superseded_state_fails_with_the_state_that_replaced_it(tmp_path: Path) -> None:
    calls: list[object] = []
    path = tmp_path / "same.json"
    StateWriter()._write_batch([_job(path, b"first", calls), _job(path, b"last", calls, fail=True)])
    assert not path.exists()
    assert calls == [
        (b"last", "failed", "disk full"),
        (b"first", "failed", "superseded by a later state, whose write failed"),
    ]
