"""UnansweredMarks: which stored marks are known to have had no call after them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postwire_platform.marks import UnansweredMarks

AT = datetime(2026, 11, 22, 6, 46, 49, 565_432, tzinfo=UTC)


async def test_a_mark_whose_write_raised_is_known_empty_as_bson_stores_it() -> None:
    marks = UnansweredMarks()

    async def lost(message_id: str, at: datetime) -> None:
        raise ConnectionError("answer lost")

    with pytest.raises(ConnectionError):
        await marks.write("m1", AT, lost)
    stored = AT.replace(microsecond=565_000, tzinfo=None)  # milliseconds, read without tz_aware
    assert not marks.known_empty("m1", AT + timedelta(milliseconds=2))  # someone else's later mark
    assert not marks.known_empty("m2", AT)
    assert marks.known_empty("m1", stored)
    marks.forget("m1")
    assert not marks.known_empty("m1", stored) and len(marks) == 0


async def test_a_mark_is_known_empty_to_one_taker_only() -> None:
    """Two deliveries that take the claim over before either writes a new mark read the same stored
    mark: only the first may go on to make the call."""
    marks = UnansweredMarks()

    async def lost(message_id: str, at: datetime) -> None:
        raise ConnectionError("answer lost")

    with pytest.raises(ConnectionError):
        await marks.write("m1", AT, lost)
    assert marks.known_empty("m1", AT)
    assert not marks.known_empty("m1", AT) and len(marks) == 0


async def test_a_refused_mark_is_not_remembered() -> None:
    """A write answered "not yours" was not applied: the stored mark, if any, is another's."""

    class Refused(Exception):
        pass

    marks = UnansweredMarks(refused=(Refused,))

    async def refused(message_id: str, at: datetime) -> None:
        raise Refused("the claim is another's")

    with pytest.raises(Refused):
        await marks.write("m1", AT, refused)
    assert not marks.known_empty("m1", AT) and len(marks) == 0


async def test_a_mark_written_after_a_lost_one_clears_it() -> None:
    marks = UnansweredMarks()
    written: list[datetime] = []

    async def fails_once(message_id: str, at: datetime) -> None:
        if not written:
            written.append(at)
            raise ConnectionError("answer lost")
        written.append(at)

    with pytest.raises(ConnectionError):
        await marks.write("m1", AT, fails_once)
    await marks.write("m1", AT + timedelta(seconds=3), fails_once)  # the call goes ahead after this
    assert not marks.known_empty("m1", AT) and len(marks) == 0
