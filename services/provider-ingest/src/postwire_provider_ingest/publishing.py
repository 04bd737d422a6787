"""Where provider-ingest's handlers publish: the runtime's publisher behind ``StatusGroups``, so the
statuses of concurrent callbacks (Meta posts one per status; carriers one per receipt) that come while
an earlier publish awaits its confirm share the next AMQP message (``STATUS_GROUPS``)."""

from __future__ import annotations

from postwire_platform.announcing import StatusGroups
from postwire_platform.service import Runtime

GROUP = "status_groups"
SINK = "status_sink"


def install(runtime: Runtime, *, group: bool) -> None:
    """Group the statuses ``runtime``'s handlers publish (``group``) or not."""
    runtime.extras[GROUP] = group


def sink(runtime: Runtime) -> StatusGroups | None:
    """The sink in front of the runtime's current publisher; None while the broker is not connected
    (the handler answers 503)."""
    publisher = runtime.publisher
    if publisher is None:
        return None
    found = runtime.extras.get(SINK)
    if isinstance(found, tuple) and found[0] is publisher and isinstance(found[1], StatusGroups):
        return found[1]
    groups = StatusGroups(publisher, group=bool(runtime.extras.get(GROUP, False)))
    runtime.extras[SINK] = (publisher, groups)  # a new one when the publisher was replaced
    return groups
