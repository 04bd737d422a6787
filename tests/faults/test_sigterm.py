"""SIGTERM during load: a service, or the whole system, shuts down gracefully and starts again; the
load (retried by the client with the same idempotency keys) completes with nothing lost or doubled.
"""

from __future__ import annotations

import asyncio

from . import checks
from .fakes import Customer
from .load import Load, mix, new_tenant
from .test_kill9 import wait_accepted
from .world import World


async def test_sigterm_to_the_gateway_mid_load(world: World) -> None:
    system = world.system
    counts = mix()
    with Customer() as customer:
        tenant = await new_tenant(world, customer, "sigterm gateway")
        load = Load(system, tenant)
        sending = load.start(counts, "sg")
        await wait_accepted(load, sum(counts.values()) // 4)
        # supervisorctl restart: SIGTERM, wait for the graceful exit, start again
        assert "started" in await asyncio.to_thread(system.supervisorctl, "restart", "gateway")
        sent = await sending
        await checks.everything(world, tenant, sent)


async def test_sigterm_to_the_whole_system_mid_load(world: World) -> None:
    system = world.system
    counts = mix()
    with Customer() as customer:
        tenant = await new_tenant(world, customer, "sigterm all")
        load = Load(system, tenant)
        sending = load.start(counts, "sa")
        await wait_accepted(load, sum(counts.values()) // 4)
        code = await asyncio.to_thread(system.stop)
        assert code == 0, f"postwire dev exited {code} on SIGTERM:\n{system.read_output()[-3000:]}"
        await asyncio.to_thread(system.start)  # same state directory, ports and data
        sent = await sending
        await checks.everything(world, tenant, sent)
