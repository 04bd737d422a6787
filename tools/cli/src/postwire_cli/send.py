"""``postwire send sms|email|whatsapp``: one message through the SDK (``--csv`` for bulk SMS)."""

from __future__ import annotations

import argparse
from pathlib import Path

from postwire_client import WhatsAppTemplate

from . import bulk
from .api import UsageError, add_connection_arguments, connect, default_sender, emit, pairs, run


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = sub.add_parser("send", help="send a message through the API").add_subparsers(
        dest="cmd", required=True)

    sms = send.add_parser("sms", help="send an SMS, or many from a CSV file (--csv)")
    add_connection_arguments(sms)
    sms.add_argument("--to", help="E.164 recipient, e.g. +14155552671")
    sms.add_argument("--body", help="the text")
    sms.add_argument("--sender-id", help="an approved sender id (default: the demo one of `postwire dev`)")
    sms.add_argument("--flow", choices=["OTP", "STANDARD"])
    sms.add_argument("--external-id")
    sms.add_argument("--metadata", action="append", metavar="NAME=VALUE")
    sms.add_argument("--idempotency-key",
                     help="your own key (with --csv: a prefix, each batch adds ':<n>', so running the "
                          "same file again with the same key sends nothing twice)")
    sms.add_argument("--csv", type=Path, metavar="FILE",
                     help="bulk: columns to, body, senderId, flow, externalId, metadata.<name>")
    sms.add_argument("--batch-size", type=int, default=bulk.MAX_BATCH, help="rows per batch (max 1000)")
    sms.add_argument("--json", action="store_true", help="with --csv: the summary as JSON")
    sms.set_defaults(action=lambda args: run(send_sms, args))

    email = send.add_parser("email", help="send an email")
    add_connection_arguments(email)
    email.add_argument("--from", dest="from_", required=True, metavar="ADDRESS")
    email.add_argument("--to", action="append", required=True, metavar="ADDRESS")
    email.add_argument("--cc", action="append", metavar="ADDRESS")
    email.add_argument("--bcc", action="append", metavar="ADDRESS")
    email.add_argument("--subject")
    email.add_argument("--text")
    email.add_argument("--html")
    email.add_argument("--text-file", type=Path)
    email.add_argument("--html-file", type=Path)
    email.add_argument("--reply-to")
    email.add_argument("--template-id")
    email.add_argument("--template-version", type=int)
    email.add_argument("--var", action="append", metavar="NAME=VALUE", help="a template variable")
    email.add_argument("--header", action="append", metavar="NAME=VALUE")
    email.add_argument("--external-id")
    email.add_argument("--metadata", action="append", metavar="NAME=VALUE")
    email.add_argument("--idempotency-key")
    email.set_defaults(action=lambda args: run(send_email, args))

    wa = send.add_parser("whatsapp", help="send a WhatsApp message (text or template)")
    add_connection_arguments(wa)
    wa.add_argument("--to", required=True, help="E.164 recipient")
    wa.add_argument("--text")
    wa.add_argument("--template", metavar="NAME", help="an approved Meta template")
    wa.add_argument("--language", default="en_US", help="the template's language (default en_US)")
    wa.add_argument("--param", action="append", metavar="VALUE", help="a template body parameter")
    wa.add_argument("--external-id")
    wa.add_argument("--metadata", action="append", metavar="NAME=VALUE")
    wa.add_argument("--idempotency-key")
    wa.set_defaults(action=lambda args: run(send_whatsapp, args))


def send_sms(args: argparse.Namespace) -> int:
    if args.csv is not None:
        if args.to or args.body:
            raise UsageError("--csv takes the recipients and texts from the file, not --to/--body")
        return bulk.send_csv(args)
    if not args.to or not args.body:
        raise UsageError("send sms needs --to and --body (or --csv FILE)")
    sender = args.sender_id or default_sender(args)
    if not sender:
        raise UsageError("send sms needs --sender-id (an approved sender id)")
    with connect(args) as client:
        emit(client.sms.send(to=args.to, body=args.body, sender_id=sender, flow=args.flow,
                             metadata=pairs(args.metadata, "--metadata") or None,
                             external_id=args.external_id, idempotency_key=args.idempotency_key))
    return 0


def send_email(args: argparse.Namespace) -> int:
    text = args.text_file.read_text() if args.text_file else args.text
    html = args.html_file.read_text() if args.html_file else args.html
    with connect(args) as client:
        emit(client.emails.send(
            from_=args.from_, to=args.to, cc=args.cc, bcc=args.bcc, subject=args.subject, text=text,
            html=html,
            reply_to=args.reply_to, headers=pairs(args.header, "--header") or None,
            template_id=args.template_id, template_version=args.template_version,
            variables=pairs(args.var, "--var") or None,
            metadata=pairs(args.metadata, "--metadata") or None, external_id=args.external_id,
            idempotency_key=args.idempotency_key))
    return 0


def send_whatsapp(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.template is None):
        raise UsageError("send whatsapp needs exactly one of --text and --template")
    template = (WhatsAppTemplate(name=args.template, language=args.language,
                                 body_parameters=list(args.param or []))
                if args.template else None)
    with connect(args) as client:
        emit(client.whatsapp.send(to=args.to, text=args.text, template=template,
                                  metadata=pairs(args.metadata, "--metadata") or None,
                                  external_id=args.external_id, idempotency_key=args.idempotency_key))
    return 0
