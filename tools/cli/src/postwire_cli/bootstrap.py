"""The demo tenant that ``postwire dev`` creates once and reuses: sender id, test key, admin key."""

from __future__ import annotations

import json
import secrets as random
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postwire_platform import secrets_at_rest, tenancy
from postwire_platform.mongo import API_KEYS, SENDER_IDS, TENANTS, ensure_indexes, make_client

DEMO_TENANT = "ten_demo"
SENDER_ID = "Postwire"


def load_secrets(state: Path) -> dict[str, str]:
    """Tokens shared by the services of this installation, made once and kept in the state dir."""
    path = state / "secrets.json"
    values: dict[str, str] = dict(json.loads(path.read_text())) if path.exists() else {}
    wanted: dict[str, Callable[[], str]] = {
        "sms_dlr_token": lambda: random.token_urlsafe(24),
        "sms_inbound_token": lambda: random.token_urlsafe(24),
        "sms_provider_secret": lambda: random.token_urlsafe(32),
        "secret_key": secrets_at_rest.generate_key,
        "email_tracking_secret": lambda: random.token_urlsafe(24),
        "email_feedback_secret": lambda: random.token_urlsafe(24),
        "whatsapp_app_secret": lambda: random.token_hex(16),
        "whatsapp_verify_token": lambda: random.token_urlsafe(16),
    }
    missing = {name: make() for name, make in wanted.items() if name not in values}
    if not missing:
        return values
    values.update(missing)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


# the demo keys are what local load tests and the benchmark drive, so they carry a generous limit; any
# other key gets the gateway's default (RATE_LIMIT_PER_MINUTE / RATE_LIMIT_PER_SECOND)
DEMO_RATE_LIMIT = (1_000_000, 20_000)


async def demo(mongodb_url: str, state: Path, ports: dict[str, int],
               smtp_port: int | None = None) -> dict[str, Any]:
    """Create (or reuse) the demo tenant and keys; write and return ``dev.json``'s content."""
    path = state / "dev.json"
    client = make_client(mongodb_url)
    try:
        db = client["postwire"]
        await ensure_indexes(db, [TENANTS, API_KEYS, SENDER_IDS])
        previous = json.loads(path.read_text()) if path.exists() else {}
        if await db[TENANTS].find_one({"_id": DEMO_TENANT}) is None:
            await tenancy.create_tenant(db, "Demo", tenant_id=DEMO_TENANT)
        await tenancy.approve_sender_id(db, DEMO_TENANT, SENDER_ID)
        api_key = previous.get("api_key")
        if not api_key or await tenancy.find_key(db, api_key) is None:
            api_key, _ = await tenancy.create_key(db, DEMO_TENANT, list(tenancy.TENANT_SCOPES),
                                                  mode="test", name="make run demo",
                                                  rate_limit=DEMO_RATE_LIMIT)
        admin_key = previous.get("admin_key")
        if not admin_key or await tenancy.find_key(db, admin_key) is None:
            admin_key, _ = await tenancy.create_key(db, DEMO_TENANT, list(tenancy.SCOPES),
                                                    mode="test", name="make run operator",
                                                    rate_limit=DEMO_RATE_LIMIT)
    finally:
        await client.close()
    info = {
        "gateway": f"http://127.0.0.1:{ports['gateway']}",
        "ingest": f"http://127.0.0.1:{ports['provider-ingest']}",
        "api_key": api_key,
        "admin_key": admin_key,
        "sender_id": SENDER_ID,
        "tenant_id": DEMO_TENANT,
        "smtp": f"127.0.0.1:{smtp_port}" if smtp_port else None,
    }
    path.write_text(json.dumps(info, indent=2) + "\n")
    return info


def curl_example(info: dict[str, Any]) -> str:
    body = json.dumps({"to": "+447911123456", "body": "Hello from Postwire",
                       "senderId": info["sender_id"]})
    return (
        f"curl -sS -X POST {info['gateway']}/v1/sms/send \\\n"
        f"  -H 'Authorization: Bearer {info['api_key']}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )
