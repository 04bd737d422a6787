"""No secret in the clear at rest or in telemetry.

A tenant makes API keys through the API and sends with them (REST and SMTP submission), creates a
webhook endpoint and rotates its secret, stores its own WhatsApp token and creates a sending domain
(whose DKIM private key the gateway generates). Then every document of every collection of every
database, every file the running system wrote in its state directory's ``logs`` (the services',
supervisord's and SecantusDB's) and every exported span are searched for each secret:
- API keys appear nowhere; ``api_keys`` holds their SHA-256 and a short display prefix;
- webhook secrets, WhatsApp tokens and DKIM private keys appear only sealed
  (``postwire_platform.secrets_at_rest``: ``enc:v1:…``), and open with ``SECRET_KEYS`` under their
  documented context, so a rotated key can re-seal them (``postwire secrets rotate``);
- the installation's own secrets (``SECRET_KEYS``, callback tokens, app secrets) are not logged or
  traced either.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from typing import Any

import httpx
from bson import json_util

from postwire_cli.secrets import SEALED
from postwire_platform.mongo import make_client
from postwire_platform.secrets_at_rest import PREFIX, Keyring
from postwire_testing.otlp import OtlpReceiver
from postwire_testing.system import DevSystem
from tests.e2e.helpers import cli


def _submit(host_port: str, key: str, to: str) -> None:
    host, port = host_port.rsplit(":", 1)
    message = EmailMessage()
    message["From"] = "hello@demo.example"
    message["To"] = to
    message["Subject"] = "Leak check"
    message.set_content("hello")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # postwire dev's self-signed certificate
    with smtplib.SMTP(host, int(port), timeout=30) as client:
        client.starttls(context=context)
        client.login("apikey", key)
        assert client.send_message(message) == {}


async def _use_the_secrets(stack: DevSystem) -> dict[str, str]:
    """Make every kind of tenant secret and use it; return them by name."""
    url = stack.mongodb_url
    tenant = (await asyncio.to_thread(cli, url, "tenants", "create", "Leak check"))["id"]
    await asyncio.to_thread(cli, url, "sender-ids", "approve", "--tenant", tenant, "Postwire")
    operator = (await asyncio.to_thread(cli, url, "keys", "create", "--tenant", tenant,
                                        "--scopes", "all", "--rate-limit", "100000/10000"))["key"]
    secrets = {"operator key": operator}
    admin = {"Authorization": f"Bearer {operator}"}
    async with httpx.AsyncClient(base_url=stack.info["gateway"], timeout=60) as c:
        r = await c.post("/v1/api-keys", headers=admin, json={
            "scopes": ["send:sms", "read:sms", "send:email", "read:email", "send:whatsapp"],
            "name": "leak check"})
        assert r.status_code == 201, r.text
        key = secrets["api key"] = r.json()["data"]["key"]
        auth = {"Authorization": f"Bearer {key}"}
        sms = await c.post("/v1/sms/send", headers=auth, json={
            "to": "+447911123456", "body": "leak check", "senderId": "Postwire"})
        assert sms.status_code == 201, sms.text
        for path, body in (("/v1/emails/send", {"from": "hello@demo.example",
                                                "to": ["ada@example.com"], "subject": "Leak",
                                                "text": "check"}),
                           ("/v1/whatsapp/send", {"to": "+447911123457", "text": "leak check"})):
            assert (await c.post(path, headers=auth, json=body)).status_code == 201
        # a wrong key next to the real ones: refused, and logged (if at all) without the real ones
        assert (await c.get("/v1/sms", headers={"Authorization": "Bearer pw_test_nope"})
                ).status_code == 401

        r = await c.post("/v1/webhook-endpoints", headers=admin,
                         json={"url": "http://127.0.0.1:9/leak-check"})
        assert r.status_code == 201, r.text
        endpoint = r.json()["data"]
        secrets["webhook secret"] = endpoint["secret"]
        r = await c.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=admin,
                         json={})
        assert r.status_code == 200, r.text
        secrets["rotated webhook secret"] = r.json()["data"]["secret"]

        token = "EAAG" + uuid.uuid4().hex + uuid.uuid4().hex
        r = await c.patch("/v1/account/whatsapp-cloud-line", headers=admin, json={
            "whatsappPhoneNumberId": str(100000000000000 + int(time.time()) % 10**9),
            "whatsappAccessToken": token})
        assert r.status_code == 200, r.text
        assert token not in r.text
        secrets["whatsapp token"] = token

        r = await c.post("/v1/domains", headers=admin,
                         json={"domain": f"leak-{uuid.uuid4().hex[:8]}.example"})
        assert r.status_code == 201, r.text
        assert "PRIVATE KEY" not in r.text

        for _ in range(60):  # the SMS goes the whole way, so every service has handled secrets' users
            got = (await c.get(f"/v1/sms/{sms.json()['data']['id']}", headers=auth)).json()["data"]
            if got["status"] == "DELIVERED":
                break
            await asyncio.sleep(0.5)
    await asyncio.to_thread(_submit, stack.info["smtp"], key, "grace@example.com")
    return secrets


def _dkim_keys(docs: list[dict[str, Any]], keyring: Keyring) -> dict[str, str]:
    """Each domain's DKIM private key, opened with SECRET_KEYS; the base64 body's longest line."""
    found = {}
    for doc in docs:
        pem = keyring.decrypt(doc["dkim_private_key"], context=f"domains.dkim_private_key:{doc['_id']}")
        lines = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
        found[f"dkim key of {doc['domain']}"] = max(lines, key=len)
    return found


def _sealed_values(db_docs: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str]]:
    """(collection, _id, stored value) of every sealed field present."""
    out = []
    for collection, dotted in SEALED:
        for doc in db_docs.get(collection, []):
            value: Any = doc
            for part in dotted.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                out.append((f"{collection}.{dotted}", str(doc["_id"]), value))
    return out


async def test_no_secret_in_the_clear_in_mongodb_logs_or_spans(
        stack: DevSystem, otlp: OtlpReceiver) -> None:
    secrets = await _use_the_secrets(stack)
    installation = json.loads((stack.state_dir / "secrets.json").read_text())
    keyring = Keyring([installation["secret_key"]])
    demo = json.loads((stack.state_dir / "dev.json").read_text())
    secrets |= {"demo key": demo["api_key"], "demo admin key": demo["admin_key"]}

    client = make_client(stack.mongodb_url)
    try:
        dumps: dict[str, list[dict[str, Any]]] = {}
        texts: list[tuple[str, str]] = []
        for name in await client.list_database_names():
            db = client[name]
            for collection in await db.list_collection_names():
                docs = await db[collection].find({}).to_list(None)
                dumps[collection] = dumps.get(collection, []) + docs
                texts += [(f"{name}.{collection}", json_util.dumps(d)) for d in docs]
    finally:
        await client.close()
    assert len(texts) > 20 and {"api_keys", "messages", "webhook_endpoints"} <= set(dumps)

    secrets |= _dkim_keys(dumps["domains"], keyring)
    sealed = _sealed_values(dumps)
    assert {field for field, _, _ in sealed} >= {"webhook_endpoints.secret",
                                                 "tenants.whatsapp_line.access_token",
                                                 "domains.dkim_private_key"}
    for field, doc_id, value in sealed:
        assert value.startswith(PREFIX), f"{field} of {doc_id} is stored in the clear"
        keyring.decrypt(value, context=f"{field}:{doc_id}")  # opens under its documented context

    hashes = {d["hash"] for d in dumps["api_keys"]}
    for name in ("api key", "operator key", "demo key", "demo admin key"):
        assert hashlib.sha256(secrets[name].encode()).hexdigest() in hashes, name

    # the installation's own secrets must not be logged or traced (they live in its environment)
    own = {f"installation {k}": v for k, v in installation.items() if len(v) >= 16}
    wanted = {**secrets, **own}
    # a key's random part alone would be as bad as the whole key
    wanted |= {f"{n} (random part)": v[12:] for n, v in secrets.items() if n.endswith("key")
               and v.startswith("pw_")}
    for where, text in texts:
        for name, value in secrets.items():
            assert value not in text, f"{name} in the clear in MongoDB {where}"
    # the search sees the key records: their display prefix (12 characters) is there
    assert any(secrets["api key"][:12] in text for where, text in texts if where.endswith("api_keys"))

    otlp.wait_for(lambda spans: any(s.service == "provider-ingest" for s in spans), timeout=60)
    spans = otlp.spans
    assert len(spans) > 20
    for span in spans:
        text = span.text()
        for name, value in wanted.items():
            assert value not in text, f"{name} in span {span.service}: {span.name}"

    logs = [p for p in (stack.state_dir / "logs").rglob("*") if p.is_file()]
    assert {p.name for p in logs} >= {"gateway.log", "provider-ingest.log", "smtp.log"}
    size = 0
    for path in logs:
        content = path.read_text(errors="replace")
        size += len(content)
        for name, value in wanted.items():
            assert value not in content, f"{name} in {path.name}"
        assert not re.search(r"pw_(live|test)_[A-Za-z0-9]{20,}", content), \
            f"something shaped like an API key in {path.name}"
    assert size > 10_000
