"""MTA feedback for email: RFC 3464 delivery status notifications, RFC 5965 (ARF) complaints, and a JSON
form; each becomes normalised ``Feedback`` items (one per recipient) that map onto status events.

JSON: ``{"type": "delivery"|"bounce"|"complaint", "messageId"?, "providerMessageId"?, "recipient"?,
"bounceType": "hard"|"soft", "status": "5.1.1", "diagnostic": "...", "occurredAt": ISO 8601,
"feedbackId": "..."}``. A DSN names our message by the returned headers' ``X-Postwire-Message-ID``
(or ``Message-ID``, our provider id), or by ``?mid=`` on the URL.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from typing import Any

import msgspec

from postwire_contracts.email_events import EMAIL_HARD_BOUNCE, EMAIL_SOFT_BOUNCE, EMAIL_SPAM_COMPLAINT
from postwire_contracts.messages import StatusEvent
from postwire_contracts.status import Channel, Status

SOURCE = "mta-feedback"
SUPPRESSING = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10"})


class InvalidFeedback(ValueError):
    """The body is not feedback we understand (or names no message)."""


class FeedbackJson(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    type: str
    message_id: str | None = None
    provider_message_id: str | None = None
    recipient: str | None = None
    bounce_type: str | None = None
    status: str | None = None
    diagnostic: str | None = None
    occurred_at: datetime | None = None
    feedback_id: str | None = None


_json = msgspec.json.Decoder(FeedbackJson)


@dataclass(frozen=True)
class Feedback:
    """One recipient's outcome as an MTA reported it."""

    kind: str
    """delivered, hard_bounce, soft_bounce, delayed, complaint"""
    message_id: str | None
    provider_message_id: str | None
    recipient: str | None
    status: str | None
    diagnostic: str | None
    occurred_at: datetime
    feedback_id: str
    raw: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def suppresses(self) -> str | None:
        """The suppression reason this feedback calls for, if any."""
        if self.kind == "complaint":
            return "spam_complaint"
        if self.kind == "hard_bounce" and (self.status is None or self.status in SUPPRESSING):
            return "hard_bounce"
        return None

    def event(self) -> StatusEvent:
        status, event_type, code = {
            "delivered": (Status.DELIVERED, None, None),
            "hard_bounce": (Status.FAILED, EMAIL_HARD_BOUNCE, "hard_bounce"),
            "soft_bounce": (Status.FAILED, EMAIL_SOFT_BOUNCE, "soft_bounce"),
            "delayed": (Status.SENT, None, None),
            "complaint": (Status.DELIVERED, EMAIL_SPAM_COMPLAINT, None),
        }[self.kind]
        detail: dict[str, Any] = {k: v for k, v in (
            ("recipient", self.recipient), ("status", self.status), ("diagnostic", self.diagnostic),
            ("feedback_id", self.feedback_id)) if v}
        detail.update(self.extra)
        if self.suppresses:
            detail["suppressed"] = True
        return StatusEvent(
            event_id=f"email-fb:{self.feedback_id}:{self.kind}", channel=Channel.EMAIL, status=status,
            occurred_at=self.occurred_at, source=SOURCE, message_id=self.message_id,
            provider_message_id=self.provider_message_id, provider_status=self.status or self.kind,
            error_code=code, error_reason=(self.diagnostic or self.status) if code else None,
            detail=detail, raw=self.raw[:10_000], event_type=event_type)


def _feedback_id(*parts: str | None) -> str:
    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:24]


def from_json(raw: bytes, *, mid: str | None, now: datetime) -> list[Feedback]:
    """The JSON form."""
    try:
        body = _json.decode(raw)
    except msgspec.MsgspecError as exc:
        raise InvalidFeedback(f"the feedback JSON is malformed: {exc}") from None
    kind = body.type.lower()
    if kind == "bounce":
        bounce = (body.bounce_type or "").lower()
        if bounce not in ("hard", "soft"):
            raise InvalidFeedback("a bounce needs bounceType hard or soft")
        kind = f"{bounce}_bounce"
    elif kind == "delivery":
        kind = "delivered"
    elif kind != "complaint":
        raise InvalidFeedback(f"unknown feedback type {body.type!r}")
    message_id = body.message_id or mid
    if not message_id and not body.provider_message_id:
        raise InvalidFeedback("the feedback names no message (messageId or providerMessageId)")
    occurred = body.occurred_at or now
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    feedback_id = body.feedback_id or _feedback_id(message_id, body.provider_message_id, kind,
                                                   body.recipient, body.status)
    return [Feedback(kind=kind, message_id=message_id, provider_message_id=body.provider_message_id,
                     recipient=(body.recipient or "").lower() or None, status=body.status,
                     diagnostic=body.diagnostic, occurred_at=occurred,
                     feedback_id=_feedback_id(feedback_id, message_id, kind),
                     raw=raw.decode("utf-8", "replace"))]


def _returned_ids(report: Message) -> tuple[str | None, str | None]:
    """(our message id, the Message-ID) from the returned message or headers part."""
    for part in report.walk():
        ctype = part.get_content_type()
        headers: Message | None = None
        if ctype == "message/rfc822":
            payload = part.get_payload()
            first = payload[0] if isinstance(payload, list) and payload else None
            headers = first if isinstance(first, Message) else None
        elif ctype == "text/rfc822-headers":
            text = part.get_payload(decode=True) or b""
            headers = email.message_from_bytes(text if isinstance(text, bytes) else b"",
                                               policy=email.policy.default)
        if headers is not None:
            ours = headers.get("X-Postwire-Message-ID")
            message_id = headers.get("Message-ID")
            return (str(ours).strip() if ours else None,
                    str(message_id).strip().strip("<>") if message_id else None)
    return None, None


def _status_groups(part: Message) -> list[Message]:
    """The per-message and per-recipient field groups of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = part.get_payload(decode=True) or b""
    blocks = (text if isinstance(text, bytes) else b"").replace(b"\r\n", b"\n").split(b"\n\n")
    return [email.message_from_bytes(b, policy=email.policy.default) for b in blocks if b.strip()]


def _address(value: str | None) -> str | None:
    if not value:
        return None
    text = str(value).split(";", 1)[-1].strip()
    return email.utils.parseaddr(text)[1].lower() or None


def from_report(raw: bytes, *, mid: str | None, now: datetime) -> list[Feedback]:
    """An RFC 3464 DSN (one item per recipient) or an RFC 5965 complaint report."""
    report = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(report, EmailMessage)
    ours, provider_id = _returned_ids(report)
    message_id = ours or mid
    if not message_id and not provider_id:
        raise InvalidFeedback("the report names no message (no returned headers, no ?mid=)")
    text = raw.decode("utf-8", "replace")
    param = report.get_param("report-type") if report.get_content_type() == "multipart/report" else None
    report_type = param.lower() if isinstance(param, str) else ""
    if report_type == "feedback-report" or any(
            p.get_content_type() == "message/feedback-report" for p in report.walk()):
        recipient = None
        for part in report.walk():
            if part.get_content_type() == "message/feedback-report":
                fields = _status_groups(part)
                recipient = _address(fields[0].get("Original-Rcpt-To")) if fields else None
        return [Feedback(kind="complaint", message_id=message_id, provider_message_id=provider_id,
                         recipient=recipient, status=None, diagnostic="abuse report",
                         occurred_at=now, feedback_id=_feedback_id(message_id, provider_id,
                                                                   "complaint"), raw=text)]
    status_part = next((p for p in report.walk()
                        if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        raise InvalidFeedback("not a delivery status notification (no message/delivery-status part)")
    groups = _status_groups(status_part)
    items: list[Feedback] = []
    arrival = next((g.get("Arrival-Date") for g in groups if g.get("Arrival-Date")), None)
    for group in groups:
        action = str(group.get("Action") or "").strip().lower()
        if not action:
            continue
        status = str(group.get("Status") or "").strip().split(" ")[0] or None
        if action == "failed":
            kind = "hard_bounce" if (status or "5").startswith("5") else "soft_bounce"
            if status and status.split(".")[1:] == ["2", "2"]:
                kind = "soft_bounce"  # mailbox full
        elif action == "delayed":
            kind = "delayed"
        elif action in ("delivered", "relayed", "expanded"):
            kind = "delivered"
        else:
            continue
        recipient = _address(group.get("Final-Recipient") or group.get("Original-Recipient"))
        diagnostic = group.get("Diagnostic-Code")
        when = group.get("Last-Attempt-Date") or arrival
        occurred = email.utils.parsedate_to_datetime(str(when)) if when else now
        items.append(Feedback(
            kind=kind, message_id=message_id, provider_message_id=provider_id, recipient=recipient,
            status=status, diagnostic=str(diagnostic) if diagnostic else None,
            occurred_at=occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC),
            feedback_id=_feedback_id(message_id, provider_id, kind, recipient, status), raw=text,
            extra={"action": action}))
    if not items:
        raise InvalidFeedback("the DSN holds no recipient with an Action")
    return items
