"""Small test doubles for driving a dispatcher directly: a clock moved by hand, an event sink that
keeps what it is given, and one whose first publish waits (a delivery stalled right after its claim)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from postwire_contracts.messages import StatusEvent, StatusEvents
from postwire_platform.clock import utcnow


class HandClock:
    """A clock the test moves forward by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class KeptEvents:
    """An event sink (``publish``/``delay``) that keeps the status events (those of a
    ``StatusEvents`` one by one) and delayed commands."""

    def __init__(self) -> None:
        self.events: list[StatusEvent] = []
        self.messages: list[StatusEvent | StatusEvents] = []
        """As published: single events and events published together (``events`` has them all)."""
        self.delayed: list[msgspec.Struct] = []

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        assert isinstance(message, StatusEvent | StatusEvents)
        self.messages.append(message)
        self.events.extend(message.events if isinstance(message, StatusEvents) else [message])

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        self.delayed.append(message)
