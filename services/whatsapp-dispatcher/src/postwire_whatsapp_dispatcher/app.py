"""The whatsapp-dispatcher app: a ``whatsapp-dispatcher.send`` consumer plus health routes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from faststream.exceptions import NackMessage
from litestar import Litestar
from pymongo.errors import ConnectionFailure

from postwire_contracts import topology
from postwire_contracts.messages import SendWhatsApp
from postwire_contracts.status import Channel
from postwire_platform.announcing import StatusGroups
from postwire_platform.broker import BrokerUnavailable, contract_body, work_queue
from postwire_platform.clock import Clock, utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import OPT_OUTS, TENANTS, WHATSAPP_DISPATCHES
from postwire_platform.opt_outs import OptOutLookups
from postwire_platform.service import Runtime, build_app, new_broker

from .claims import Claims
from .dispatch import Clients, DispatchConfig, Dispatcher
from .graph import GraphClient, WhatsAppClient
from .lines import LineResolver, PlatformLine
from .pacing import Pacer, Rate
from .sandbox import SandboxClient
from .settings import Settings

log = logging.getLogger(__name__)

NACK_PAUSE = 1.0
"""Seconds to wait before handing a message back after a MongoDB or broker outage (no hot loop)."""


def instance_id() -> str:
    """This process's lease owner name: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


def create_app(settings: Settings, *, client: WhatsAppClient | None = None,
               sandbox: WhatsAppClient | None = None, clock: Clock | None = None) -> Litestar:
    """Build the app; ``client``/``sandbox`` replace the Graph API and sandbox clients (tests).

    Raises ``SettingsError`` when the settings do not fit together (``Settings.check``).
    """
    keyring = settings.check()
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    now = clock or utcnow
    owned: list[WhatsAppClient] = []
    if client is None:
        client = GraphClient(settings.whatsapp_graph_url, settings.whatsapp_graph_version,
                             timeout=settings.whatsapp_graph_timeout,
                             max_connections=max(10, settings.prefetch))
        owned.append(client)
    if sandbox is None:
        sandbox = SandboxClient(webhook_url=settings.whatsapp_sandbox_webhook_url,
                                app_secret=settings.whatsapp_app_secret,
                                status_delay=settings.whatsapp_sandbox_status_delay)
        owned.append(sandbox)
    config = DispatchConfig(
        enabled=settings.whatsapp_cloud_api_enabled,
        retry_delays=list(settings.whatsapp_retry_delays),
        pacing_delays=list(settings.whatsapp_pacing_delays),
        recheck_seconds=settings.dispatch_lease_seconds,
        recipient_interval=1 / settings.whatsapp_rate_per_recipient,
        processing_hold=settings.whatsapp_processing_hold_seconds,
        pair_events=settings.whatsapp_event_pairs,
    )
    pacer = Pacer(Rate(settings.whatsapp_rate_per_number, settings.whatsapp_burst_per_number),
                  Rate(settings.whatsapp_rate_per_recipient, settings.whatsapp_burst_per_recipient),
                  max_wait=settings.whatsapp_pacing_max_wait,
                  max_waiting=max(1, settings.prefetch // 2))
    platform = PlatformLine(settings.whatsapp_phone_number_id, settings.whatsapp_access_token)
    owner = instance_id()
    clients = Clients(live=client, sandbox=sandbox)

    async def start(rt: Runtime) -> None:
        assert rt.publisher is not None
        claims = Claims(rt.db[WHATSAPP_DISPATCHES], owner, settings.dispatch_lease_seconds)
        lines = LineResolver(rt.db, keyring, platform, ttl=settings.whatsapp_line_cache_seconds)
        # outcomes published while another publish awaits its confirm share the next
        sink = StatusGroups(rt.publisher, group=settings.whatsapp_event_pairs)
        rt.extras["dispatcher"] = Dispatcher(claims, sink, clients, lines,
                                             OptOutLookups(rt.db[OPT_OUTS], Channel.WHATSAPP.value),
                                             pacer, config, now)
        log.info("dispatcher ready", extra={
            "owner": owner, "enabled": settings.whatsapp_cloud_api_enabled,
            "platform_line": bool(platform.phone_number_id)})

    @runtime.broker.subscriber(work_queue(topology.WHATSAPP_SEND_QUEUE),
                               decoder=contract_body(SendWhatsApp))
    async def handle_send_whatsapp(cmd: SendWhatsApp) -> None:
        dispatcher: Dispatcher = runtime.extras["dispatcher"]
        try:
            await dispatcher.dispatch(cmd)
        except (ConnectionFailure, BrokerUnavailable) as exc:
            log.warning("dependency unavailable; message goes back to the queue",
                        extra={"message_id": cmd.message_id, "error": repr(exc)})
            await asyncio.sleep(NACK_PAUSE)
            raise NackMessage(requeue=True) from exc

    async def close_clients() -> None:
        # on_shutdown runs after the lifespan, i.e. after the broker drained in-flight messages.
        for owned_client in owned:
            await owned_client.aclose()

    return build_app(
        runtime,
        collections=[WHATSAPP_DISPATCHES, OPT_OUTS, TENANTS],
        delays={topology.WHATSAPP_SEND_QUEUE: settings.delay_steps()},
        on_start=[start],
        on_shutdown=[close_clients],
    )
