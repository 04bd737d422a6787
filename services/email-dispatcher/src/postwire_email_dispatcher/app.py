"""The email-dispatcher app: a ``email-dispatcher.send`` consumer plus health routes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from faststream.exceptions import NackMessage
from litestar import Litestar
from pymongo.errors import ConnectionFailure

from postwire_contracts import topology
from postwire_contracts.messages import SendEmail
from postwire_platform.announcing import StatusGroups
from postwire_platform.broker import BrokerUnavailable, contract_body, work_queue
from postwire_platform.clock import Clock, utcnow
from postwire_platform.dns_resolver import make_resolver
from postwire_platform.ids import new_id
from postwire_platform.mongo import DOMAINS, EMAIL_DISPATCHES, SUPPRESSIONS
from postwire_platform.secrets_at_rest import Keyring
from postwire_platform.service import Runtime, build_app, new_broker

from .claims import Claims
from .compose import Tracking
from .dispatch import DispatchConfig, Dispatcher, Transports
from .mx import MxTransport
from .sandbox import SandboxTransport
from .settings import Settings
from .stores import DomainKeys, Suppressions
from .transport import EmailTransport, RelayTransport

log = logging.getLogger(__name__)

NACK_PAUSE = 1.0
"""Seconds to wait before handing a message back after a Mongo or broker outage (no hot loop)."""


def instance_id() -> str:
    """This process's lease owner name: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


def live_transport(settings: Settings) -> EmailTransport:
    """The configured relay, or direct MX delivery when ``EMAIL_RELAY_HOST`` is empty."""
    if settings.email_relay_host:
        return RelayTransport(
            settings.email_relay_host, settings.email_relay_port, tls=settings.email_relay_tls,
            username=settings.email_relay_username, password=settings.email_relay_password,
            verify_tls=settings.email_relay_verify_tls, pool_size=settings.email_relay_pool_size,
            timeout=settings.email_smtp_timeout, helo=settings.email_helo_name)
    return MxTransport(make_resolver(settings.dns_nameservers), port=settings.email_mx_port,
                       timeout=settings.email_smtp_timeout, helo=settings.email_helo_name)


def create_app(settings: Settings, *, live: EmailTransport | None = None,
               sandbox: EmailTransport | None = None, clock: Clock | None = None) -> Litestar:
    """Build the app; ``live``/``sandbox`` replace the configured transports (tests)."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    now = clock or utcnow
    keyring = Keyring(settings.secret_keys)  # DKIM keys are sealed: no keys, no start (exit 2)
    owned: list[EmailTransport] = []
    if live is None:
        live = live_transport(settings)
        owned.append(live)
    if sandbox is None:
        sandbox = SandboxTransport(feedback_url=settings.email_feedback_url,
                                   feedback_secret=settings.email_feedback_secret,
                                   delay=settings.sandbox_feedback_delay)
        owned.append(sandbox)
    transports = Transports(sandbox=sandbox, live=live)
    config = DispatchConfig(
        retry_delays=list(settings.email_retry_delays),
        recheck_seconds=settings.lease_recheck_seconds,
        tracking=Tracking(settings.email_tracking_base_url, settings.email_tracking_secret)
        if settings.email_tracking_secret else None,
        processing_hold=settings.email_processing_hold_seconds,
        pair_events=settings.email_event_pairs,
    )
    owner = instance_id()

    async def start(rt: Runtime) -> None:
        assert rt.publisher is not None
        claims = Claims(rt.db[EMAIL_DISPATCHES], owner, settings.dispatch_lease_seconds)
        keys = DomainKeys(rt.db[DOMAINS], keyring, ttl=settings.domain_cache_seconds, clock=now)
        # outcomes published while another publish awaits its confirm share the next
        sink = StatusGroups(rt.publisher, group=settings.email_event_pairs)
        rt.extras["dispatcher"] = Dispatcher(claims, sink, transports, keys,
                                             Suppressions(rt.db[SUPPRESSIONS]), config, now)
        log.info("dispatcher ready", extra={"owner": owner, "live": transports.live.name})

    @runtime.broker.subscriber(work_queue(topology.EMAIL_SEND_QUEUE),
                               decoder=contract_body(SendEmail))
    async def handle_send_email(cmd: SendEmail) -> None:
        dispatcher: Dispatcher = runtime.extras["dispatcher"]
        try:
            await dispatcher.dispatch(cmd)
        except (ConnectionFailure, BrokerUnavailable) as exc:
            log.warning("dependency unavailable; message goes back to the queue",
                        extra={"message_id": cmd.message_id, "error": repr(exc)})
            await asyncio.sleep(NACK_PAUSE)
            raise NackMessage(requeue=True) from exc

    async def close_transports() -> None:
        # on_shutdown runs after the lifespan drained in-flight messages: no handler uses them now
        for transport in owned:
            await transport.aclose()

    return build_app(
        runtime,
        collections=[EMAIL_DISPATCHES, SUPPRESSIONS, DOMAINS],
        delays={topology.EMAIL_SEND_QUEUE: settings.delay_steps()},
        on_start=[start],
        on_shutdown=[close_transports],
    )
