"""The client against the real gateway: sends, batches, reads, pagination, idempotency, error mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postwire_client import (
    AsyncPostwire,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Postwire,
    SmsSend,
    ValidationError,
    WhatsAppTemplate,
)

from .sdk_support import SENDER, LosesFirstAnswer, Tenant, sms_item


def client_for(tenant: Tenant, **kwargs: object) -> Postwire:
    return Postwire(tenant.key, base_url=tenant.base_url, **kwargs)  # type: ignore[arg-type]


def test_send_sms_then_read_it_back(tenant: Tenant) -> None:
    with client_for(tenant) as client:
        sent = client.sms.send(to="+1 415-555-2671", body="Your code is 123456", sender_id=SENDER,
                               flow="OTP", metadata={"order": "42"}, external_id="ord-42")
        assert (sent.status, sent.to, sent.sender_id, sent.flow, sent.channel, sent.live) == (
            "QUEUED", "+14155552671", SENDER, "OTP", "sms", True)
        assert sent.metadata == {"order": "42"} and sent.external_id == "ord-42"
        assert sent.accepted_at is not None
        assert abs(datetime.now(UTC) - sent.accepted_at) < timedelta(minutes=5)

        fetched = client.sms.get(sent.id)
        assert fetched.id == sent.id and fetched.body == "Your code is 123456"

        timeline = client.sms.timeline(sent.id)
        assert [(e.status, e.source) for e in timeline] == [("QUEUED", "gateway")]

        page = client.sms.list(flow="OTP", query="ord-42")
        assert [m.id for m in page.data] == [sent.id]
        assert (page.pagination.total, page.pagination.has_next) == (1, False)
        assert client.sms.list(flow="STANDARD").data == []


async def test_async_client_sends_on_every_channel(tenant: Tenant) -> None:
    # a test key: a live one may send email only from a verified domain
    async with AsyncPostwire(tenant.test_key, base_url=tenant.base_url) as client:
        sms = await client.sms.send(to="+14155552671", body="hi", sender_id=SENDER)
        email = await client.emails.send(from_="noreply@acme.example", to="Ann@Example.com",
                                         subject="Receipt", text="Thanks")
        wa = await client.whatsapp.send(
            to="+14155552671",
            template=WhatsAppTemplate(name="order_update", language="en_US", body_parameters=["#1"]))
        assert (sms.channel, email.channel, wa.channel) == ("sms", "email", "whatsapp")
        recipients = [email.to] if isinstance(email.to, str) else email.to  # one message per recipient
        assert recipients == ["Ann@example.com"] and email.subject == "Receipt"
        assert wa.template is not None and wa.template.body_parameters == ["#1"]
        assert (await client.emails.get(email.id)).from_ == "noreply@acme.example"
        assert [m.id async for m in client.whatsapp.list_all()] == [wa.id]
        assert [e.status for e in await client.emails.timeline(email.id)] == ["QUEUED"]


def test_batch_with_a_bad_item_accepts_the_rest(tenant: Tenant) -> None:
    with client_for(tenant) as client:
        result = client.sms.batch([
            SmsSend(to="+14155552671", body="one", sender_id=SENDER),
            sms_item(to="not a number"),
            sms_item(body="three", senderId="Unapproved"),
            sms_item(body="four", externalId="four"),
        ])
        assert (result.accepted, result.rejected) == (2, 2)
        assert [(r.index, r.success) for r in result.results] == [
            (0, True), (1, False), (2, False), (3, True)]
        bad_number, bad_sender = result.results[1], result.results[2]
        assert (bad_number.code, bad_number.field) == (422, "to") and bad_number.error
        assert (bad_sender.code, bad_sender.field) == (422, "senderId")
        assert result.results[3].data is not None and result.results[3].data.external_id == "four"
        stored = {m.id for m in client.sms.list_all()}
        assert stored == {r.data.id for r in result.results if r.data is not None}


def test_a_retried_send_whose_first_answer_was_lost_is_not_sent_twice(tenant: Tenant) -> None:
    transport = LosesFirstAnswer()
    with client_for(tenant, transport=transport) as client:
        sent = client.sms.send(to="+14155552671", body="exactly once", sender_id=SENDER)
        first, second = transport.seen
        key = first.headers["idempotency-key"]
        assert key and second.headers["idempotency-key"] == key
        assert transport.answers[0].headers.get("idempotent-replayed") == "true"
        assert [m.id for m in client.sms.list_all(query="exactly once")] == [sent.id]


def test_an_idempotency_key_of_the_callers_own(tenant: Tenant) -> None:
    with client_for(tenant) as client:
        one = client.sms.send(to="+14155552671", body="a", sender_id=SENDER, idempotency_key="order-7")
        again = client.sms.send(to="+14155552671", body="a", sender_id=SENDER, idempotency_key="order-7")
        assert again.id == one.id
        with pytest.raises(ConflictError) as caught:
            client.sms.send(to="+14155552671", body="b", sender_id=SENDER, idempotency_key="order-7")
        assert caught.value.error == "idempotency_key_reused"
        other = client.sms.send(to="+14155552671", body="a", sender_id=SENDER)
        assert other.id != one.id  # no key of the caller's: a fresh one per call
        assert client.sms.list().pagination.total == 2


def test_errors_are_typed_and_carry_the_spec_body(tenant: Tenant) -> None:
    with Postwire("pw_live_nope", base_url=tenant.base_url) as stranger, pytest.raises(
            AuthenticationError) as unauthorized:
        stranger.sms.list()
    assert (unauthorized.value.status_code, unauthorized.value.error) == (401, "unauthorized")

    with Postwire(tenant.sms_read_key, base_url=tenant.base_url) as reader, pytest.raises(
            PermissionDeniedError) as forbidden:
        reader.sms.send(to="+14155552671", body="x", sender_id=SENDER)
    assert forbidden.value.code == 403 and "send:sms" in forbidden.value.message

    with client_for(tenant) as client:
        with pytest.raises(ValidationError) as invalid:
            client.sms.send(to="+1415", body="x", sender_id=SENDER)
        assert (invalid.value.status_code, invalid.value.field) == (422, "to")
        with pytest.raises(ValidationError) as bad_filter:
            client.sms.list(page_size=500)
        assert bad_filter.value.field == "pageSize"
        with pytest.raises(ValidationError) as extra:  # extra_body reaches the server as given
            client.sms.send(to="+14155552671", body="x", sender_id=SENDER, extra_body={"flow": "LOUD"})
        assert extra.value.field == "flow"
        with pytest.raises(NotFoundError) as missing:
            client.sms.get("msg_does_not_exist")
        assert missing.value.error == "not_found" and missing.value.field is None


def test_list_all_pages_through_everything_newest_first(tenant: Tenant) -> None:
    with client_for(tenant) as client:
        sent = [client.sms.send(to="+14155552671", body=f"n{i}", sender_id=SENDER).id for i in range(7)]
        first = client.sms.list(page_size=3)
        assert (first.pagination.total, first.pagination.total_pages, first.pagination.has_next) == (
            7, 3, True)
        listed = [m.id for m in client.sms.list_all(page_size=3)]
        assert sorted(listed) == sorted(sent) and len(set(listed)) == 7
        accepted = [client.sms.get(i).accepted_at for i in listed]
        assert accepted == sorted(accepted, reverse=True)  # type: ignore[type-var]
        assert [m.id for m in client.sms.list_all(page_size=3, query="n4")] == [sent[4]]
