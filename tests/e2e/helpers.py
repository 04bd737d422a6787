"""What the end-to-end tests do over HTTP, the way a customer would."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def cli(mongodb_url: str, *args: str) -> dict[str, Any]:
    """Run the operator CLI (``postwire …``) and return its JSON answer."""
    exe = Path(sys.executable).with_name("postwire")
    out = subprocess.run([str(exe), "--mongodb-url", mongodb_url, *args], check=True,
                         capture_output=True, text=True, timeout=60)
    return dict(json.loads(out.stdout))


async def wait_status(client: httpx.AsyncClient, key: str, message_id: str, statuses: set[str],
                      timeout: float = 30.0) -> dict[str, Any]:
    """Bounded poll of ``GET /v1/sms/{id}`` until the status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await client.get(f"/v1/sms/{message_id}", headers={"Authorization": f"Bearer {key}"})
        if r.status_code == 200:
            last = r.json()["data"]
            if last["status"] in statuses:
                return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{message_id} never reached {statuses}; last seen {last}")


def send_body(sender_id: str, to: str = "+447911123456", body: str = "Hello") -> dict[str, Any]:
    return {"to": to, "body": body, "senderId": sender_id}
