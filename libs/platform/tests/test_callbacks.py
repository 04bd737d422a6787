"""``call_back``: a sandbox's callback is retried through 5xx and refused connections, not through 4xx."""

from __future__ import annotations

import httpx

from postwire_platform.callbacks import call_back
from postwire_testing.receiver import WebhookReceiver


async def test_a_callback_answered_503_is_tried_again_until_taken() -> None:
    with WebhookReceiver() as receiver:
        receiver.respond(503, times=3)
        async with httpx.AsyncClient() as client:
            taken = await call_back(lambda: client.post(receiver.url, content=b"{}"),
                                    what="receipt", message_id="m1", first_pause=0.01)
        assert taken and len(receiver.requests) == 4


async def test_a_4xx_is_an_answer_and_a_dead_endpoint_is_given_up_on() -> None:
    with WebhookReceiver() as receiver:
        receiver.respond(400)
        async with httpx.AsyncClient() as client:
            assert await call_back(lambda: client.post(receiver.url, content=b"{}"),
                                   what="receipt", message_id="m2", first_pause=0.01)
        assert len(receiver.requests) == 1
        url = receiver.url
    async with httpx.AsyncClient() as client:  # nothing listens there any more
        assert not await call_back(lambda: client.post(url, content=b"{}"), what="receipt",
                                   message_id="m3", attempts=3, first_pause=0.01)
