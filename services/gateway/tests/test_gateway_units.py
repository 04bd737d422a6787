"""The gateway's pure parts: phone numbers, body decoding, views, command rebuilding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from postwire_contracts.messages import SendSms
from postwire_gateway.decoding import decode_body, int_param
from postwire_gateway.outbox import send_command
from postwire_gateway.phones import normalise_phone
from postwire_gateway.sms_models import SendSmsRequest
from postwire_gateway.views import iso, pagination, timeline_view
from postwire_platform.errors import ApiError


@pytest.mark.parametrize(("raw", "expected"), [
    ("+1 (415) 555-2671", "+14155552671"),
    ("+44 7911 123456", "+447911123456"),
    ("+15005550001", "+15005550001"),  # a sandbox magic recipient is a valid number
])
def test_numbers_are_normalised_to_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", [
    "4155552671", "+1415", "hello", "", "+447700900001", "+4477009000012", "+15555555555"])
def test_invalid_numbers_are_422_on_to(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        normalise_phone(raw)
    assert (caught.value.status, caught.value.error, caught.value.field) == (
        422, "invalid_phone_number", "to")


@pytest.mark.parametrize(("raw", "status", "field"), [
    (b"{", 400, None), (b"null", 400, None),
    (b'{"to": "+1", "body": "x", "senderId": "S", "metadata": {"": "v"}}', 422, "metadata"),
    (b'{"to": "+1", "body": "x", "senderId": "S", "externalId": ""}', 422, "externalId"),
])
def test_decoding_errors_name_the_camel_case_field(raw: bytes, status: int,
                                                   field: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        decode_body(raw, SendSmsRequest)
    assert (caught.value.status, caught.value.field) == (status, field)


def test_a_body_decodes_with_defaults() -> None:
    body = decode_body(b'{"to": "+1", "body": "x", "senderId": "S", "extra": 1}', SendSmsRequest)
    assert (body.sender_id, body.flow, body.metadata, body.external_id) == ("S", "STANDARD", {}, None)


def test_int_params_are_bounded() -> None:
    assert int_param({}, "page", default=1, minimum=1) == 1
    assert int_param({"pageSize": "100"}, "pageSize", default=20, minimum=1, maximum=100) == 100
    with pytest.raises(ApiError):
        int_param({"pageSize": "101"}, "pageSize", default=20, minimum=1, maximum=100)


def test_timeline_view_sorts_by_time_then_status_and_keeps_arrival_order() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [{"status": "DELIVERED", "occurred_at": t, "source": "a"},
               {"status": "SENT", "occurred_at": t, "source": "b"},
               {"status": "SENT", "occurred_at": t, "source": "c"},
               {"status": "QUEUED", "occurred_at": t - timedelta(seconds=1), "source": "d"},
               {"status": "PROCESSING", "occurred_at": t, "source": "e"}]
    assert [e["source"] for e in timeline_view(entries)] == ["d", "e", "b", "c", "a"]


def test_views_format_times_and_pages() -> None:
    assert iso(datetime(2026, 1, 1, 12, 0, 0, 5000, tzinfo=UTC)) == "2026-01-01T12:00:00.005Z"
    assert iso(None) is None
    assert pagination(1, 10, 0) == {"page": 1, "pageSize": 10, "total": 0, "totalPages": 0,
                                    "hasNext": False}
    assert pagination(2, 10, 21)["totalPages"] == 3


def test_a_damaged_document_is_never_turned_into_a_command() -> None:
    command = {"kind": "send.sms.v1", "message_id": "m", "tenant_id": "t", "live": True, "to": "+1",
               "body": "x", "sender_id": "S", "accepted_at": "2026-01-01T00:00:00Z"}
    doc = {"_id": "m", "command": command}
    rebuilt = send_command(doc)
    assert isinstance(rebuilt, SendSms) and rebuilt.flow == "STANDARD"
    with pytest.raises(msgspec.ValidationError):
        send_command({**doc, "command": {**command, "body": None}})
    with pytest.raises(msgspec.ValidationError):
        send_command({"_id": "m"})
    with pytest.raises(msgspec.ValidationError):
        send_command({"_id": "other", "command": command})
