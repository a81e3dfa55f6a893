"""``railtracks outbox`` and ``railtracks outbox send`` (SPEC 7).

    railtracks outbox                                 what waits, per endpoint
    railtracks outbox send [--endpoint URL] [--protocol P] [--in-doubt]

``send`` delivers the outbox of every endpoint (or only the one given), oldest
batch first, removing each batch the collector accepted; it stops at an
endpoint's first refusal. Exit status 0 when nothing is left to send, 1
otherwise. Batches *in doubt* (their sender died mid-request, so the collector
may have them) are sent only with ``--in-doubt``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator

from .._config import CONFIG
from .._delivery.otlp.outbox import Outbox, deliver_next, max_bytes_from_env, outboxes, summarize
from .._delivery.otlp.send import OtlpSender

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
    for outbox in outboxes(root, max_bytes_from_env()):
        if wanted is not None and outbox.endpoint not in wanted:
            continue
        if protocol is not None and outbox.protocol != protocol:
            continue
        yield outbox


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def list_outbox(args: argparse.Namespace) -> int:
    """``railtracks outbox``: spans, bytes and oldest batch per endpoint."""
    rows = []
    for outbox in _selected(getattr(args, "endpoint", None), getattr(args, "protocol", None)):
        outbox.recover()
        summary = summarize(outbox)
        if summary.files:
            rows.append(
                [
                    _visible(summary.endpoint),
                    summary.protocol,
                    str(summary.spans),
                    str(summary.bytes),
                    _when(summary.oldest_ns),
                    str(summary.in_doubt_spans),
                ]
            )
    if not rows:
        print(f"the outbox is empty ({CONFIG.state_dir() / 'outbox'}/)")
        return 0
    header = ["ENDPOINT", "PROTOCOL", "SPANS", "BYTES", "OLDEST", "IN DOUBT"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def send_outbox(args: argparse.Namespace) -> int:
    """``railtracks outbox send``: deliver what waits; 0 when nothing is left."""
    left = 0
    for outbox in _selected(args.endpoint, args.protocol):
        outbox.recover()
        sender = OtlpSender(outbox.endpoint, outbox.protocol)
        sent = 0
        try:
            while True:
                delivered, failure = deliver_next(
                    outbox, sender, _SEND_TIMEOUT, in_doubt=args.in_doubt
                )
                if failure is not None:
                    print(
                        f"railtracks: {_visible(outbox.endpoint)} refused a batch: "
                        f"{_visible(failure.reason)}",
                        file=sys.stderr,
                    )
                    break
                if not delivered:
                    break
                sent += delivered
        finally:
            sender.close()
        summary = summarize(outbox)
        waiting = summary.spans - (0 if args.in_doubt else summary.in_doubt_spans)
        left += summary.spans
        print(
            f"sent {sent} spans to {_visible(outbox.endpoint)} ({outbox.protocol}); "
            f"{waiting} waiting, {summary.in_doubt_spans} in doubt"
        )
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
        help="also send batches whose sender died mid-request (the collector may have them)",
    )
    send.set_defaults(handler=send_outbox)
