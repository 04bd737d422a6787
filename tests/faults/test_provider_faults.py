"""The outside world misbehaves mid-load: the carrier answers 5xx, then hangs past the dispatcher's
timeout; the recipient's MX answers 4xx; the Graph API answers 5xx; a customer's endpoint answers 503,
then is down altogether. Retries cover it: everything is delivered, reaches its provider at most once,
and every webhook arrives.
"""

from __future__ import annotations

import asyncio

from . import checks
from .fakes import Customer
from .load import Load, mix, new_tenant
from .test_kill9 import wait_accepted
from .world import World

TROUBLE_SECONDS = 8.0


async def test_providers_fail_then_hang_mid_load(world: World) -> None:
    carrier, sink, graph = world.carrier, world.sink, world.graph
    counts = mix()
    total = sum(counts.values())
    failed_before, hung_before = carrier.failed_answers, carrier.hung_answers
    graph_before = len(graph.requests)
    with Customer() as customer:
        tenant = await new_tenant(world, customer, "provider trouble")
        load = Load(world.system, tenant)
        sending = load.start(counts, "pt", pace=max(10.0, total / 20))
        try:
            await wait_accepted(load, total // 5)
            carrier.fail_for(TROUBLE_SECONDS, 503)
            sink.fail_next(max(5, counts["email"] // 5), "451 4.3.0 try again later", stage="mail")
            graph.fail_next(max(5, counts["whatsapp"] // 5), status=503)
            await asyncio.sleep(TROUBLE_SECONDS)
            # each submission held 3 s: longer than SMS_CARRIER_TIMEOUT (2 s), accepted afterwards
            carrier.hang_for(TROUBLE_SECONDS, each=3.0)
            await asyncio.sleep(TROUBLE_SECONDS)
        finally:
            carrier.healthy()
        sent = await sending
        assert carrier.failed_answers > failed_before, "the carrier's 5xx window hit nothing"
        assert carrier.hung_answers > hung_before, "the carrier's hang window hit nothing"
        await checks.everything(world, tenant, sent)
    graph_calls = len(graph.requests) - graph_before
    assert graph_calls > counts["whatsapp"], "no WhatsApp send was retried after the Graph API's 5xx"


async def test_customer_endpoint_503_then_down_mid_load(world: World) -> None:
    counts = mix()
    total = sum(counts.values())
    with Customer() as customer:
        tenant = await new_tenant(world, customer, "endpoint down")
        load = Load(world.system, tenant)
        sending = load.start(counts, "ed", pace=max(10.0, total / 20))
        await wait_accepted(load, total // 5)
        customer.respond(503, times=max(20, total // 10))
        await asyncio.sleep(3)
        customer.down()
        try:
            await asyncio.sleep(TROUBLE_SECONDS)
        finally:
            customer.up()
        sent = await sending
        await checks.everything(world, tenant, sent)
        ids = [q.headers["webhook-id"] for q in customer.requests]
        assert len(ids) > len(set(ids)), "no webhook was retried: the endpoint's outage hit nothing"
