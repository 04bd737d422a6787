"""Marks written before a call to a provider whose write failed, so the call was never made.

A dispatcher records on its claim that it is about to hand a message over (email's ``data_at``);
a claim taken over with that mark set ends ``outcome_unknown`` rather
than risk a second delivery. When the mark's write raises, the call is abandoned; but the write may have
been applied with its answer lost (MongoDB stopping between the two). ``UnansweredMarks`` remembers such
marks for the process's life, so its own take-over of the claim can tell that mark from one whose call
may have happened: only a stored mark equal to the one remembered is known to be empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

_BSON_PRECISION = timedelta(milliseconds=1)


class UnansweredMarks:
    """Message id → the mark this process tried to write and then made no call for."""

    def __init__(self) -> None:
        self._marks: dict[str, datetime] = {}

    async def write(self, message_id: str, at: datetime,
                    mark: Callable[[str, datetime], Awaitable[None]]) -> None:
        """``await mark(message_id, at)``; when it raises, remember ``at`` (the caller makes no call)."""
        try:
            await mark(message_id, at)
        except BaseException:
            self._marks[message_id] = at
            raise
        self._marks.pop(message_id, None)

    def known_empty(self, message_id: str, stored: datetime) -> bool:
        """Whether the claim's stored mark is one this process wrote without making its call."""
        at = self._marks.get(message_id)
        if at is None:
            return False
        if stored.tzinfo is None:
            stored = stored.replace(tzinfo=UTC)
        return abs(stored - at) < _BSON_PRECISION

    def forget(self, message_id: str) -> None:
        """The message's outcome is recorded."""
        self._marks.pop(message_id, None)

    def __len__(self) -> int:
        return len(self._marks)
