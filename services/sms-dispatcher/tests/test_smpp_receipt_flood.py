"""A flood of receipts handled slower than they arrive must not stop the submits on the same bind.

``smpp34`` (1.5.0) answers a ``deliver_sm`` with ESME_RMSGQFUL when its inbound queue is full, in a PDU
one octet longer than its header says; the SMSC's framing goes out of step and nothing on the bind is
answered any more, until the session times out. The bind therefore reads its events as they come,
whatever the receipts' handlers are waiting for (the database, the message's SENT event), so the queue
is never full. On the code before that, this test saw 173 of 600 submits time out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import smpp34
from prometheus_client import REGISTRY

from postwire_sms_dispatcher.carrier import SubmitRequest, TransientCarrierError
from postwire_sms_dispatcher.routes import SmppRoute
from postwire_sms_dispatcher.smpp import SmppCarrier
from postwire_testing.smsc import SmscSimulator

MESSAGES = 600
HANDLER_HOLD = 0.5  # seconds each receipt's handler takes (a busy database, a wait for SENT)


async def test_slow_receipt_handlers_do_not_stall_the_submits() -> None:
    handled: list[str] = []
    in_hand: list[float] = []

    def receipts_in_hand() -> float:
        return REGISTRY.get_sample_value("postwire_smpp_receipts_in_hand", {"route": "flood"}) or 0

    async def on_deliver(route: str, event: smpp34.DeliverSmEvent) -> None:
        in_hand.append(receipts_in_hand())
        await asyncio.sleep(HANDLER_HOLD)
        handled.append(event.short_message.decode("latin-1"))

    async with SmscSimulator(receipt_delay=0.0) as smsc:
        route = SmppRoute(host="127.0.0.1", port=smsc.port, system_id="postwire",
                          password="secret", reference_tlv=0x1400, window=100,
                          submit_timeout=5.0, reconnect_min=0.1, reconnect_max=0.5)
        carrier = SmppCarrier("flood", route, on_deliver)
        carrier.start()
        try:
            assert await carrier.wait_bound(10)
            failures: list[Exception] = []

            async def one(i: int) -> Any:
                request = SubmitRequest(message_id=f"m{i:05d}", sender="Postwire",
                                        to="+31600000000", text=f"code {i:06d}",
                                        callback_url="")
                try:
                    return await carrier.submit(request)
                except TransientCarrierError as exc:
                    failures.append(exc)
                    return None

            results = await asyncio.gather(*(one(i) for i in range(MESSAGES)))
            assert failures == [], f"{len(failures)} submits failed, first: {failures[0]}"
            assert all(r is not None for r in results)
            await smsc.wait_for(lambda s: len(s.acked_receipts) == MESSAGES, timeout=30,
                                what="every receipt acknowledged")
            deadline = asyncio.get_running_loop().time() + 30
            while len(handled) < MESSAGES and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            assert len(handled) == MESSAGES
            assert smsc.submit_count == MESSAGES  # nothing submitted twice
            assert carrier.binds[0].connects == 1  # the bind never had to be restarted
            # the operator sees the receipts taken and not yet handled, and the count comes back down
            assert max(in_hand) > 1
            assert receipts_in_hand() == 0
        finally:
            await carrier.aclose()
