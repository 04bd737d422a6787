"""SMS delivery receipts: the carrier's JSON, the SMPP text form, and their normalised StatusEvent.

The text form (SMPP 3.4 appendix B, de facto) is parsed leniently: keys in any case, ``submit date`` /
``done date`` as ``YYMMDDhhmm`` or ``YYMMDDhhmmss``, ``text`` optional and always last, ids hex or
decimal (kept as strings).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from postwire_contracts.messages import StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_sms.receipts import (
    TextReceipt,
    failure_reason,
    outcome_of,
    parse_date,
    parse_text,
)

__all__ = ["DlrBody", "InvalidReceipt", "TextReceipt", "normalise", "parse_date", "parse_text",
           "status_for"]

SOURCE = "carrier-dlr"


class DlrBody(msgspec.Struct, frozen=True, kw_only=True):
    """The receipt JSON a carrier POSTs; every field optional, unknown fields ignored."""

    id: str | int | None = None
    reference: str | None = None
    stat: str | None = None
    err: str | int | None = None
    submit_date: str | None = msgspec.field(default=None, name="submitDate")
    done_date: str | None = msgspec.field(default=None, name="doneDate")
    receipt: str | None = None


class InvalidReceipt(ValueError):
    """The receipt names no carrier id or no state."""


_STATUS: dict[str, Status] = {"delivered": Status.DELIVERED, "failed": Status.FAILED,
                              "pending": Status.SENT}


def status_for(stat: str) -> Status:
    """DELIVRD → DELIVERED; final failures → FAILED; ENROUTE, ACCEPTD and anything else → SENT."""
    return _STATUS[outcome_of(stat)]


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
        error_reason = failure_reason(stat, err)
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
