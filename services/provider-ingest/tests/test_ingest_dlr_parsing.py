"""DLR parsing and normalisation: the SMPP text form's variants and the stat mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postwire_contracts.status import Status
from postwire_provider_ingest.dlr import (
    DlrBody,
    InvalidReceipt,
    normalise,
    parse_date,
    parse_text,
    status_for,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CANONICAL = ("id:0000000012345678 sub:001 dlvrd:001 submit date:2606081652 done date:2606081653 "
             "stat:DELIVRD err:000 text:Hello world")


def test_canonical_text_form() -> None:
    r = parse_text(CANONICAL)
    assert (r.id, r.sub, r.dlvrd, r.stat, r.err) == ("0000000012345678", "001", "001", "DELIVRD",
                                                     "000")
    assert (r.submit_date, r.done_date, r.text) == ("2606081652", "2606081653", "Hello world")


@pytest.mark.parametrize("receipt", [
    "id:AB12cd sub:001 dlvrd:000 submit date:260608165201 done date:260608165359 stat:UNDELIV "
    "err:034 Text:stat:fake inside text",
    "ID:AB12cd SUB:001 DLVRD:000 SUBMIT DATE:260608165201 DONE DATE:260608165359 STAT:undeliv "
    "ERR:034",
    "id:AB12cd  submit_date:260608165201 done_date:260608165359 stat:UNDELIV err:034 TEXT:",
])
def test_lenient_variants(receipt: str) -> None:
    r = parse_text(receipt)
    assert (r.id, r.stat, r.err) == ("AB12cd", "UNDELIV", "034")
    assert parse_date(r.done_date) == datetime(2026, 6, 8, 16, 53, 59, tzinfo=UTC)
    assert r.text in (None, "", "stat:fake inside text")


def test_missing_fields_are_none() -> None:
    r = parse_text("id:42 stat:ENROUTE")
    assert (r.id, r.stat, r.err, r.done_date, r.text) == ("42", "ENROUTE", None, None, None)


@pytest.mark.parametrize(("value", "expected"), [
    ("2606081652", datetime(2026, 6, 8, 16, 52, tzinfo=UTC)),
    ("260608165230", datetime(2026, 6, 8, 16, 52, 30, tzinfo=UTC)),
    ("2026-06-08T16:52:30Z", datetime(2026, 6, 8, 16, 52, 30, tzinfo=UTC)),
    ("2026-06-08T18:52:30+02:00", datetime(2026, 6, 8, 16, 52, 30, tzinfo=UTC)),
    ("2613450000", None), ("yesterday", None), ("", None), (None, None),
])
def test_dates(value: str | None, expected: datetime | None) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(("stat", "status"), [
    ("DELIVRD", Status.DELIVERED), ("UNDELIV", Status.FAILED), ("EXPIRED", Status.FAILED),
    ("DELETED", Status.FAILED), ("REJECTD", Status.FAILED), ("UNKNOWN", Status.FAILED),
    ("ENROUTE", Status.SENT), ("ACCEPTD", Status.SENT), ("SOMETHING", Status.SENT),
])
def test_stat_mapping(stat: str, status: Status) -> None:
    assert status_for(stat) is status


def test_json_fields_win_and_the_text_fills_gaps() -> None:
    body = DlrBody(id="c-9", reference="m-ref", stat="undeliv", err=34, receipt=CANONICAL)
    event = normalise(body, "{raw}", mid=None, now=NOW)
    assert event.event_id == "dlr:c-9:UNDELIV"
    assert (event.status, event.error_code) == (Status.FAILED, "UNDELIV")
    assert event.error_reason == "undeliverable (err 34)"
    assert event.message_id == "m-ref" and event.provider_message_id == "c-9"
    assert event.occurred_at == datetime(2026, 6, 8, 16, 53, tzinfo=UTC)
    assert event.raw == CANONICAL and event.source == "carrier-dlr"


def test_text_only_receipt_and_query_mid() -> None:
    event = normalise(DlrBody(receipt=CANONICAL), "{raw}", mid="m-1", now=NOW)
    assert (event.event_id, event.status, event.message_id) == (
        "dlr:0000000012345678:DELIVRD", Status.DELIVERED, "m-1")
    assert event.error_code is None and event.provider_status == "DELIVRD"


def test_unparseable_done_date_means_now_and_raw_body_is_kept() -> None:
    event = normalise(DlrBody(id="c", stat="ENROUTE", done_date="later"), '{"id":"c"}', mid=None,
                      now=NOW)
    assert (event.status, event.occurred_at, event.raw) == (Status.SENT, NOW, '{"id":"c"}')
    assert event.message_id is None


@pytest.mark.parametrize("body", [DlrBody(stat="DELIVRD"), DlrBody(id="c"),
                                  DlrBody(receipt="hello there")])
def test_receipts_without_id_or_stat_are_invalid(body: DlrBody) -> None:
    with pytest.raises(InvalidReceipt):
        normalise(body, "", mid=None, now=NOW)
