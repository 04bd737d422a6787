"""Opt-out keywords and SMPP receipts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postwire_sms.keywords import KeywordList, Keywords, normalise
from postwire_sms.receipts import (
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    from_deliver_sm,
    outcome_of,
    parse_date,
    parse_text,
    receipt_key,
)


@pytest.mark.parametrize(("text", "intent"), [
    ("STOP", "opt_out"), (" stop ", "opt_out"), ("Stop!", "opt_out"), ("stop.", "opt_out"),
    ("UNSUBSCRIBE", "opt_out"), ("StopAll", "opt_out"), ("quit", "opt_out"),
    ("START", "opt_in"), ("yes", "opt_in"), ("Unstop", "opt_in"),
    ("HELP", "help"), ("info?", "help"),
    ("STOP PLEASE", None), ("please stop", None), ("", None), ("   ", None), ("stopp", None),
    ("S T O P", None),
])
def test_exact_single_keyword(text: str, intent: str | None) -> None:
    assert Keywords().intent(text) == intent


def test_per_sender_lists() -> None:
    kw = Keywords(senders={"+15550001": KeywordList(opt_out=["ARRET"], opt_in=["COMMENCER"])})
    assert kw.intent("arrêt", "15550001") is None  # accents are not stripped
    assert kw.intent("arret", "15550001") == "opt_out"
    assert kw.intent("STOP", "15550001") is None
    assert kw.intent("STOP", "Other") == "opt_out"
    assert normalise("  ¡Stop!  ") == "STOP"


def test_text_receipt_and_tlvs() -> None:
    raw = (b"id:0000ABC sub:001 dlvrd:001 submit date:2611211200 done date:261121120005 "
           b"stat:DELIVRD err:000 Text:hi")
    r = from_deliver_sm(raw, {})
    assert r is not None and (r.carrier_id, r.stat, r.err) == ("0000ABC", "DELIVRD", "000")
    assert parse_date(r.text.done_date) == datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC)
    tlv_only = from_deliver_sm(b"", {TLV_RECEIPTED_MESSAGE_ID: b"xyz\x00", TLV_MESSAGE_STATE: b"\x05"})
    assert tlv_only is not None and (tlv_only.carrier_id, tlv_only.stat) == ("xyz", "UNDELIV")
    both = from_deliver_sm(raw, {TLV_MESSAGE_STATE: b"\x08"})
    assert both is not None and both.stat == "REJECTD"
    assert from_deliver_sm(b"hello", {}) is None
    assert parse_text("ID:1 STAT:enroute").stat == "ENROUTE"
    assert [outcome_of(s) for s in ("DELIVRD", "UNDELIV", "ENROUTE", "ACCEPTD")] == [
        "delivered", "failed", "pending", "pending"]


def test_receipt_keys() -> None:
    assert receipt_key("0000ABC") == receipt_key("abc")
    assert receipt_key("1A", "hex_to_decimal") == receipt_key("26")
    assert receipt_key("26", "decimal_to_hex") == receipt_key("1a")
    assert receipt_key("10") != receipt_key("16")
