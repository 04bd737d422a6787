"""``postwire secrets``: make a key for ``SECRET_KEYS`` and re-encrypt stored secrets after a rotation.

Rotation (docs/operations.md): put a new key first in ``SECRET_KEYS`` and roll the services out (new
secrets are sealed with it, old ones still open with the old keys), run ``postwire secrets rotate`` to
re-seal everything the old keys protect, then drop the old keys. ``rotate`` is idempotent and safe
while the services run: each update is conditional on the value it read.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import PREFIX, Keyring, generate_key

SEALED: tuple[tuple[str, str], ...] = (
    ("webhook_endpoints", "secret"),
    ("tenants", "whatsapp_line.access_token"),
    ("domains", "dkim_private_key"),
)
"""(collection, dotted field) of every sealed secret; the context is ``"<collection>.<field>:<_id>"``
(docs/architecture.md, "Secrets at rest"). A new sealed field must be listed here. Webhook endpoints'
``previous_secrets[].secret`` (rotation overlap) are sealed with their endpoint's ``secret`` context and
re-sealed by ``rotate`` too."""


def add_parser(sub: Any) -> None:
    """The ``secrets`` command group."""
    group = sub.add_parser("secrets", help="SECRET_KEYS: make a key, re-encrypt after rotation")
    cmds = group.add_subparsers(dest="cmd", required=True)
    gen = cmds.add_parser("generate-key", help="print a new base64 32-byte key")
    gen.set_defaults(action=None)
    rot = cmds.add_parser("rotate", help="re-encrypt stored secrets with the first key of SECRET_KEYS")
    rot.add_argument("--secret-keys", help="JSON list of keys (default: $SECRET_KEYS)")
    rot.add_argument("--dry-run", action="store_true", help="count what would be re-encrypted")
    rot.set_defaults(action=rotate)


def keyring_from(args: argparse.Namespace) -> Keyring:
    raw = args.secret_keys or os.environ.get("SECRET_KEYS", "")
    try:
        keys = json.loads(raw) if raw.strip() else []
    except json.JSONDecodeError as exc:
        raise SystemExit(f"SECRET_KEYS: not valid JSON ({exc.msg})") from None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise SystemExit("SECRET_KEYS: expected a JSON list of base64 keys")
    return Keyring(keys)


def _get(doc: Document, dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


async def rotate(db: AsyncDatabase[Document], args: argparse.Namespace) -> dict[str, Any]:
    """Re-seal every secret not sealed with the primary key; counts per collection."""
    keyring = keyring_from(args)
    report: dict[str, Any] = {"primary_key_id": keyring.primary_id, "collections": {}}
    for collection, field in SEALED:
        ops: list[UpdateOne] = []
        async for doc in db[collection].find({field: {"$regex": f"^{PREFIX}"}},
                                             projection=[field]):
            stored = _get(doc, field)
            if not isinstance(stored, str) or not keyring.needs_rotation(stored):
                continue
            context = f"{collection}.{field}:{doc['_id']}"
            fresh = keyring.encrypt(keyring.decrypt(stored, context=context), context=context)
            ops.append(UpdateOne({"_id": doc["_id"], field: stored}, {"$set": {field: fresh}}))
        if ops and not args.dry_run:
            await db[collection].bulk_write(ops, ordered=False)
        report["collections"][f"{collection}.{field}"] = len(ops)
    # a rotated webhook endpoint keeps its previous secrets (sealed as its ``secret`` was) in a list
    previous = await _rotate_previous_webhook_secrets(db, keyring, dry_run=args.dry_run)
    report["collections"]["webhook_endpoints.previous_secrets.secret"] = previous
    report["re_encrypted" if not args.dry_run else "would_re_encrypt"] = sum(
        report["collections"].values())
    return report


async def _rotate_previous_webhook_secrets(db: AsyncDatabase[Document], keyring: Keyring, *,
                                           dry_run: bool) -> int:
    ops: list[UpdateOne] = []
    async for doc in db["webhook_endpoints"].find(
            {"previous_secrets.secret": {"$regex": f"^{PREFIX}"}}, projection=["previous_secrets"]):
        context = f"webhook_endpoints.secret:{doc['_id']}"
        stale = [p for p in doc["previous_secrets"]
                 if isinstance(p.get("secret"), str) and keyring.needs_rotation(p["secret"])]
        if not stale:
            continue
        fresh = [{**p, "secret": keyring.encrypt(keyring.decrypt(p["secret"], context=context),
                                                 context=context)} if p in stale else p
                 for p in doc["previous_secrets"]]
        ops.append(UpdateOne({"_id": doc["_id"], "previous_secrets": doc["previous_secrets"]},
                             {"$set": {"previous_secrets": fresh}}))
    if ops and not dry_run:
        await db["webhook_endpoints"].bulk_write(ops, ordered=False)
    return len(ops)


def generate() -> dict[str, str]:
    """A fresh key, and how to use it."""
    return {"key": generate_key(),
            "use": "put it first in SECRET_KEYS (a JSON list), roll out, then `postwire secrets rotate`"}
