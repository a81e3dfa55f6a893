"""``railtracks outbox`` and ``railtracks outbox send`` (SPEC 7).

    railtracks outbox                                 what waits, per endpoint
    railtracks outbox send [--endpoint URL] [--protocol P] [--in-doubt]

``send`` delivers the outbox of every endpoint (or only the one given), oldest
batch first, in requests within ``RAILTRACKS_OTLP_MAX_REQUEST_BYTES``, removing
each batch the collector accepted; it stops at an endpoint's first refusal
(collector down, busy, or not answering in time). A batch refused for good or
too large for any request is set aside in the endpoint's quarantine and the
rest goes on. Batches *in doubt* (a request timed out, or its sender died
mid-request, so the collector may have them) are sent only with
``--in-doubt``. Exit status 0 when nothing deliverable is left (in doubt
batches count only with ``--in-doubt``; set-aside ones never), 1 otherwise.
Entries of the outbox that railtracks did not write (symlinks, FIFOs, devices,
directories, other users' or oversized files) are skipped, named on stderr,
never read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

from .._config import CONFIG
from .._delivery.otlp.drain import deliver_next
from .._delivery.otlp.outbox import Outbox, Summary, max_bytes_from_env, outboxes, summarize
from .._delivery.otlp.send import OtlpSender
from .._delivery.otlp.sizing import Limit, max_request_bytes_from_env

EXIT_LEFT = 1
_SEND_TIMEOUT = 10.0


def _visible(text: str) -> str:
    """Control characters (C0, DEL, C1) shown as escapes: a file never drives the terminal."""
    return "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"
        for ch in text
    )


def _selected(endpoint: str | None, protocol: str | None) -> Iterator[Outbox]:
    root = CONFIG.state_dir() / "outbox"
    wanted = None
    if endpoint is not None:
        base = endpoint.rstrip("/")
        wanted = {endpoint, base, f"{base}/v1/traces"}
    problems: dict[Path, str] = {}
    for outbox in outboxes(root, max_bytes_from_env(), problems):
        if wanted is not None and outbox.endpoint not in wanted:
            continue
        if protocol is not None and outbox.protocol != protocol:
            continue
        yield outbox
    for directory, problem in sorted(problems.items()):
        print(
            f"railtracks: {_visible(str(directory))} is not read: {_visible(problem)}",
            file=sys.stderr,
        )


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _notes(outbox: Outbox, summary: Summary) -> None:
    """What is set aside (stdout) and what is skipped (stderr), one line each."""
    if summary.set_aside:
        spans = sum(n for _, n in summary.set_aside.values())
        reasons = ", ".join(f"{r}: {b} batches" for r, (b, _) in sorted(summary.set_aside.items()))
        print(
            f"  {spans} spans set aside in {_visible(str(outbox.quarantine.directory))}/ "
            f"({reasons}): refused for good or too large for any request, never sent again"
        )
    if summary.untrusted is not None:
        print(
            f"railtracks: {_visible(str(outbox.directory))} is not read: "
            f"{_visible(summary.untrusted)}",
            file=sys.stderr,
        )
    if summary.skipped:
        name, why = next(iter(sorted(summary.skipped.items())))
        print(
            f"railtracks: skipped {len(summary.skipped)} entries of "
            f"{_visible(str(outbox.directory))} that railtracks did not write, never read "
            f"(e.g. {_visible(name)}: {_visible(why)})",
            file=sys.stderr,
        )


def list_outbox(args: argparse.Namespace) -> int:
    """``railtracks outbox``: spans, bytes and oldest batch per endpoint; what is set aside."""
    rows, shown = [], []
    for outbox in _selected(getattr(args, "endpoint", None), getattr(args, "protocol", None)):
        outbox.recover()
        summary = summarize(outbox)
        if not (summary.files or summary.set_aside or summary.skipped or summary.untrusted):
            continue
        shown.append((outbox, summary))
        rows.append(
            [
                _visible(summary.endpoint),
                summary.protocol,
                str(summary.spans),
                str(summary.bytes),
                _when(summary.oldest_ns),
                str(summary.in_doubt_spans),
                str(sum(n for _, n in summary.set_aside.values())),
            ]
        )
    if not rows:
        print(f"the outbox is empty ({CONFIG.state_dir() / 'outbox'}/)")
        return 0
    header = ["ENDPOINT", "PROTOCOL", "SPANS", "BYTES", "OLDEST", "IN DOUBT", "SET ASIDE"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for outbox, summary in shown:
        _notes(outbox, summary)
    return 0


def _send_one(outbox: Outbox, limit: Limit, in_doubt: bool) -> tuple[int, int]:
    """Deliver one endpoint's outbox until it is empty or refused: (sent, set aside)."""
    sender = OtlpSender(outbox.endpoint, outbox.protocol)
    outbox.file_bound = max(outbox.file_bound, limit.max_bytes)
    sent = set_aside = 0
    try:
        while True:
            drained = deliver_next(outbox, sender, _SEND_TIMEOUT, limit, in_doubt=in_doubt)
            sent += drained.delivered
            set_aside += drained.set_aside + drained.dropped
            if drained.failure is not None:
                print(
                    f"railtracks: {_visible(outbox.endpoint)} refused a batch: "
                    f"{_visible(drained.failure.reason)}",
                    file=sys.stderr,
                )
                break
            if not drained.found:
                break
    finally:
        sender.close()
    return sent, set_aside


def send_outbox(args: argparse.Namespace) -> int:
    """``railtracks outbox send``: deliver what waits; 0 when nothing deliverable is left."""
    left = 0
    limit = Limit(max_request_bytes_from_env())
    for outbox in _selected(args.endpoint, args.protocol):
        outbox.recover()
        sent, set_aside = _send_one(outbox, limit, args.in_doubt)
        summary = summarize(outbox)
        waiting = summary.spans - summary.in_doubt_spans
        left += waiting + (summary.in_doubt_spans if args.in_doubt else 0)
        now = f", {set_aside} set aside now" if set_aside else ""
        print(
            f"sent {sent} spans to {_visible(outbox.endpoint)} ({outbox.protocol}); "
            f"{waiting} waiting, {summary.in_doubt_spans} in doubt{now}"
        )
        if summary.in_doubt_spans and not args.in_doubt:
            print(
                f"  {summary.in_doubt_spans} spans in doubt (a request timed out or its sender "
                "died: the collector may have them): `railtracks outbox send --in-doubt` "
                "sends them anyway"
            )
        _notes(outbox, summary)
    return EXIT_LEFT if left else 0


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``outbox`` and ``outbox send`` on the CLI's subcommands."""
    outbox = commands.add_parser("outbox", help="what waits in the outbox; 'send' delivers it")
    outbox.set_defaults(handler=list_outbox)
    actions = outbox.add_subparsers(dest="action", metavar="ACTION", parser_class=type(outbox))
    send = actions.add_parser("send", help="deliver the outbox; exit 0 when nothing is left")
    send.add_argument("--endpoint", help="only this endpoint's outbox (default: every one)")
    send.add_argument("--protocol", choices=["grpc", "http/protobuf"], help="only this protocol")
    send.add_argument(
        "--in-doubt",
        action="store_true",
        help="also send batches in doubt: their request timed out or their sender died "
        "mid-request, so the collector may have them already",
    )
    send.set_defaults(handler=send_outbox)
