"""RabbitMQ restarted and MongoDB stopped mid-load.

While the dependency is down the gateway answers 503 ``service_unavailable`` with ``Retry-After`` (never
201 for a message it did not store, never a 500), every service's ``/readyz`` turns false; when it
returns, ``/readyz`` turns true again, no service was restarted, and the load completes: everything
accepted reaches a final status, once, with its webhooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from . import checks
from .fakes import Customer
from .load import Load, Sent, mix, new_tenant
from .outage import Readiness, service_pids, until, watching
from .test_kill9 import wait_accepted
from .world import World

DOWN_SECONDS = 10.0


def assert_refusals_were_clean(sent: Sent) -> None:
    """Every refusal during the outage was the SPEC's 503 with a Retry-After; nothing else went wrong."""
    assert not sent.gave_up, sent.gave_up[:5]
    assert not sent.unexpected(), sent.unexpected()[:5]
    refused = sent.unavailable()
    assert refused, "the gateway never answered 503 while its dependency was down"
    for answer in refused:
        assert answer.error == "service_unavailable", answer
        assert answer.body["success"] is False and answer.body["code"] == 503, answer
        assert answer.retry_after is not None and int(answer.retry_after) > 0, answer


async def outage_under_load(world: World, *, name: str, dependency: str,
                            go_down: Callable[[], None], come_back: Callable[[], None]) -> Readiness:
    system = world.system
    counts = mix()
    count = sum(counts.values())
    with Customer() as customer:
        tenant = await new_tenant(world, customer, name)
        pids = await asyncio.to_thread(service_pids, system)
        load = Load(system, tenant)
        async with watching(system) as readiness:
            # paced so that sends keep arriving before, during and after the outage
            sending = load.start(counts, name[:2], pace=max(10.0, count / 20))
            await wait_accepted(load, count // 4)
            await asyncio.to_thread(go_down)
            try:
                await until(lambda: readiness.all_report(dependency, False), 60,
                            f"every /readyz reports {dependency} false")
                refused_before = len(load.sent.unavailable())
                await until(lambda: len(load.sent.unavailable()) > refused_before, 60,
                            "a send refused with 503 during the outage")
                await asyncio.sleep(DOWN_SECONDS)
            finally:
                await asyncio.to_thread(come_back)
            await until(readiness.all_ready, 120, "every /readyz ready again")
            sent = await sending
        assert_refusals_were_clean(sent)
        assert await asyncio.to_thread(service_pids, system) == pids, "a service was restarted"
        await checks.everything(world, tenant, sent)
        return readiness


async def test_rabbitmq_restart_mid_load(world: World) -> None:
    broker = world.broker
    print(f"\nRabbitMQ outage: {broker.kind}")
    await outage_under_load(world, name="rabbitmq restart", dependency="broker",
                            go_down=broker.go_down, come_back=broker.come_back)


async def test_mongodb_stopped_for_ten_seconds_mid_load(world: World) -> None:
    system = world.system

    def stop() -> None:
        assert "stopped" in system.supervisorctl("stop", "mongodb")

    def start() -> None:
        assert "started" in system.supervisorctl("start", "mongodb")

    await outage_under_load(world, name="mongodb stop", dependency="mongodb",
                            go_down=stop, come_back=start)
