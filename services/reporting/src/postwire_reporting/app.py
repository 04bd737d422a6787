"""The reporting service: consumes every status and inbound event and records it once.

Each delivery's handler hands its event (each of them, for ``StatusEvents``) to the micro-batcher and
waits for the batch's outcome: success acks, a transient failure (MongoDB or RabbitMQ unreachable) nacks
with requeue after a short pause, and an event that fails on its own for any other reason is rejected
to the queue's dead-letter queue (with the events published together with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream.exceptions import NackMessage, RejectMessage
from litestar import Litestar
from prometheus_client import Counter

from postwire_contracts import topology
from postwire_contracts.messages import EventMessage, StatusEvents
from postwire_platform import telemetry
from postwire_platform.broker import contract_body, work_queue
from postwire_platform.mongo import EVENTS, MESSAGES, STATS_DAILY
from postwire_platform.service import Runtime, build_app, new_broker

from .batcher import BatcherStopped, MicroBatcher
from .recorder import Event, Recorder, is_transient
from .settings import Settings

log = logging.getLogger(__name__)

BATCHER = "batcher"

HANDED_BACK = Counter("postwire_reporting_requeued", "Events nacked back to RabbitMQ after a failure")
DEAD_LETTERED = Counter("postwire_reporting_dead_lettered", "Events rejected to the dead-letter queue")


def create_app(settings: Settings) -> Litestar:
    """The reporting app: health routes plus the batched subscriber on ``reporting.events``."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    subscriber = runtime.broker.subscriber(work_queue(topology.REPORTING_QUEUE),
                                           decoder=contract_body(EventMessage))
    origins = telemetry.Origins()

    @subscriber
    async def handle(message: EventMessage) -> None:
        batcher: MicroBatcher[Event] = runtime.extras[BATCHER]
        events: list[Event] = (list(message.events) if isinstance(message, StatusEvents)
                               else [message])
        first = events[0].event_id if events else ""
        try:
            with contextlib.ExitStack() as held:
                for event in events:  # the batch links its notification to this trace
                    held.enter_context(origins.held(event.event_id))
                if len(events) == 1:
                    await batcher.submit(events[0])
                    return
                outcomes = await asyncio.gather(*(batcher.submit(e) for e in events),
                                                return_exceptions=True)
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            if failed:  # the whole message goes back, or is dead-lettered if nothing would cure it
                raise next((f for f in failed if isinstance(f, BatcherStopped) or is_transient(f)),
                           failed[0])
        except Exception as exc:
            if isinstance(exc, BatcherStopped) or is_transient(exc):
                log.warning("event not recorded; handing it back",
                            extra={"event_id": first, "events": len(events), "error": repr(exc)})
                HANDED_BACK.inc(len(events))
                await asyncio.sleep(settings.retry_pause)
                raise NackMessage(requeue=True) from exc
            log.error("event cannot be recorded; dead-lettering it",
                      extra={"event_id": first, "events": len(events), "error": repr(exc)})
            DEAD_LETTERED.inc(len(events))
            raise RejectMessage(requeue=False) from exc

    async def start(rt: Runtime) -> None:
        assert rt.publisher is not None
        recorder = Recorder(rt.db, rt.publisher, origins, batch_notes=settings.notify_batches)
        batcher: MicroBatcher[Event] = MicroBatcher(
            recorder.process, max_items=settings.batch_max,
            max_wait=settings.batch_wait_ms / 1000, is_transient=is_transient)
        batcher.start()
        rt.extras[BATCHER] = batcher

    async def stop(rt: Runtime) -> None:
        # Stop consuming and let in-flight handlers finish while the flusher still runs.
        await subscriber.stop()
        batcher: MicroBatcher[Event] | None = rt.extras.get(BATCHER)
        if batcher is not None:
            await batcher.stop(timeout=settings.shutdown_timeout)

    return build_app(runtime, collections=[MESSAGES, EVENTS, STATS_DAILY], on_start=[start],
                     on_stop=[stop])
