"""One encoded batch on its way, whatever its size, and the outbox's oldest batch (SPEC 5, 7).

A batch is sent as pieces within the request size limit (``sizing``). Each
answer settles a piece: accepted; too large (cut in halves and sent again, or
set aside when it is a single span); refused for good (set aside); timed out
(in doubt: the collector may have it, so it is not sent again); any other
failure stops the batch, the rest waiting for a later try. Set aside means the
endpoint's quarantine (``quarantine``), never sent again, so nothing behind
it is blocked.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Final

from .files import Untrusted
from .outbox import Entry, Outbox
from .send import OtlpSender, SendResult
from .sizing import Limit, Piece, Unreadable, halves, split

EXITING: Final = SendResult(False, "exit", retryable=False)


class Batch:
    """The pieces of one batch, settled one by one as the collector answers.

    ``todo`` (first: the piece being sent) is changed only under ``lock``, so
    that another thread can take what is left (``abandoned``) at exit.
    """

    def __init__(self, fits: list[Piece], too_large: list[Piece]) -> None:
        self.todo = collections.deque(fits)
        self.delivered = 0
        self.set_aside: list[tuple[Piece, str]] = [(p, "too-large") for p in too_large]
        self.in_doubt: list[Piece] = []
        self.left: list[Piece] = []
        self.failure: SendResult | None = None
        self.abandoned = False

    def run(
        self,
        send: Callable[[Piece], SendResult],
        limit: Limit,
        lock: contextlib.AbstractContextManager[object] | None = None,
    ) -> None:
        """Send until every piece is settled or one fails."""
        guard = lock if lock is not None else contextlib.nullcontext()
        while True:
            with guard:
                if self.abandoned or not self.todo:
                    return
                piece = self.todo[0]
            result = send(piece)
            with guard:
                if self.abandoned:  # exit took the rest, this piece included
                    return
                self.todo.popleft()
                if not self._settle(piece, result, limit):
                    self.left.extend(self.todo)
                    self.todo.clear()
                    return

    def _settle(self, piece: Piece, result: SendResult, limit: Limit) -> bool:
        if result.ok:
            self.delivered += piece.spans
        elif result.too_large:
            limit.refused(len(piece.data))
            parts: list[Piece] = []
            if piece.spans > 1:
                with contextlib.suppress(Unreadable):
                    parts = halves(piece.data)
            if len(parts) > 1:
                self.todo.extendleft(reversed(parts))
            else:
                self.set_aside.append((piece, "too-large"))
        elif result.rejected:
            self.set_aside.append((piece, "refused"))
        else:
            self.failure = result
            (self.in_doubt if result.in_doubt else self.left).append(piece)
            return False
        return True


def pieces(data: bytes, spans: int, max_bytes: int) -> tuple[list[Piece], list[Piece]]:
    """Our own encoded batch as requests within ``max_bytes``, and its spans too large alone."""
    if len(data) <= max_bytes:
        return [Piece(data, spans)], []
    try:
        return split(data, max_bytes)
    except Unreadable:  # not from our writer or the SDK's: sent whole, the collector decides
        return [Piece(data, spans)], []


@dataclasses.dataclass
class Drained:
    """What one ``deliver_next`` did."""

    found: bool = False  # a batch was taken (False: nothing waits)
    delivered: int = 0
    set_aside: int = 0
    dropped: int = 0  # set aside, but the quarantine could not keep it
    failure: SendResult | None = None


def deliver_next(
    outbox: Outbox, sender: OtlpSender, timeout: float, limit: Limit, *, in_doubt: bool = False
) -> Drained:
    """Send the oldest waiting batch (in doubt ones only when asked, ``in_doubt``).

    A batch set aside does not stop the caller: it goes on with the next one.
    """
    for entry in outbox.entries():
        if entry.in_doubt and not in_doubt:
            continue
        claimed = outbox.claim(entry)
        if claimed is None:  # another process took it
            continue
        return _deliver_claimed(outbox, entry, claimed, lambda d: sender.send(d, timeout), limit)
    return Drained()


@dataclasses.dataclass
class _Claimed:
    """An outbox batch taken for sending: where it was, where it is now, its bytes."""

    outbox: Outbox
    entry: Entry
    path: Path
    data: bytes = b""

    def set_aside(self, spans: int, reason: str, drained: Drained) -> None:
        """Move the file, unread, to the quarantine (removed if it cannot be kept)."""
        entry = self.entry
        if self.outbox.quarantine.move(self.path, spans, reason, entry.created_ns, entry.size):
            drained.set_aside += spans
        else:
            self.outbox.done(self.path)  # it can never be sent, and nowhere to keep it
            drained.dropped += spans


def _deliver_claimed(
    outbox: Outbox,
    entry: Entry,
    claimed: Path,
    send: Callable[[bytes], SendResult],
    limit: Limit,
) -> Drained:
    taken = _Claimed(outbox, entry, claimed)
    try:
        taken.data = outbox.read(claimed, entry.path)
    except Untrusted:  # it changed since it was listed: put back, skipped from now on
        outbox.release(claimed)
        return Drained(found=True)
    except OSError as exc:
        outbox.release(claimed)
        return Drained(failure=SendResult(False, f"cannot read {entry.path.name}: {exc}"))
    drained = Drained(found=True)
    try:
        fits, too_large = split(taken.data, limit.max_bytes)
    except Unreadable:
        taken.set_aside(entry.spans, "unreadable", drained)
        return drained
    batch = Batch(fits, too_large)
    batch.run(lambda piece: send(piece.data), limit)
    drained.delivered, drained.failure = batch.delivered, batch.failure
    _settle(taken, batch, fits[0] if len(fits) == 1 and not too_large else None, drained)
    return drained


def _settle(taken: _Claimed, batch: Batch, whole: Piece | None, drained: Drained) -> None:
    """What becomes of the claimed file once its batch is settled (``whole``: the file's
    one piece, unchanged, when it was not split)."""
    outbox, path = taken.outbox, taken.path
    if whole is not None and whole.data is not taken.data:
        whole = None
    if batch.left and not (batch.delivered or batch.set_aside or batch.in_doubt):
        outbox.release(path)  # untouched: back as it was
    elif whole is not None and batch.in_doubt and batch.in_doubt[0] is whole:
        outbox.mark_in_doubt(path)
    elif whole is not None and batch.set_aside and batch.set_aside[0][0] is whole:
        taken.set_aside(whole.spans, batch.set_aside[0][1], drained)
    else:  # split: what is left is written back in the batch's place, then the batch removed
        _rewrite(taken, batch, drained)


def _rewrite(taken: _Claimed, batch: Batch, drained: Drained) -> None:
    outbox, created = taken.outbox, taken.entry.created_ns
    for piece, reason in batch.set_aside:
        try:
            kept = outbox.quarantine.keep(piece.data, piece.spans, reason, created)
        except OSError:
            kept = False
        if kept:
            drained.set_aside += piece.spans
        else:
            drained.dropped += piece.spans
    try:
        for piece in batch.in_doubt:
            outbox.spool(piece.data, piece.spans, in_doubt=True, created_ns=created)
        for piece in batch.left:
            outbox.spool(piece.data, piece.spans, created_ns=created)
    except OSError:  # part of it was delivered: sending it whole again could duplicate
        outbox.mark_in_doubt(taken.path)
        return
    outbox.done(taken.path)
