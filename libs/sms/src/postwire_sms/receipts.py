"""SMS delivery receipts: the SMPP text form, the TLVs, and what their states mean for our status.

The text form (SMPP 3.4 appendix B, de facto) is parsed leniently: keys in any case, ``submit date`` /
``done date`` as ``YYMMDDhhmm`` or ``YYMMDDhhmmss``, ``text`` optional and always last, ids hex or decimal
(kept as strings). The TLVs ``receipted_message_id`` (0x001E) and ``message_state`` (0x0427) win when
present.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

import msgspec

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423

MESSAGE_STATES: dict[int, str] = {
    1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
    7: "UNKNOWN", 8: "REJECTD",
}
"""SMPP ``message_state`` values and their text-form ``stat``."""

FAILED_STATS: dict[str, str] = {
    "UNDELIV": "undeliverable",
    "EXPIRED": "validity period expired",
    "DELETED": "deleted by the carrier",
    "REJECTD": "rejected by the carrier",
    "UNKNOWN": "unknown final state",
}
"""Final failure states and a human reason for each."""

Outcome = Literal["delivered", "failed", "pending"]


class TextReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of an SMPP text-form receipt; None where absent."""

    id: str | None = None
    sub: str | None = None
    dlvrd: str | None = None
    submit_date: str | None = None
    done_date: str | None = None
    stat: str | None = None
    err: str | None = None
    text: str | None = None


_TEXT = re.compile(r"(?:^|\s)text\s*:", re.IGNORECASE)
_FIELD = re.compile(r"(?:^|\s)(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err)\s*:\s*(\S*)",
                    re.IGNORECASE)


def parse_text(receipt: str) -> TextReceipt:
    """Parse ``id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`` leniently."""
    text: str | None = None
    head = receipt
    match = _TEXT.search(receipt)
    if match:
        head, text = receipt[: match.start()], receipt[match.end():]
    found: dict[str, str] = {}
    for key, value in _FIELD.findall(head):
        name = re.sub(r"[ _]?date$", "_date", key.lower())
        found.setdefault(name, value)
    return TextReceipt(
        id=found.get("id") or None, sub=found.get("sub"), dlvrd=found.get("dlvrd"),
        submit_date=found.get("submit_date"), done_date=found.get("done_date"),
        stat=(found.get("stat") or "").upper() or None, err=found.get("err") or None, text=text,
    )


def parse_date(value: str | None) -> datetime | None:
    """An SMPP ``YYMMDDhhmm[ss]`` date (taken as UTC) or an ISO 8601 one; None if neither."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit() and len(value) in (10, 12):
        try:
            return datetime.strptime(value, "%y%m%d%H%M%S" if len(value) == 12 else "%y%m%d%H%M"
                                     ).replace(tzinfo=UTC)
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def outcome_of(stat: str) -> Outcome:
    """DELIVRD → delivered; final failures → failed; ENROUTE, ACCEPTD and anything else → pending."""
    if stat == "DELIVRD":
        return "delivered"
    if stat in FAILED_STATS:
        return "failed"
    return "pending"


def failure_reason(stat: str, err: str | None) -> str:
    """``undeliverable (err 005)`` for a failed ``stat``."""
    meaning = FAILED_STATS.get(stat, stat.lower())
    return f"{meaning} (err {err})" if err else meaning


def _c_string(value: bytes) -> str:
    return value.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()


class SmppReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt from a ``deliver_sm``: the carrier id, its state, and the text form as received."""

    carrier_id: str
    stat: str
    err: str | None
    text: TextReceipt
    raw: str


def from_deliver_sm(short_message: bytes, tlvs: dict[int, bytes]) -> SmppReceipt | None:
    """The receipt a ``deliver_sm`` carries (TLVs first, the text form filling gaps); None when it
    names no carrier id or no state."""
    raw = short_message.decode("latin-1", errors="replace")
    text = parse_text(raw)
    carrier_id = text.id
    if TLV_RECEIPTED_MESSAGE_ID in tlvs:
        carrier_id = _c_string(tlvs[TLV_RECEIPTED_MESSAGE_ID]) or carrier_id
    stat = text.stat
    state = tlvs.get(TLV_MESSAGE_STATE)
    if state:
        stat = MESSAGE_STATES.get(state[0], stat or "UNKNOWN")
    err = text.err
    network_error = tlvs.get(TLV_NETWORK_ERROR_CODE)
    if not err and network_error and len(network_error) == 3:
        err = f"{int.from_bytes(network_error[1:], 'big'):03d}"
    if not carrier_id or not stat:
        return None
    return SmppReceipt(carrier_id=carrier_id, stat=stat, err=err, text=text, raw=raw)


IdConversion = Literal["same", "hex_to_decimal", "decimal_to_hex"]


def receipt_key(carrier_id: str, conversion: IdConversion = "same") -> str:
    """The key that matches a submitted carrier id with the id its receipt names.

    Leading zeros and case never matter. Some carriers answer ``submit_sm_resp`` with a hex id and
    write the receipt's id in decimal (or the other way round): the route's ``conversion`` says so, and
    the submitted id is converted to the receipt's form before it is stored. Never guessed, as a guess
    would let sequential ids of two messages collide.
    """
    bare = carrier_id.strip().lstrip("0").lower() or "0"
    try:
        if conversion == "hex_to_decimal":
            return str(int(bare, 16))
        if conversion == "decimal_to_hex":
            return format(int(bare), "x")
    except ValueError:
        return bare
    return bare
