"""``TtlCache``: expiry and eviction, and ``get_or_load``'s shared lookups, renewal ahead of expiry,
refusals, revocations and errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from postwire_platform.cache import TtlCache


def test_cache_expires_and_evicts_the_least_recently_used() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(5, max_entries=2, now=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    now[0] = 5.0
    assert cache.get("a") is None and len(cache) == 1


async def test_cache_loads_shared_by_concurrent_misses_and_renewed_before_expiry() -> None:
    now = [0.0]
    cache: TtlCache[str, str] = TtlCache(4, now=lambda: now[0])  # renewed in the last 2 s
    loads: list[str] = []
    release = asyncio.Event()

    async def load() -> str:
        loads.append("x")
        await release.wait()
        return f"v{len(loads)}"

    # ten requests missing the same key at once: one lookup, one answer for all
    waiting = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["v1"] * 10 and len(loads) == 1

    # in its last two seconds the value is still served at once, and one renewal starts
    release.clear()
    now[0] = 2.5
    assert [await cache.get_or_load("k", load) for _ in range(5)] == ["v1"] * 5
    await asyncio.sleep(0)
    assert len(loads) == 2
    release.set()
    await asyncio.sleep(0.01)
    assert await cache.get_or_load("k", load) == "v2" and len(loads) == 2

    # never served past its TTL: an expired value waits for a fresh lookup
    release.clear()
    now[0] = 2.5 + 4.0
    late = asyncio.create_task(cache.get_or_load("k", load))
    await asyncio.sleep(0.01)
    assert not late.done()
    release.set()
    assert await late == "v3"


async def test_cache_keeps_no_refusal_and_no_answer_of_a_discarded_key() -> None:
    cache: TtlCache[str, bool] = TtlCache(5)
    answers = iter([False, True])
    assert await cache.get_or_load("k", lambda: _value(next(answers))) is False
    assert await cache.get_or_load("k", lambda: _value(next(answers))) is True  # asked again

    # a key discarded (a revocation) while its lookup is under way is not put back
    release = asyncio.Event()

    async def slow() -> bool:
        await release.wait()
        return True

    cache.discard("k")
    pending = asyncio.create_task(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    cache.discard("k")
    release.set()
    assert await pending is True
    assert cache.get("k") is None


async def test_cache_load_errors_reach_the_callers_and_a_failed_renewal_keeps_the_value() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(4, now=lambda: now[0])

    async def broken() -> int:
        raise ConnectionError("database down")

    with pytest.raises(ConnectionError):
        await cache.get_or_load("k", broken)
    assert await cache.get_or_load("k", lambda: _value(1)) == 1
    now[0] = 3.0
    assert await cache.get_or_load("k", broken) == 1  # the renewal fails in the background
    await asyncio.sleep(0.01)
    assert cache.get("k") == 1
    now[0] = 4.0
    with pytest.raises(ConnectionError):
        await cache.get_or_load("k", broken)


async def _value(value: Any) -> Any:
    return value
