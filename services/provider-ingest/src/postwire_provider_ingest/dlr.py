"""SMS delivery receipts: the carrier's JSON, the SMPP text form, and their normalised StatusEvent.

The text form (SMPP 3.4 appendix B, de facto) is parsed leniently: keys in any case, ``submit date`` /
``done date`` as ``YYMMDDhhmm`` or ``YYMMDDhhmmss``, ``text`` optional and always last, ids hex or
decimal (kept as strings).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec

from postwire_contracts.messages import StatusEvent
from postwire_contracts.status import Channel, Status

SOURCE = "carrier-dlr"

_FAILED_STATS: dict[str, str] = {
    "UNDELIV": "undeliverable",
    "EXPIRED": "validity period expired",
    "DELETED": "deleted by the carrier",
    "REJECTD": "rejected by the carrier",
    "UNKNOWN": "unknown final state",
}


class DlrBody(msgspec.Struct, frozen=True, kw_only=True):
    """The receipt JSON a carrier POSTs; every field optional, unknown fields ignored."""

    id: str | int | None = None
    reference: str | None = None
    stat: str | None = None
    err: str | int | None = None
    submit_date: str | None = msgspec.field(default=None, name="submitDate")
    done_date: str | None = msgspec.field(default=None, name="doneDate")
    receipt: str | None = None


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


class InvalidReceipt(ValueError):
    """The receipt names no carrier id or no state."""


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


def status_for(stat: str) -> Status:
    """DELIVRD → DELIVERED; final failures → FAILED; ENROUTE, ACCEPTD and anything else → SENT."""
    if stat == "DELIVRD":
        return Status.DELIVERED
    if stat in _FAILED_STATS:
        return Status.FAILED
    return Status.SENT


def normalise(body: DlrBody, raw: str, *, mid: str | None, now: datetime) -> StatusEvent:
    """The StatusEvent for a receipt: JSON fields first, the text form filling the gaps."""
    text = parse_text(body.receipt) if body.receipt else TextReceipt()
    carrier_id = _str(body.id) or text.id
    stat = (body.stat or text.stat or "").strip().upper()
    if not carrier_id:
        raise InvalidReceipt("the receipt has no carrier message id")
    if not stat:
        raise InvalidReceipt("the receipt has no stat")
    err = _str(body.err) or text.err
    done = body.done_date or text.done_date
    status = status_for(stat)
    detail: dict[str, str] = {
        k: v for k, v in (("err", err), ("submit_date", body.submit_date or text.submit_date),
                          ("done_date", done)) if v
    }
    error_code = error_reason = None
    if status is Status.FAILED:
        error_code = stat
        meaning = _FAILED_STATS[stat]
        error_reason = f"{meaning} (err {err})" if err else meaning
    return StatusEvent(
        event_id=f"dlr:{carrier_id}:{stat}",
        channel=Channel.SMS,
        status=status,
        occurred_at=parse_date(done) or now,
        source=SOURCE,
        message_id=mid or body.reference or None,
        provider_message_id=carrier_id,
        provider_status=stat,
        error_code=error_code,
        error_reason=error_reason,
        detail=detail,
        raw=body.receipt or raw,
    )


def _str(value: str | int | None) -> str | None:
    return None if value is None or value == "" else str(value)
