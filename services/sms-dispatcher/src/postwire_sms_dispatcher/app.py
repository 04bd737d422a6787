"""The sms-dispatcher app: the standard and OTP lane consumers, carrier routes, health routes.

Two queues: ``sms-dispatcher.send`` (STANDARD) and ``sms-dispatcher.send.otp`` (the OTP lane, its own
channel and prefetch), so a backlog of bulk messages never sits in front of an OTP; inside a carrier the
OTP also goes first (``gate.PriorityGate``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import smpp34
from faststream.exceptions import NackMessage
from faststream.rabbit.schemas import Channel as RabbitChannel
from litestar import Litestar
from pymongo.errors import ConnectionFailure

from postwire_contracts import topology
from postwire_contracts.messages import SendSms
from postwire_contracts.status import Channel
from postwire_platform.announcing import StatusGroups
from postwire_platform.broker import BrokerUnavailable, contract_body, work_queue
from postwire_platform.clock import Clock, utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import DISPATCHES, OPT_OUTS
from postwire_platform.opt_outs import OptOutLookups
from postwire_platform.service import Runtime, build_app, new_broker

from .carrier import HttpCarrier, SmsCarrier
from .claims import Claims
from .deliveries import Deliveries, RecentSubmits
from .dispatch import Carriers, DispatchConfig, Dispatcher
from .routes import HttpRoute, SandboxRoute, SmppRoute
from .sandbox import SandboxCarrier
from .settings import SmsDispatcherSettings
from .smpp import SmppCarrier

log = logging.getLogger(__name__)

NACK_PAUSE = 1.0
"""Seconds to wait before handing a message back after a Mongo or broker outage (no hot loop)."""


def instance_id() -> str:
    """This process's lease owner name: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


def create_app(settings: SmsDispatcherSettings, *, carrier: SmsCarrier | None = None,
               sandbox: SmsCarrier | None = None, clock: Clock | None = None) -> Litestar:
    """Build the app; ``carrier`` replaces every live route and ``sandbox`` the sandbox (tests)."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    now = clock or utcnow
    table = settings.routing()
    closers: list[HttpCarrier | SandboxCarrier | SmppCarrier] = []
    smpp: list[SmppCarrier] = []
    routes: dict[str, SmsCarrier] = {}
    deliveries: list[Deliveries] = []

    async def on_deliver(route: str, event: smpp34.DeliverSmEvent) -> None:
        await deliveries[0](route, event)  # built in start(), before any bind is started

    for name, route in table.routes.items():
        if carrier is not None:
            routes[name] = carrier
        elif isinstance(route, HttpRoute):
            routes[name] = http = HttpCarrier(route.url, route.token, timeout=route.timeout)
            closers.append(http)
        elif isinstance(route, SmppRoute):
            routes[name] = bound = SmppCarrier(name, route, on_deliver, clock=now)
            smpp.append(bound)
            closers.append(bound)
        elif isinstance(route, SandboxRoute):
            routes[name] = box = SandboxCarrier(dlr_delay=settings.sandbox_dlr_delay)
            closers.append(box)
    if sandbox is None:
        sandbox = SandboxCarrier(dlr_delay=settings.sandbox_dlr_delay)
        closers.append(sandbox)
    carriers = Carriers(sandbox=sandbox, routes=routes, table=table)
    config = DispatchConfig(
        dlr_callback_url=settings.sms_dlr_callback_url, dlr_token=settings.sms_dlr_token,
        retry_delays=list(settings.sms_retry_delays),
        recheck_seconds=settings.lease_recheck_seconds,
        processing_hold=settings.sms_processing_hold_seconds,
        pair_events=settings.sms_event_pairs,
    )
    owner = instance_id()

    async def start(rt: Runtime) -> None:
        assert rt.publisher is not None
        claims = Claims(rt.db[DISPATCHES], owner, settings.dispatch_lease_seconds)
        recent = RecentSubmits()
        opt_outs = OptOutLookups(rt.db[OPT_OUTS], Channel.SMS.value)
        # receipts and outcomes published while another publish awaits its confirm share the next
        sink = StatusGroups(rt.publisher, group=settings.sms_event_pairs)
        rt.extras["dispatcher"] = Dispatcher(claims, sink, carriers, config, now,
                                             opt_outs=opt_outs, recent=recent)
        deliveries.append(Deliveries(rt.db[DISPATCHES], sink, now, recent=recent))
        for route in smpp:
            route.start()
        rt.extras["smpp"] = smpp
        log.info("dispatcher ready", extra={"owner": owner, "routes": sorted(routes)})

    async def handle(cmd: SendSms) -> None:
        dispatcher: Dispatcher = runtime.extras["dispatcher"]
        try:
            await dispatcher.dispatch(cmd)
        except (ConnectionFailure, BrokerUnavailable) as exc:
            log.warning("dependency unavailable; message goes back to the queue",
                        extra={"message_id": cmd.message_id, "error": repr(exc)})
            await asyncio.sleep(NACK_PAUSE)
            raise NackMessage(requeue=True) from exc

    standard = runtime.broker.subscriber(work_queue(topology.SMS_SEND_QUEUE),
                                         decoder=contract_body(SendSms))
    otp_lane = runtime.broker.subscriber(
        work_queue(topology.SMS_OTP_QUEUE), decoder=contract_body(SendSms),
        channel=RabbitChannel(prefetch_count=settings.otp_prefetch, publisher_confirms=True))

    @standard
    async def handle_send_sms(cmd: SendSms) -> None:
        await handle(cmd)

    @otp_lane
    async def handle_send_otp(cmd: SendSms) -> None:
        await handle(cmd)

    async def stop(rt: Runtime) -> None:
        # Stop consuming and let in-flight sends finish; then unbind SMPP and let the receipts
        # already taken be published while the broker is still connected.
        await asyncio.gather(standard.stop(), otp_lane.stop())
        await asyncio.gather(*(route.aclose() for route in smpp), return_exceptions=True)

    async def close_carriers() -> None:
        # Litestar runs on_shutdown after the lifespan, i.e. after the broker drained in-flight
        # messages, so no handler is still using a carrier here.
        await asyncio.gather(*(c.aclose() for c in closers if not isinstance(c, SmppCarrier)),
                             return_exceptions=True)

    delays = settings.delay_steps()
    return build_app(
        runtime,
        collections=[DISPATCHES],
        delays={topology.SMS_SEND_QUEUE: delays, topology.SMS_OTP_QUEUE: delays},
        on_start=[start],
        on_stop=[stop],
        on_shutdown=[close_carriers],
    )
