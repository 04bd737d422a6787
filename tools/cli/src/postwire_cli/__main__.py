"""Entry point of the ``postwire`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from . import admin, dev, dlq, messages, secrets, send


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="postwire", description="Postwire: operator tools and the API")
    p.add_argument("--mongodb-url", help="default: $MONGODB_URL, else the make-run SecantusDB")
    p.add_argument("--database", default="postwire", help="MongoDB database (default: postwire)")
    sub = p.add_subparsers(dest="group", required=True)

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="cmd", required=True)
    tc = tenants.add_parser("create", help="create a tenant")
    tc.add_argument("name")
    tc.add_argument("--id", help="choose the tenant id (default: generated)")
    tc.set_defaults(action=admin.tenants_create)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="cmd", required=True)
    kc = keys.add_parser("create", help="create an API key (shown once)")
    kc.add_argument("--tenant", required=True)
    kc.add_argument("--scopes", required=True, help="comma-separated scopes, or 'all'")
    kc.add_argument("--live", action="store_true", help="a live key (default: a test key)")
    kc.add_argument("--name", default="")
    kc.add_argument("--rate-limit", metavar="PER_MINUTE[/PER_SECOND]",
                    help="this key's rate limit instead of the gateway default, e.g. 6000/200")
    kc.set_defaults(action=admin.keys_create)

    sids = sub.add_parser("sender-ids", help="manage SMS sender ids").add_subparsers(
        dest="cmd", required=True)
    sa = sids.add_parser("approve", help="approve a sender id for a tenant")
    sa.add_argument("--tenant", required=True)
    sa.add_argument("sender_id")
    sa.set_defaults(action=admin.sender_ids_approve)

    hooks = sub.add_parser("webhooks", help="manage customer webhook endpoints").add_subparsers(
        dest="cmd", required=True)
    wc = hooks.add_parser("create", help="create an endpoint (its secret is shown once)")
    wc.add_argument("--tenant", required=True)
    wc.add_argument("--events", default="*", help="comma-separated event types, or '*'")
    wc.add_argument("--state-dir", default=".postwire",
                    help="where `make run` keeps its secrets (used when SECRET_KEYS is unset)")
    wc.add_argument("url")
    wc.set_defaults(action=admin.webhooks_create)

    dlq.add_parser(sub)
    secrets.add_parser(sub)
    send.add_parsers(sub)
    messages.add_parsers(sub)

    d = sub.add_parser("dev", help="run the whole system locally (what `make run` does)")
    dev.add_arguments(d)
    d.set_defaults(action=None)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.group == "dev":
        raise SystemExit(dev.run(args))
    if args.group in ("send", "messages"):
        raise SystemExit(args.action(args))
    if args.group == "dlq":
        result = asyncio.run(dlq.run(args))
    elif args.group == "secrets" and args.cmd == "generate-key":
        result = secrets.generate()
    else:
        result = asyncio.run(admin.with_db(args, lambda db: args.action(db, args)))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
