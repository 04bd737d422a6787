"""Marks written before a call to a provider whose write failed, so the call was never made.

A dispatcher records on its claim that it is about to hand a message over (email's ``data_at``);
a claim taken over with that mark set ends ``outcome_unknown`` rather
than risk a second delivery. When the mark's write raises, the call is abandoned; but the write may have
been applied with its answer lost (MongoDB stopping between the two). ``UnansweredMarks`` remembers such
marks for the process's life, so its own take-over of the claim can tell that mark from one whose call
may have happened: only a stored mark equal to the one remembered is known to be empty.

That answer is given once: several deliveries of one message in the process may take its claim over
in turn before any of them writes a new mark, and each would read the same old mark. The first one
is told it is empty; the others see a mark that may stand for a call (the first taker's) and do not
send. A write refused outright (the claim is no longer the writer's: ``refused``) left nothing in
the claim, so there is nothing to remember.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

_BSON_PRECISION = timedelta(milliseconds=1)


class UnansweredMarks:
    """Message id → the mark this process tried to write and then made no call for."""

    def __init__(self, refused: tuple[type[BaseException], ...] = ()) -> None:
        self._marks: dict[str, datetime] = {}
        self._refused = refused
        """Errors that say the write was answered and not applied."""

    async def write(self, message_id: str, at: datetime,
                    mark: Callable[[str, datetime], Awaitable[None]]) -> None:
        """``await mark(message_id, at)``; when it raises, remember ``at`` (the caller makes no call),
        unless the error is one of ``refused``."""
        try:
            await mark(message_id, at)
        except self._refused:
            raise
        except BaseException:
            self._marks[message_id] = at
            raise
        self._marks.pop(message_id, None)

    def known_empty(self, message_id: str, stored: datetime) -> bool:
        """Whether the claim's stored mark is one this process wrote without making its call; True
        once only (the caller goes on to make the call)."""
        at = self._marks.get(message_id)
        if at is None:
            return False
        if stored.tzinfo is None:
            stored = stored.replace(tzinfo=UTC)
        if abs(stored - at) >= _BSON_PRECISION:
            return False
        del self._marks[message_id]
        return True

    def forget(self, message_id: str) -> None:
        """The message's outcome is recorded."""
        self._marks.pop(message_id, None)

    def __len__(self) -> int:
        return len(self._marks)
