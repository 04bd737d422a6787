"""The gateway's commands: replay one delivery, replay every failed one since a time, send a test event.

A replay is a new run of the same delivery: the event's exact body under the same ``webhook-id``, with
the full retry schedule, and its attempts recorded with ``trigger: "replay"`` and ``run`` = the command
id. A test event is an example event delivered once (``trigger: "test"``).
"""

from __future__ import annotations

import logging

from postwire_contracts.webhooks import ReplayDelivery, ReplayFailed, SendTestEvent, WebhookCommand

from .attempts import AttemptLog, event_of
from .delivery import Deliverer
from .events import example_event
from .jobs import DeliveryJob

log = logging.getLogger(__name__)


async def run_command(command: WebhookCommand, deliverer: Deliverer, attempts: AttemptLog) -> int:
    """Carry out ``command``; returns how many deliveries it queued."""
    if isinstance(command, ReplayDelivery):
        doc = await attempts.latest(command.tenant_id, command.endpoint_id, command.webhook_id)
        if doc is None:
            log.warning("replay of an unknown delivery ignored",
                        extra={"webhook_id": command.webhook_id})
            return 0
        await deliverer.enqueue(DeliveryJob(event=event_of(doc), endpoint_id=command.endpoint_id,
                                            trigger="replay", run=command.command_id))
        return 1
    if isinstance(command, ReplayFailed):
        queued = 0
        async for doc in attempts.failed_since(command.tenant_id, command.endpoint_id,
                                               command.since):
            await deliverer.enqueue(DeliveryJob(event=event_of(doc),
                                                endpoint_id=command.endpoint_id,
                                                trigger="replay", run=command.command_id))
            queued += 1
        log.info("failed deliveries replayed", extra={"endpoint_id": command.endpoint_id,
                                                      "count": queued})
        return queued
    assert isinstance(command, SendTestEvent)
    event = example_event(command.event_id, command.tenant_id, command.event_type,
                       command.requested_at)
    await deliverer.enqueue(DeliveryJob(event=event, endpoint_id=command.endpoint_id,
                                        trigger="test", run=command.command_id))
    return 1
