"""The sms-dispatcher app: a ``sms-dispatcher.send`` consumer plus health routes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from faststream.exceptions import NackMessage
from litestar import Litestar
from pymongo.errors import ConnectionFailure

from postwire_contracts import topology
from postwire_contracts.messages import SendSms
from postwire_platform.broker import BrokerUnavailable, work_queue
from postwire_platform.clock import Clock, utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import DISPATCHES
from postwire_platform.service import Runtime, build_app, new_broker

from .carrier import HttpCarrier, SmsCarrier
from .claims import Claims
from .dispatch import Carriers, DispatchConfig, Dispatcher
from .sandbox import SandboxCarrier
from .settings import SmsDispatcherSettings

log = logging.getLogger(__name__)

NACK_PAUSE = 1.0
"""Seconds to wait before handing a message back after a Mongo or broker outage (no hot loop)."""


def instance_id() -> str:
    """This process's lease owner name: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


def create_app(settings: SmsDispatcherSettings, *, carrier: SmsCarrier | None = None,
               sandbox: SmsCarrier | None = None, clock: Clock | None = None) -> Litestar:
    """Build the app; ``carrier``/``sandbox`` replace the HTTP and sandbox carriers (tests)."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    now = clock or utcnow
    owned: list[HttpCarrier | SandboxCarrier] = []
    if carrier is None and settings.sms_carrier_url:
        carrier = HttpCarrier(settings.sms_carrier_url, settings.sms_carrier_token,
                              timeout=settings.sms_carrier_timeout)
        owned.append(carrier)
    if sandbox is None:
        sandbox = SandboxCarrier(dlr_delay=settings.sandbox_dlr_delay)
        owned.append(sandbox)
    carriers = Carriers(sandbox=sandbox, live=carrier)
    config = DispatchConfig(
        dlr_callback_url=settings.sms_dlr_callback_url, dlr_token=settings.sms_dlr_token,
        retry_delays=list(settings.sms_retry_delays),
        recheck_seconds=settings.lease_recheck_seconds,
    )
    owner = instance_id()

    async def start(rt: Runtime) -> None:
        assert rt.publisher is not None
        claims = Claims(rt.db[DISPATCHES], owner, settings.dispatch_lease_seconds)
        rt.extras["dispatcher"] = Dispatcher(claims, rt.publisher, carriers, config, now)
        log.info("dispatcher ready", extra={"owner": owner, "live": carrier is not None})

    @runtime.broker.subscriber(work_queue(topology.SMS_SEND_QUEUE))
    async def handle_send_sms(cmd: SendSms) -> None:
        dispatcher: Dispatcher = runtime.extras["dispatcher"]
        try:
            await dispatcher.dispatch(cmd)
        except (ConnectionFailure, BrokerUnavailable) as exc:
            log.warning("dependency unavailable; message goes back to the queue",
                        extra={"message_id": cmd.message_id, "error": repr(exc)})
            await asyncio.sleep(NACK_PAUSE)
            raise NackMessage(requeue=True) from exc

    async def close_carriers() -> None:
        # Litestar runs on_shutdown after the lifespan, i.e. after the broker drained in-flight
        # messages, so no handler is still using a carrier here.
        for owned_carrier in owned:
            await owned_carrier.aclose()

    return build_app(
        runtime,
        collections=[DISPATCHES],
        delays={topology.SMS_SEND_QUEUE: settings.delay_steps()},
        on_start=[start],
        on_shutdown=[close_carriers],
    )
