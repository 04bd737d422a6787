"""Helpers shared by the gateway tests: a tenant with keys, the send queue, polling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aio_pika
import msgspec
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.messages import SendSms
from postwire_platform import tenancy
from postwire_platform.mongo import Document

T = TypeVar("T")

SENDER = "Postwire"
VALID_TO = "+14155552671"


@dataclass
class Tenant:
    """A tenant with the keys the tests use."""

    id: str
    live_key: str  # send:sms + read:sms, live
    test_key: str  # send:sms + read:sms, test
    read_only_key: str  # read:sms only
    webhooks_key: str  # webhooks:write only

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.live_key}"}


async def make_tenant(db: AsyncDatabase[Document], name: str = "Acme") -> Tenant:
    """A tenant with four keys and the approved sender id ``Postwire``."""
    tenant = await tenancy.create_tenant(db, name)
    tid = tenant["_id"]
    live, _ = await tenancy.create_key(db, tid, ["send:sms", "read:sms"], mode="live")
    test, _ = await tenancy.create_key(db, tid, ["send:sms", "read:sms"], mode="test")
    read_only, _ = await tenancy.create_key(db, tid, ["read:sms"], mode="live")
    webhooks, _ = await tenancy.create_key(db, tid, ["webhooks:write"], mode="live")
    await tenancy.approve_sender_id(db, tid, SENDER)
    return Tenant(tid, live, test, read_only, webhooks)


class SendQueue:
    """The sms-dispatcher's work queue, read directly to see what the gateway published."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue,
                 *lanes: aio_pika.abc.AbstractQueue) -> None:
        self.queue = queue
        self.queues = [queue, *lanes]  # the standard queue and the OTP lane

    async def take(self, expected: int = 1, *, timeout: float = 5.0,
                   settle: float = 0.3) -> list[tuple[SendSms, aio_pika.abc.AbstractIncomingMessage]]:
        """Wait for ``expected`` commands, then ``settle`` seconds more to catch any extra one."""
        got: list[tuple[SendSms, aio_pika.abc.AbstractIncomingMessage]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_until: float | None = None
        while True:
            messages = [await q.get(no_ack=True, fail=False) for q in self.queues]
            if any(m is not None for m in messages):
                got.extend((msgspec.json.decode(m.body, type=SendSms), m)
                           for m in messages if m is not None)
                continue
            now = loop.time()
            if len(got) >= expected:
                quiet_until = quiet_until or now + settle
                if now >= quiet_until:
                    return got
            elif now >= deadline:
                return got
            await asyncio.sleep(0.05)

    async def empty(self, settle: float = 0.3) -> bool:
        """True when nothing arrives within ``settle`` seconds."""
        return not await self.take(0, settle=settle)



async def eventually(check: Callable[[], Any], *, timeout: float = 5.0) -> Any:
    """Poll the async ``check`` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


async def in_app(client: Any, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``fn`` on the app's event loop: the test client serves the app from a thread of its own,
    and the app's MongoDB client must only be used on the loop it was created on."""
    future = client.blocking_portal.start_task_soon(fn, *args)
    return await asyncio.wrap_future(future)
