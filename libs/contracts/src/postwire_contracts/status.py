"""The message status machine.

``QUEUED → PROCESSING → SENT → DELIVERED (→ READ)``, or ``FAILED`` from any state before delivery.
A status never moves backwards; events that would move it backwards still land in the timeline.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    FAILED = "FAILED"


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"


_FORWARD: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset(),
    Status.PROCESSING: frozenset({Status.QUEUED}),
    Status.SENT: frozenset({Status.QUEUED, Status.PROCESSING}),
    Status.DELIVERED: frozenset({Status.QUEUED, Status.PROCESSING, Status.SENT}),
    Status.READ: frozenset({Status.QUEUED, Status.PROCESSING, Status.SENT, Status.DELIVERED}),
    Status.FAILED: frozenset({Status.QUEUED, Status.PROCESSING, Status.SENT}),
}

TERMINAL: frozenset[Status] = frozenset({Status.READ, Status.FAILED})


def allowed_from(new: Status) -> frozenset[Status]:
    """The statuses a message may be in for ``new`` to replace it."""
    return _FORWARD[new]


def can_transition(current: Status, new: Status) -> bool:
    """True when moving from ``current`` to ``new`` goes forwards."""
    return current in _FORWARD[new]


def resolve(current: Status, new: Status) -> Status:
    """The status after an event carrying ``new`` arrives for a message in ``current``."""
    return new if can_transition(current, new) else current


def webhook_event_type(channel: Channel, status: Status) -> str | None:
    """The customer webhook type for a status, e.g. ``sms_delivered``; None for internal ones."""
    if status in (Status.QUEUED, Status.PROCESSING):
        return None
    if status is Status.READ and channel is not Channel.WHATSAPP:
        return None
    return f"{channel.value}_{status.value.lower()}"
