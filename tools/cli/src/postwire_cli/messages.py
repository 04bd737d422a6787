"""``postwire messages list|show|tail``: the tenant's messages, one message's timeline, the live stream."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from postwire_client import Message, NotFoundError, Postwire
from postwire_client.models import EmailMessage, SmsMessage, StreamEvent, WhatsAppMessage

from .api import add_connection_arguments, connect, emit, run

CHANNELS = ("sms", "email", "whatsapp")
STATUSES = ("QUEUED", "PROCESSING", "SENT", "DELIVERED", "READ", "FAILED")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("messages", help="read messages and follow their status").add_subparsers(
        dest="cmd", required=True)

    ls = group.add_parser("list", help="list messages, newest first")
    add_connection_arguments(ls)
    ls.add_argument("--channel", choices=CHANNELS, default="sms")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--query", help="free text: recipient, body or subject, external id")
    ls.add_argument("--flow", choices=["OTP", "STANDARD"], help="SMS only")
    ls.add_argument("--date-from", help="ISO 8601, e.g. 2026-11-21 or 2026-11-21T12:00:00Z")
    ls.add_argument("--date-to")
    ls.add_argument("--page", type=int, default=1)
    ls.add_argument("--page-size", type=int, default=20)
    ls.add_argument("--json", action="store_true", help="the API's answer as JSON")
    ls.set_defaults(action=lambda args: run(list_messages, args))

    show = group.add_parser("show", help="one message and its timeline")
    add_connection_arguments(show)
    show.add_argument("message_id")
    show.add_argument("--channel", choices=CHANNELS, help="default: look in each channel")
    show.set_defaults(action=lambda args: run(show_message, args))

    tail = group.add_parser("tail", help="print status changes as they happen (Ctrl-C stops)")
    add_connection_arguments(tail)
    tail.add_argument("--channel", choices=CHANNELS)
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--count", type=int, help="stop after this many events")
    tail.set_defaults(action=lambda args: run(tail_messages, args))


def _resource(client: Postwire, channel: str) -> Any:
    return {"sms": client.sms, "email": client.emails, "whatsapp": client.whatsapp}[channel]


def list_messages(args: argparse.Namespace) -> int:
    with connect(args) as client:
        filters: dict[str, Any] = {"status": args.status, "query": args.query,
                                   "date_from": args.date_from, "date_to": args.date_to,
                                   "page": args.page, "page_size": args.page_size}
        if args.flow:
            if args.channel != "sms":
                sys.stderr.write("postwire: --flow applies to SMS only\n")
                return 2
            filters["flow"] = args.flow
        page = _resource(client, args.channel).list(**filters)
    if args.json:
        emit(page)
        return 0
    table = Table(title=f"{args.channel} messages: page {page.pagination.page} of "
                        f"{max(page.pagination.total_pages, 1)} ({page.pagination.total} in all)")
    table.add_column("id", no_wrap=True, min_width=26)
    table.add_column("status", no_wrap=True)
    for column in ("to", "accepted (UTC)", "detail"):
        table.add_column(column, overflow="fold")
    for message in page.data:
        table.add_row(message.id, message.status, _recipient(message),
                      message.accepted_at.strftime("%Y-%m-%d %H:%M:%S") if message.accepted_at else "",
                      _detail(message))
    Console().print(table)
    return 0


def _recipient(message: Message) -> str:
    to = getattr(message, "to", "")
    return ", ".join(to) if isinstance(to, list) else str(to)


def _detail(message: Message) -> str:
    if message.error_code:
        return f"{message.error_code}: {message.error_reason or ''}".strip()
    if isinstance(message, SmsMessage):
        return message.body or ""
    if isinstance(message, EmailMessage):
        return message.subject or ""
    if isinstance(message, WhatsAppMessage):
        return message.text or (message.template.name if message.template else "")
    return ""


def show_message(args: argparse.Namespace) -> int:
    channels = [args.channel] if args.channel else list(CHANNELS)
    with connect(args) as client:
        for channel in channels:
            resource = _resource(client, channel)
            try:
                message = resource.get(args.message_id)
            except NotFoundError:
                if channel == channels[-1]:
                    raise
                continue
            emit({"message": message, "timeline": resource.timeline(args.message_id)})
            return 0
    return 1  # not reached: the last channel's NotFoundError is raised


def tail_messages(args: argparse.Namespace) -> int:
    seen = 0
    with connect(args) as client, client.stream(channel=args.channel) as stream:
        sys.stderr.write("postwire: following the live stream (Ctrl-C stops)\n")
        sys.stderr.flush()
        try:
            for event in stream:
                sys.stdout.write(_line(event, as_json=args.json) + "\n")
                sys.stdout.flush()
                seen += 1
                if args.count is not None and seen >= args.count:
                    break
        except KeyboardInterrupt:
            pass
    return 0


def _line(event: StreamEvent, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(msgspec.to_builtins(event), ensure_ascii=False)
    when = event.occurred_at.isoformat(timespec="seconds") if event.occurred_at else "-"
    error = f" {event.error_code}: {event.error_reason or ''}".rstrip() if event.error_code else ""
    to = ", ".join(event.recipient) if isinstance(event.recipient, list) else (event.recipient or "")
    return f"{when} {event.channel or '-'} {event.message_id or '-'} {event.status or event.type} {to}{error}"
