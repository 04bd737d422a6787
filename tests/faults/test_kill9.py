"""kill -9 each service in turn mid-load; supervisord restarts it; nothing is lost or sent twice."""

from __future__ import annotations

import asyncio

import pytest

from postwire_cli.supervisor_conf import SERVICES

from . import checks
from .fakes import Customer
from .load import Load, mix, new_tenant
from .world import World

UNKNOWN_OUTCOME = {
    "whatsapp-dispatcher": {"whatsapp": {("FAILED", "outcome_unknown")}},
    "email-dispatcher": {"email": {("FAILED", "outcome_unknown")}},
}
"""Neither the Graph API nor SMTP has an idempotency key: a WhatsApp message whose dispatcher died
during the call, or an email whose dispatcher died after DATA began and before the answer was recorded,
is never sent again (at most once); it ends FAILED ``outcome_unknown`` (docs/architecture.md)."""


async def wait_accepted(load: Load, at_least: int, timeout: float = 120.0) -> None:
    async def enough() -> str | None:
        n = load.accepted
        return None if n >= at_least else f"only {n} of {at_least} accepted"
    await checks.eventually(enough, timeout, pause=0.05)


@pytest.mark.parametrize("service", SERVICES)
async def test_kill9_mid_load_loses_nothing_and_sends_nothing_twice(
        service: str, world: World) -> None:
    system = world.system
    counts = mix()
    with Customer() as customer:
        tenant = await new_tenant(world, customer, f"kill9 {service}")
        load = Load(system, tenant)
        sending = load.start(counts, "k9")
        await wait_accepted(load, sum(counts.values()) // 4)
        old = await asyncio.to_thread(system.kill9, service)
        await asyncio.to_thread(system.wait_restarted, service, old, 120.0)
        sent = await sending
        await checks.everything(world, tenant, sent,
                                allowed=UNKNOWN_OUTCOME.get(service))
