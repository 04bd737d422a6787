"""The delivery job: one endpoint's next attempt at one event, on ``webhook-fanout.deliver``.

Jobs are webhook-fanout's own messages (nothing else publishes them). ``webhook.delivery.v1`` jobs (which
carried the raw notification) may still sit in delay queues after an upgrade; they are read and turned
into v2 jobs, so none is lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from postwire_contracts.messages import Notification

from .events import WebhookEvent, build

Trigger = Literal["event", "replay", "test"]


class DeliveryJob(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind",
                  tag="webhook.delivery.v2"):
    """Attempt ``attempt`` (1 = the first) of delivering ``event`` to ``endpoint_id``.

    ``trigger`` says why the delivery runs (the event itself, a replay, a test event); ``run`` names a
    replay's command so its attempts can be told apart. ``order_until`` bounds how long the first
    attempt waits for the message's earlier events; ``set_aside`` counts how often the job was put
    back without an attempt (endpoint at its limit, waiting for order).
    """

    event: WebhookEvent
    endpoint_id: str
    attempt: int = 1
    trigger: Trigger = "event"
    run: str = ""
    order_until: datetime | None = None
    set_aside: int = 0


class DeliveryJobV1(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind",
                    tag="webhook.delivery.v1"):
    """The first job format: the notification itself."""

    notification: Notification
    endpoint_id: str
    attempt: int


_decoder = msgspec.json.Decoder(DeliveryJob | DeliveryJobV1)
_encoder = msgspec.json.Encoder()


def decode_job(raw: bytes) -> DeliveryJob | None:
    """A job from its wire form (either version); None for a v1 job with nothing to deliver."""
    job = _decoder.decode(raw)
    if isinstance(job, DeliveryJob):
        return job
    event = build(job.notification)
    if event is None:
        return None
    return DeliveryJob(event=event, endpoint_id=job.endpoint_id, attempt=job.attempt)


def encode_job(job: DeliveryJob) -> bytes:
    return _encoder.encode(job)
