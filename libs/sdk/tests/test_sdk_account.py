"""The client's configuration resources against the real gateway: API keys, sender ids, opt-outs,
suppressions, and the gateway's own rate limit answered by the client's retries."""

from __future__ import annotations

import httpx
import pytest
from pymongo import AsyncMongoClient

from postwire_client import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Postwire,
    ValidationError,
)
from postwire_platform import tenancy
from postwire_platform.mongo import Document

from .sdk_support import SENDER, Tenant


def client_for(tenant: Tenant, key: str | None = None) -> Postwire:
    return Postwire(key or tenant.key, base_url=tenant.base_url)


def test_api_keys_create_list_revoke(tenant: Tenant) -> None:
    with client_for(tenant) as client:
        created = client.api_keys.create(scopes=["read:sms"], name="dashboard")
        assert created.key.startswith("pw_test_") and created.mode == "test"
        assert (created.name, created.scopes, created.revoked_at) == ("dashboard", ["read:sms"], None)

        with client_for(tenant, created.key) as reader:
            assert reader.sms.list().data == []
            with pytest.raises(PermissionDeniedError):
                reader.api_keys.list()

        listed = {k.id: k for k in client.api_keys.list_all()}
        assert created.id in listed and listed[created.id].prefix == created.key[:12]

        client.api_keys.revoke(created.id)
        client.api_keys.revoke(created.id)  # twice is fine
        with client_for(tenant, created.key) as revoked, pytest.raises(AuthenticationError):
            revoked.sms.list()
        assert created.id not in {k.id for k in client.api_keys.list_all(include_revoked=False)}
        revoked_view = {k.id: k for k in client.api_keys.list_all()}[created.id]
        assert revoked_view.revoked_at is not None

        with pytest.raises(PermissionDeniedError):
            client.api_keys.create(scopes=["admin"])
        with pytest.raises(NotFoundError):
            client.api_keys.revoke("key_unknown")


def test_sender_id_request_review_and_use(tenant: Tenant) -> None:
    with client_for(tenant) as client, client_for(tenant, tenant.admin_key) as admin:
        request = client.sms.sender_id_requests.create(sender_id="Acme", purpose="receipts",
                                                       countries=["gb", "US"])
        assert (request.status, request.sender_id, request.countries) == ("pending", "Acme", ["GB", "US"])
        with pytest.raises(ConflictError):
            client.sms.sender_id_requests.create(sender_id="Acme")
        pending = client.sms.sender_id_requests.list(status="pending").data
        assert [r.id for r in pending] == [request.id]

        with pytest.raises(PermissionDeniedError):
            client.sms.sender_id_requests.review(request.id, decision="approve")
        with pytest.raises(ValidationError) as no_reason:
            admin.sms.sender_id_requests.review(request.id, decision="reject")
        assert no_reason.value.field == "reason"

        reviewed = admin.sms.sender_id_requests.review(request.id, decision="approve")
        assert reviewed.status == "approved" and reviewed.reviewed_at is not None
        assert {s.sender_id for s in client.sms.sender_ids.list_all()} == {SENDER, "Acme"}
        assert client.sms.send(to="+14155552671", body="hi", sender_id="Acme").sender_id == "Acme"

        with pytest.raises(ValidationError) as invalid:
            client.sms.sender_id_requests.create(sender_id="Way too long a sender")
        assert invalid.value.field == "senderId"


def test_opt_outs_add_list_remove(tenant: Tenant) -> None:
    with client_for(tenant) as client:
        added = client.sms.opt_outs.add(phone="+1 415 555 2671")
        assert (added.phone, added.source) == ("+14155552671", "api")
        with pytest.raises(ConflictError) as twice:
            client.sms.opt_outs.add(phone="+14155552671")
        assert twice.value.error == "already_opted_out"
        client.sms.opt_outs.add(phone="+14155552672")
        assert {o.phone for o in client.sms.opt_outs.list_all()} == {"+14155552671", "+14155552672"}
        assert [o.phone for o in client.sms.opt_outs.list(phone="+14155552672").data] == [
            "+14155552672"]
        client.sms.opt_outs.remove(phone="+14155552671")
        with pytest.raises(NotFoundError):
            client.sms.opt_outs.remove(phone="+14155552671")
        assert [o.phone for o in client.sms.opt_outs.list_all()] == ["+14155552672"]


def test_suppressions_add_list_remove(tenant: Tenant) -> None:
    with client_for(tenant) as client:
        added = client.suppressions.add(email="Ann@Example.com", reason="unsubscribe")
        assert (added.email, added.reason, added.source) == ("ann@example.com", "unsubscribe", "api")
        with pytest.raises(ConflictError):
            client.suppressions.add(email="ann@example.com")
        client.suppressions.add(email="bob@example.com")
        assert [s.email for s in client.suppressions.list(reason="manual").data] == ["bob@example.com"]
        client.suppressions.remove(email="ann@example.com")
        with pytest.raises(NotFoundError):
            client.suppressions.remove(email="ann@example.com")
        assert [s.email for s in client.suppressions.list_all()] == ["bob@example.com"]


async def test_the_gateways_rate_limit_is_waited_out(tenant: Tenant, mongo: AsyncMongoClient[Document],
                                                     gateway_db: str) -> None:
    slow_key, _ = await tenancy.create_key(mongo[gateway_db], tenant.id, ["send:sms", "read:sms"],
                                           mode="live", rate_limit=(600, 1))
    statuses: list[int] = []
    http = httpx.Client(timeout=30, event_hooks={"response": [lambda r: statuses.append(r.status_code)]})
    with http, Postwire(slow_key, base_url=tenant.base_url, http_client=http) as client:
        ids = [client.sms.send(to="+14155552671", body=f"burst {i}", sender_id=SENDER).id
               for i in range(3)]
    assert len(set(ids)) == 3
    assert 429 in statuses  # one a second: the client met the limit and waited as told
    assert statuses.count(201) == 3
