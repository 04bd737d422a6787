"""Watching the system through a dependency outage: every service's ``/readyz``, and its processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from postwire_cli.supervisor_conf import SERVICES
from postwire_testing.system import DevSystem


@dataclass
class Readiness:
    """What each service's ``/readyz`` said, in order: the JSON body, or None when unreachable."""

    seen: dict[str, list[dict[str, Any] | None]] = field(
        default_factory=lambda: {s: [] for s in SERVICES})

    def latest(self, service: str) -> dict[str, Any] | None:
        answers = self.seen[service]
        return answers[-1] if answers else None

    def all_ready(self) -> bool:
        """True when every service's latest answer was 200 ``ready``."""
        return all((a := self.latest(s)) is not None and a.get("code") == 200 for s in SERVICES)

    def all_report(self, dependency: str, value: bool) -> bool:
        """True when every service's latest answer says ``dependency`` is ``value``."""
        return all((a := self.latest(s)) is not None and a.get(dependency) is value
                   for s in SERVICES)


@contextlib.asynccontextmanager
async def watching(system: DevSystem, every: float = 0.5) -> AsyncIterator[Readiness]:
    """Poll every service's ``/readyz`` in the background while the block runs."""
    readiness = Readiness()
    ports = {name: system.base_port + i for i, name in enumerate(SERVICES)}

    async def poll(client: httpx.AsyncClient, name: str) -> None:
        try:
            r = await client.get(f"http://127.0.0.1:{ports[name]}/readyz")
            readiness.seen[name].append({**r.json(), "code": r.status_code})
        except (httpx.HTTPError, ValueError):
            readiness.seen[name].append(None)

    async def loop() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                await asyncio.gather(*(poll(client, s) for s in SERVICES))
                await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield readiness
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Any, timeout: float, what: str) -> None:
    """Bounded wait for ``predicate()``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(0.2)


def service_pids(system: DevSystem) -> dict[str, int]:
    """The pid of every service (supervisord's view)."""
    return {name: system.pid(name) for name in SERVICES}
