"""The sandbox transport for test keys: accepts like a relay, then behaves like the recipient's side.

Simulator addresses (``docs/architecture.md``) pick what happens after acceptance; the outcome reaches
provider-ingest the way a real MTA's does: signed JSON feedback, or a fetch of the open pixel. Any other
address is "delivered". Idempotent on the message id (a redelivered command causes no second feedback).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime

import httpx
import msgspec

from postwire_platform import signed_tokens
from postwire_platform.callbacks import call_back

from .answers import DeliveryError, SmtpAnswer
from .transport import Accepted, Outgoing

log = logging.getLogger(__name__)

SIMULATOR_DOMAIN = "simulator.postwire.example"
DELIVERED = f"delivered@{SIMULATOR_DOMAIN}"
SOFT_BOUNCE = f"softbounce@{SIMULATOR_DOMAIN}"
HARD_BOUNCE = f"hardbounce@{SIMULATOR_DOMAIN}"
COMPLAINT = f"complaint@{SIMULATOR_DOMAIN}"
OPEN = f"open@{SIMULATOR_DOMAIN}"
REJECTED = f"rejected@{SIMULATOR_DOMAIN}"

_REMEMBERED = 100_000


class Feedback(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """The JSON form of MTA feedback that provider-ingest accepts."""

    type: str
    message_id: str
    recipient: str
    bounce_type: str | None = None
    status: str | None = None
    diagnostic: str | None = None
    occurred_at: datetime | None = None
    feedback_id: str | None = None


_encoder = msgspec.json.Encoder()


class SandboxTransport:
    """In-process "recipient side" for test keys; never reaches a real mailbox."""

    name = "sandbox"

    def __init__(self, *, feedback_url: str, feedback_secret: str, delay: float = 0.2,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._feedback_url = feedback_url
        self._secret = feedback_secret
        self._delay = delay
        self._client = httpx.AsyncClient(timeout=10.0, transport=transport)
        self._seen: OrderedDict[str, bool] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def deliver(self, outgoing: Outgoing) -> Accepted:
        recipient = outgoing.recipients[0].lower()
        if recipient == REJECTED:
            raise DeliveryError(SmtpAnswer(550, "5.1.1 sandbox: the mailbox does not exist", "rcpt"))
        if outgoing.message_id not in self._seen:
            self._seen[outgoing.message_id] = True
            while len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)
            self._schedule(outgoing, recipient)
        return Accepted(SmtpAnswer(250, f"2.0.0 sandbox: accepted as {outgoing.message_id}"),
                        self.name, "sandbox")

    def _schedule(self, outgoing: Outgoing, recipient: str) -> None:
        task = asyncio.create_task(self._after(outgoing, recipient),
                                   name=f"sandbox-email-{outgoing.message_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after(self, outgoing: Outgoing, recipient: str) -> None:
        await asyncio.sleep(self._delay)
        mid = outgoing.message_id
        now = datetime.now(UTC)
        if recipient == SOFT_BOUNCE:
            await self._post(Feedback(type="bounce", message_id=mid, recipient=recipient,
                                      bounce_type="soft", status="4.2.2",
                                      diagnostic="smtp; 452 4.2.2 sandbox: mailbox full",
                                      occurred_at=now, feedback_id=f"sbx-soft-{mid}"))
            return
        if recipient == HARD_BOUNCE:
            await self._post(Feedback(type="bounce", message_id=mid, recipient=recipient,
                                      bounce_type="hard", status="5.1.1",
                                      diagnostic="smtp; 550 5.1.1 sandbox: no such user",
                                      occurred_at=now, feedback_id=f"sbx-hard-{mid}"))
            return
        await self._post(Feedback(type="delivery", message_id=mid, recipient=recipient,
                                  status="2.0.0", occurred_at=now, feedback_id=f"sbx-dlv-{mid}"))
        if recipient == COMPLAINT:
            await self._post(Feedback(type="complaint", message_id=mid, recipient=recipient,
                                      occurred_at=datetime.now(UTC),
                                      feedback_id=f"sbx-fbl-{mid}"))
        elif recipient == OPEN and outgoing.pixel_url:
            await self._fetch(outgoing.pixel_url, mid)

    async def _post(self, feedback: Feedback) -> None:
        body = _encoder.encode(feedback)
        await call_back(lambda: self._client.post(
            self._feedback_url, content=body, headers={
                "Content-Type": "application/json",
                signed_tokens.SIGNATURE_HEADER: signed_tokens.sign_body(
                    self._secret, body, int(time.time()))}),
            what="feedback", message_id=feedback.message_id)

    async def _fetch(self, url: str, message_id: str) -> None:
        await call_back(lambda: self._client.get(url), what="open pixel", message_id=message_id)

    @property
    def pending(self) -> int:
        """Feedback scheduled and not yet sent."""
        return len(self._tasks)

    async def aclose(self, grace: float = 1.0) -> None:
        """Let due feedback go out for up to ``grace`` seconds, cancel the rest, close the client."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()
