"""The whatsapp dispatcher's first form.

It runs like every service (settings, health, graceful shutdown, the declared topology) and consumes its
queue, but real delivery for this channel is not built yet: every command is answered with a FAILED event
`channel_not_available`, so a message never sits in QUEUED silently. The gateway does not accept sends
for this channel yet either.
"""

from __future__ import annotations

import logging

from litestar import Litestar

from postwire_contracts import topology
from postwire_contracts.messages import SendWhatsApp, StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_platform.broker import work_queue
from postwire_platform.clock import utcnow
from postwire_platform.service import Runtime, build_app, new_broker

from .settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Litestar:
    """The service app; its subscriber answers each command with a FAILED status event."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))

    @runtime.broker.subscriber(work_queue(topology.WHATSAPP_SEND_QUEUE))
    async def handle(command: SendWhatsApp) -> None:
        assert runtime.publisher is not None
        log.warning("channel not available", extra={"message_id": command.message_id})
        event = StatusEvent(
            event_id=f"{command.message_id}:failed", channel=Channel.WHATSAPP, status=Status.FAILED,
            occurred_at=utcnow(), source=settings.service_name, message_id=command.message_id,
            tenant_id=command.tenant_id, error_code="channel_not_available",
            error_reason="whatsapp delivery is not available in this release",
        )
        await runtime.publisher.publish(event, topology.status_key(Channel.WHATSAPP),
                                        message_id=event.event_id)

    return build_app(runtime)
