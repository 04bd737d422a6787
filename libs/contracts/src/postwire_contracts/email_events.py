"""Email's customer event types that a status alone does not name, carried in ``StatusEvent.event_type``.

How each maps onto the status machine (docs/architecture.md, "Email"):

| event type | event status | notes |
|---|---|---|
| email_soft_bounce | FAILED | retries exhausted on 4xx answers, or a DSN with a 4.x.x failure |
| email_hard_bounce | FAILED | a 5xx answer or a DSN with a 5.x.x failure |
| email_spam_complaint | DELIVERED | a complaint proves delivery; the address is suppressed |
| email_opened | READ | the first fetch of the open pixel |
| email_clicked | READ | the first click on each tracked link (``detail.url``) |
"""

from __future__ import annotations

EMAIL_SOFT_BOUNCE = "email_soft_bounce"
EMAIL_HARD_BOUNCE = "email_hard_bounce"
EMAIL_SPAM_COMPLAINT = "email_spam_complaint"
EMAIL_OPENED = "email_opened"
EMAIL_CLICKED = "email_clicked"

EMAIL_EVENT_TYPES: tuple[str, ...] = (
    EMAIL_SOFT_BOUNCE, EMAIL_HARD_BOUNCE, EMAIL_SPAM_COMPLAINT, EMAIL_OPENED, EMAIL_CLICKED,
)
