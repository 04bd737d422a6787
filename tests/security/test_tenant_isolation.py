"""A malicious tenant cannot read, change or use another tenant's anything, on every gateway route.

The routes come from the committed OpenAPI document (``openapi.json``, which a gateway test keeps in
step with the code). Tenant A (the demo tenant) owns one of every resource; tenant B, with every tenant
scope, then:
- calls every route that names a resource with A's id: 404 (403 where B lacks the operator's scope),
  in the error format, and A's resource is unchanged afterwards;
- reads every list route (with and without a search for A's data): nothing of A's shows up;
- names A's template in a send, and reuses A's idempotency key: neither reaches A's data.
A route naming a resource this test cannot make fails the test, so a new route is covered or noticed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from postwire_testing.system import DevSystem

from .conftest import TenantKeys

ROOT = Path(__file__).resolve().parents[2]
MARK = uuid.uuid4().hex[:10]
ADMIN_ONLY = {("POST", "/v1/sms/sender-id-requests/{request_id}/review")}
"""Routes for the operator's ``admin`` scope, which a tenant's key never holds: 403 before any lookup."""
NOT_OWNED = {"contact"}
"""Path parameters that are not a tenant's resource (a WhatsApp contact is a phone number any tenant
may talk to): another tenant's request answers 404 or its own, empty view, never A's data."""
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/templates/{template_id}/preview"): {"variables": {}},
    ("POST", "/v1/templates/{template_id}/versions"): {"subject": "x", "html": "<p>x</p>"},
    ("POST", "/v1/sms/sender-id-requests/{request_id}/review"): {"decision": "approve"},
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): {"enabled": False},
}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    document = json.loads((ROOT / "openapi.json").read_text())
    return [(method.upper(), path, op) for path, ops in document["paths"].items()
            for method, op in ops.items() if method in ("get", "post", "put", "patch", "delete")]


def path_params(op: dict[str, Any]) -> list[str]:
    return [p["name"] for p in op.get("parameters", []) if p.get("in") == "path"]


class Owned:
    """One of every resource, in tenant A, and the text that must never reach tenant B."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.markers: set[str] = set()

    def value(self, param: str, path: str) -> str:
        if param == "message_id":
            channel = path.split("/")[2]  # /v1/<sms|emails|whatsapp>/{message_id}
            return self.ids[f"message_id:{channel}"]
        if param not in self.ids:
            raise KeyError(param)
        return self.ids[param]


async def _ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, (r.request.method, r.request.url.path, r.status_code, r.text)
    return dict(r.json()["data"])


@pytest.fixture(scope="module")
async def owned(stack: DevSystem, tenant_a: TenantKeys) -> Owned:
    o = Owned()
    auth = tenant_a.auth
    async with httpx.AsyncClient(base_url=stack.info["gateway"], timeout=60) as c:
        sms = await _ok(await c.post("/v1/sms/send", headers=auth, json={
            "to": "+447911012001", "body": f"iso sms {MARK}", "senderId": stack.info["sender_id"]}))
        email = await _ok(await c.post("/v1/emails/send", headers=auth, json={
            "from": "hello@demo.example", "to": [f"iso-{MARK}@example.com"],
            "subject": f"iso email {MARK}", "text": f"iso email {MARK}"}))
        wa = await _ok(await c.post("/v1/whatsapp/send", headers=auth, json={
            "to": "+447911012002", "text": f"iso whatsapp {MARK}"}))
        key = await _ok(await c.post("/v1/api-keys", headers=auth, json={
            "scopes": ["read:sms"], "name": f"iso key {MARK}"}))
        domain = await _ok(await c.post("/v1/domains", headers=auth,
                                        json={"domain": f"iso-{MARK}.example"}))
        template = await _ok(await c.post("/v1/templates", headers=auth, json={
            "name": f"iso-template-{MARK}", "subject": f"iso subject {MARK}",
            "html": f"<p>iso template {MARK}</p>"}))
        request = await _ok(await c.post("/v1/sms/sender-id-requests", headers=auth,
                                         json={"senderId": f"Iso{MARK[:6]}"}))
        endpoint = await _ok(await c.post("/v1/webhook-endpoints", headers=auth, json={
            "url": f"http://127.0.0.1:9/iso-{MARK}"}))
        await _ok(await c.post("/v1/sms/opt-outs", headers=auth, json={"phone": "+447911012003"}))
        await _ok(await c.post("/v1/suppressions", headers=auth,
                               json={"email": f"iso-suppressed-{MARK}@example.com"}))
    contact = "447911012004"
    await _inbound_whatsapp(stack, contact, f"iso inbound {MARK}")
    o.ids.update({
        "message_id:sms": sms["id"], "message_id:emails": email["id"],
        "message_id:whatsapp": wa["id"], "key_id": key["id"], "domain_id": domain["id"],
        "template_id": template["id"], "version": "1", "request_id": request["id"],
        "endpoint_id": endpoint["id"], "contact": contact,
    })
    o.markers |= {MARK, "447911012001", "447911012002", "447911012003", key["key"],
                  *(v for k, v in o.ids.items() if k not in ("version", "contact"))}
    return o


async def _inbound_whatsapp(stack: DevSystem, wa_id: str, text: str) -> None:
    """A signed inbound WhatsApp message on an unknown line: ``postwire dev`` routes it to the demo
    tenant (``WHATSAPP_DEFAULT_TENANT_ID``), which then has a conversation with ``wa_id``."""
    secret = json.loads((stack.state_dir / "secrets.json").read_text())["whatsapp_app_secret"]
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "999000111222"},
            "contacts": [{"profile": {"name": f"Iso {MARK}"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": f"wamid.iso{MARK}", "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": text}}]}}]}]}
    raw = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    async with httpx.AsyncClient(base_url=stack.info["ingest"], timeout=30) as c:
        r = await c.post("/v1/webhooks/whatsapp", content=raw,
                         headers={"X-Hub-Signature-256": signature})
        assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {stack.info['api_key']}"}
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=stack.info["gateway"], timeout=30) as c:
        while time.monotonic() < deadline:  # the conversation is written by a consumer
            g = await c.get(f"/v1/whatsapp/conversations/{wa_id}", headers=auth)
            if g.status_code == 200 and text in g.text:
                return
            await asyncio.sleep(0.5)
    raise AssertionError("the inbound WhatsApp message never reached tenant A's conversation")


def _fill(path: str, op: dict[str, Any], owned: Owned) -> str:
    for param in path_params(op):
        try:
            value = owned.value(param, path)
        except KeyError:
            raise AssertionError(f"{path}: this test cannot make a {param!r} of tenant A yet; "
                                 "add it to the owned fixture") from None
        path = path.replace("{" + param + "}", value)
    return path


async def test_every_route_naming_a_resource_is_404_for_another_tenant(
        stack: DevSystem, tenant_a: TenantKeys, tenant_b: TenantKeys, owned: Owned) -> None:
    checked = 0
    async with httpx.AsyncClient(base_url=stack.info["gateway"], timeout=60) as c:
        for method, path, op in operations():
            if not path_params(op):
                continue
            url = _fill(path, op, owned)
            body = BODIES.get((method, path), {}) if method in ("POST", "PUT", "PATCH") else None
            r = await c.request(method, url, headers=tenant_b.auth, json=body)
            if set(path_params(op)) & NOT_OWNED:
                assert r.status_code in (404, 200), (method, path, r.status_code, r.text)
                assert MARK not in r.text, (method, path, r.text)
                continue
            expected = 403 if (method, path) in ADMIN_ONLY else 404
            assert r.status_code == expected, (method, path, r.status_code, r.text)
            payload = r.json()
            assert payload["success"] is False and payload["code"] == expected, payload
            echoed = {m for m in owned.markers if m in url}  # the id the caller gave, said back
            assert not any(m in r.text for m in owned.markers - echoed), (method, path, r.text)
            checked += 1
        assert checked >= 15

        # A's resources are all still there, as they were
        a = tenant_a.auth
        for channel in ("sms", "emails", "whatsapp"):
            await _ok(await c.get(f"/v1/{channel}/{owned.ids['message_id:' + channel]}", headers=a),
                      200)
        await _ok(await c.get(f"/v1/domains/{owned.ids['domain_id']}", headers=a), 200)
        template = await _ok(await c.get(f"/v1/templates/{owned.ids['template_id']}", headers=a), 200)
        assert template["latestVersion"] == 1, template
        keys = (await c.get("/v1/api-keys", headers=a, params={"pageSize": 100})).json()["data"]
        mine = [k for k in keys if k["id"] == owned.ids["key_id"]]
        assert mine and mine[0]["revokedAt"] is None, mine
        requests = (await c.get("/v1/sms/sender-id-requests", headers=a,
                                params={"pageSize": 100})).json()["data"]
        assert [r["status"] for r in requests if r["id"] == owned.ids["request_id"]] == ["pending"]
        endpoints = (await c.get("/v1/webhook-endpoints", headers=a,
                                 params={"pageSize": 100})).json()["data"]
        assert [e["enabled"] for e in endpoints if e["id"] == owned.ids["endpoint_id"]] == [True]


async def test_no_list_route_shows_another_tenants_data(
        stack: DevSystem, tenant_b: TenantKeys, owned: Owned) -> None:
    listed = 0
    async with httpx.AsyncClient(base_url=stack.info["gateway"], timeout=60) as c:
        for method, path, op in operations():
            if method != "GET" or path_params(op):
                continue
            # a list that needs a filter is asked about tenant A's own resource
            required = ({"messageId": owned.ids["message_id:sms"]}
                        if path == "/v1/webhook-attempts" else {})
            for params in ({"pageSize": 100, **required},
                           {"pageSize": 100, "query": MARK, **required}):
                r = await c.get(path, headers=tenant_b.auth, params=params)
                assert r.status_code == 200, (path, r.status_code, r.text)
                leaked = [m for m in owned.markers if m in r.text]
                assert not leaked, (path, leaked)
            listed += 1
        assert listed >= 10
        stats = (await c.get("/v1/stats", headers=tenant_b.auth)).json()["data"]
        assert not any(stats["totals"]["counts"].values()), stats["totals"]


async def test_another_tenants_template_or_idempotency_key_gets_nothing_of_theirs(
        stack: DevSystem, tenant_a: TenantKeys, tenant_b: TenantKeys, owned: Owned) -> None:
    async with httpx.AsyncClient(base_url=stack.info["gateway"], timeout=60) as c:
        r = await c.post("/v1/emails/send", headers=tenant_b.auth, json={
            "from": "hello@stranger.example", "to": ["someone@example.com"],
            "templateId": owned.ids["template_id"]})
        assert r.status_code in (404, 422), r.text
        assert MARK not in r.text
        shared_key = f"iso-idem-{MARK}"
        body = {"to": "+447911012005", "body": "same body", "senderId": stack.info["sender_id"]}
        first = await c.post("/v1/sms/send", json=body,
                             headers={**tenant_a.auth, "Idempotency-Key": shared_key})
        second = await c.post("/v1/sms/send", json=body,
                              headers={**tenant_b.auth, "Idempotency-Key": shared_key})
        assert first.status_code == second.status_code == 201, (first.text, second.text)
        assert first.json()["data"]["id"] != second.json()["data"]["id"]
        assert "idempotent-replayed" not in second.headers
