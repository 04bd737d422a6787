"""The live stream: ``/v1/stream`` (WebSocket) pushes a tenant's status changes as reporting records them.

Each gateway replica consumes its own exclusive, auto-deleted queue bound to ``notify.status.*`` (the
``StatusChanged`` notifications and ``StatusChanges`` batches reporting publishes) and fans every status
change out, in process, to the connected sockets of that tenant whose key may read the channel. The
queue is bound only while the replica has a client: a replica nobody streams from receives no
notifications (it used to consume every one, about a sixth of the gateway's CPU under load, only to drop
it); a client is answered ``ready`` once the binding is in place, so it sees every change recorded from
then on. Fan-out never waits on a socket: each client has a bounded buffer of frames, and a client whose
buffer is full is closed (1013, "too slow") instead of slowing the consumer or the other clients.

Authentication happens on the upgrade request: ``Authorization: Bearer <key>``, or ``?token=<key>`` for
browsers (whose WebSocket API cannot set headers; the key then travels in the URL, so keep such keys
read-only). The key needs at least one ``read:<channel>`` scope and sees only those channels. A refused
upgrade gets an HTTP answer in the SPEC's error format (401, 402, 403, 503) where the server supports
it, else a close with 1008 before the handshake completes (an HTTP 403).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
from faststream.rabbit import RabbitBroker, RabbitQueue
from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from prometheus_client import Counter, Gauge

from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged, StatusChanges, StatusNotification
from postwire_contracts.status import Channel
from postwire_platform.broker import EXCHANGE, contract_body
from postwire_platform.errors import ApiError, unavailable
from postwire_platform.ids import new_id
from postwire_platform.service import Runtime

from .auth import Principal, bearer_key
from .context import Gateway
from .settings import GatewaySettings
from .views import iso

log = logging.getLogger(__name__)

PATH = "/v1/stream"
SLOW_CLIENT = 1013
"""Close code for a client that fell ``stream_buffer`` frames behind ("try again later")."""
CLOSE_GRACE_SECONDS = 10.0
"""How long closing a slow client may wait for its socket to take the close frame."""
NO_CUSTOMER_TYPE = "message_event"
"""``type`` of a frame whose event has no customer event type (PROCESSING, a failure after delivery)."""

CLIENTS = Gauge("postwire_gateway_stream_clients", "Connected live-stream clients")
FRAMES = Counter("postwire_gateway_stream_frames", "Status frames queued to live-stream clients")
DROPPED = Counter("postwire_gateway_stream_slow_clients", "Live-stream clients closed for being too slow")
RELAYED = Counter("postwire_gateway_stream_notifications",
                  "Status notifications this replica received for its live-stream clients")

_encoder = msgspec.json.Encoder()


@dataclass(eq=False)
class Listener:
    """One connected socket: whose events it wants and the frames waiting to be written to it."""

    tenant_id: str
    channels: frozenset[str]
    frames: asyncio.Queue[str]
    too_slow: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, frame: str) -> None:
        """Queue ``frame`` without waiting; a full buffer marks the client too slow (once)."""
        if self.too_slow.is_set():
            return
        try:
            self.frames.put_nowait(frame)
        except asyncio.QueueFull:
            self.too_slow.set()
            DROPPED.inc()
            return
        FRAMES.inc()


class StreamHub:
    """The replica's connected listeners by tenant; ``dispatch`` fans a notification out to them."""

    def __init__(self, buffer: int) -> None:
        self._buffer = buffer
        self._by_tenant: dict[str, set[Listener]] = {}

    def add(self, tenant_id: str, channels: frozenset[str]) -> Listener:
        listener = Listener(tenant_id, channels, asyncio.Queue(self._buffer))
        self._by_tenant.setdefault(tenant_id, set()).add(listener)
        CLIENTS.inc()
        return listener

    def remove(self, listener: Listener) -> None:
        listeners = self._by_tenant.get(listener.tenant_id)
        if listeners is not None and listener in listeners:
            listeners.discard(listener)
            CLIENTS.dec()
            if not listeners:
                del self._by_tenant[listener.tenant_id]

    def dispatch(self, note: StatusChanged) -> int:
        """Offer ``note`` to its tenant's listeners of its channel; how many got it. Never waits."""
        listeners = self._by_tenant.get(note.tenant_id)
        if not listeners:
            return 0
        frame: str | None = None
        count = 0
        for listener in list(listeners):
            if note.channel.value in listener.channels:
                frame = frame or _encoder.encode(status_frame(note)).decode()
                listener.offer(frame)
                count += 1
        return count

    def __len__(self) -> int:
        return sum(len(listeners) for listeners in self._by_tenant.values())


def status_frame(note: StatusChanged) -> dict[str, Any]:
    """The JSON frame of one recorded status change (camelCase, like the HTTP API)."""
    return {
        "type": note.event_type or NO_CUSTOMER_TYPE,
        "eventId": note.event_id,
        "messageId": note.message_id,
        "channel": note.channel.value,
        "status": note.status.value,
        "eventStatus": note.event_status.value,
        "occurredAt": iso(note.occurred_at),
        "recipient": note.recipient,
        "live": note.live,
        "providerMessageId": note.provider_message_id,
        "errorCode": note.error_code,
        "errorReason": note.error_reason,
        "metadata": note.metadata,
        "detail": note.detail,
    }


class Binding:
    """Binds the replica's stream queue to ``notify.status.*`` while at least one client listens.

    aio-pika's robust queue restores the bindings it holds after a reconnect, so a binding made here
    survives one, and one removed here stays removed.
    """

    def __init__(self, broker: RabbitBroker, queue: RabbitQueue) -> None:
        self._broker = broker
        self._queue = queue
        self._holders = 0
        self._lock = asyncio.Lock()

    async def hold(self) -> None:
        """One more listener; binds the queue for the first. Raises if RabbitMQ refuses."""
        async with self._lock:
            if self._holders == 0:
                queue = await self._broker.declare_queue(self._queue)
                await queue.bind(EXCHANGE.name, routing_key=topology.NOTIFY_STATUS_PATTERN)
            self._holders += 1

    async def release(self) -> None:
        """One listener fewer; unbinds the queue after the last (best effort: the queue goes away
        with the connection anyway)."""
        async with self._lock:
            self._holders -= 1
            if self._holders > 0:
                return
            try:
                queue = await self._broker.declare_queue(self._queue)
                await queue.unbind(EXCHANGE.name, routing_key=topology.NOTIFY_STATUS_PATTERN)
            except Exception as exc:  # the notifications keep coming and are dropped, as before
                log.warning("could not unbind the live-stream queue", extra={"error": repr(exc)})


def readable_channels(principal: Principal) -> frozenset[str]:
    """The channels whose events the key may see: those it holds ``read:<channel>`` for."""
    return frozenset(c.value for c in Channel if f"read:{c.value}" in principal.scopes)


def attach_stream(app: Litestar, runtime: Runtime, settings: GatewaySettings) -> StreamHub:
    """Give ``app`` the live stream: the route, the hub, and this replica's queue consumer.

    Call before the app starts: the subscriber must exist when the lifespan starts the broker.
    """
    hub = StreamHub(settings.stream_buffer)
    queue = RabbitQueue(topology.stream_queue(new_id().lower()), durable=False, exclusive=True,
                        auto_delete=True)

    # bound to the notifications by ``Binding`` while listened to
    @runtime.broker.subscriber(queue, decoder=contract_body(StatusNotification))
    async def relay(note: StatusNotification) -> None:
        changes = note.changes if isinstance(note, StatusChanges) else [note]
        RELAYED.inc(len(changes))
        for change in changes:
            hub.dispatch(change)

    app.state.stream = hub
    app.state.stream_binding = Binding(runtime.broker, queue)
    app.register(live_stream)
    return hub


@websocket(PATH, name="live_stream")
async def live_stream(socket: WebSocket[Any, Any, Any]) -> None:
    """The tenant's status changes as JSON frames, as they are recorded."""
    gateway: Gateway = socket.app.state.gateway
    hub: StreamHub = socket.app.state.stream
    binding: Binding = socket.app.state.stream_binding
    try:
        principal = await gateway.auth.principal(socket, _key_of(socket))
        channels = readable_channels(principal)
        if not channels:
            raise ApiError(403, "forbidden", "the live stream needs a read:<channel> scope")
        try:
            await binding.hold()
        except Exception as exc:
            log.warning("cannot bind the live-stream queue", extra={"error": repr(exc)})
            raise unavailable("RabbitMQ") from exc
    except ApiError as exc:
        await _refuse(socket, exc)
        return
    try:
        await socket.accept()
        listener = hub.add(principal.tenant_id, channels)
        try:
            await _serve(socket, listener, gateway.settings.stream_ping_seconds)
        finally:
            hub.remove(listener)
    finally:
        await binding.release()


def _key_of(socket: WebSocket[Any, Any, Any]) -> str:
    token = socket.query_params.get("token")
    if token:
        return str(token)
    return bearer_key(socket.headers.get("authorization"))


async def _refuse(socket: WebSocket[Any, Any, Any], error: ApiError) -> None:
    """Answer the upgrade with the SPEC's error as HTTP, or close before accepting (HTTP 403)."""
    with contextlib.suppress(WebSocketDisconnect, OSError):  # the client may be gone already
        await socket.receive()  # websocket.connect
        if "websocket.http.response" in (socket.scope.get("extensions") or {}):
            headers = [(b"content-type", b"application/json"),
                       *((k.lower().encode(), v.encode()) for k, v in error.headers.items())]
            await socket.send({"type": "websocket.http.response.start", "status": error.status,
                               "headers": headers})
            await socket.send({"type": "websocket.http.response.body",
                               "body": _encoder.encode(error.body()), "more_body": False})
            return
        await socket.close(code=1008, reason=f"{error.error}: {error.message}"[:120])


async def _serve(socket: WebSocket[Any, Any, Any], listener: Listener, ping_seconds: float) -> None:
    """Write frames until the client leaves or falls too far behind."""
    listener.frames.put_nowait(_encoder.encode({"type": "ready",
                                                "channels": sorted(listener.channels)}).decode())
    writer = asyncio.create_task(_write_frames(socket, listener, ping_seconds))
    reader = asyncio.create_task(_read_until_closed(socket))
    slow = asyncio.create_task(listener.too_slow.wait())
    try:
        done, _ = await asyncio.wait({writer, reader, slow}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (writer, reader, slow):
            task.cancel()
        await asyncio.gather(writer, reader, slow, return_exceptions=True)
    if slow in done:
        log.info("closing a live-stream client that fell behind", extra={"tenant_id": listener.tenant_id})
        # The socket may not take the close frame until the client reads again: bounded.
        with contextlib.suppress(TimeoutError, WebSocketDisconnect, OSError):
            async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                await socket.close(code=SLOW_CLIENT, reason="too slow: the stream buffer is full")


async def _write_frames(socket: WebSocket[Any, Any, Any], listener: Listener, ping_seconds: float) -> None:
    try:
        while True:
            try:
                async with asyncio.timeout(ping_seconds):
                    frame = await listener.frames.get()
            except TimeoutError:
                frame = _encoder.encode({"type": "ping"}).decode()
            await socket.send_text(frame)
    except (WebSocketDisconnect, OSError) as exc:  # the client went away while we wrote
        log.debug("live-stream client gone", extra={"error": repr(exc)})


async def _read_until_closed(socket: WebSocket[Any, Any, Any]) -> None:
    """Consume (and ignore) what the client sends, until it disconnects."""
    async for _ in socket.iter_data("text"):
        pass
