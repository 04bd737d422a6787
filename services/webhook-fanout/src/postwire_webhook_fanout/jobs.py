"""The delivery job: one endpoint's next attempt at one notification, parked in a delay queue."""

from __future__ import annotations

import msgspec

from postwire_contracts.messages import StatusChanged


class DeliveryJob(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind",
                  tag="webhook.delivery.v1"):
    """Attempt number ``attempt`` (1 = the first) of delivering ``notification`` to ``endpoint_id``."""

    notification: StatusChanged
    endpoint_id: str
    attempt: int
