"""Calling back like a carrier does: a sandbox provider's receipts and notifications are retried.

A real carrier or Meta retries a callback that got no answer or a 5xx for a long while; the sandboxes
of the three dispatchers do the same for about a minute (0.5 s, doubling, at most 10 s apart), so a
provider-ingest still reconnecting to RabbitMQ (and answering 503) receives them later. A 4xx is an
answer: logged, not retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

log = logging.getLogger(__name__)

ATTEMPTS = 10
FIRST_PAUSE = 0.5
MAX_PAUSE = 10.0


async def call_back(call: Callable[[], Awaitable[httpx.Response]], *, what: str, message_id: str,
                    attempts: int = ATTEMPTS, first_pause: float = FIRST_PAUSE,
                    max_pause: float = MAX_PAUSE) -> bool:
    """Run ``call`` until it gets an answer below 500 (``call`` builds the request afresh each time,
    so a signature with a timestamp is fresh too); False once ``attempts`` were used up."""
    pause = first_pause
    for attempt in range(1, attempts + 1):
        try:
            response = await call()
            if response.status_code < 500:
                if response.status_code >= 400:
                    log.warning("sandbox %s refused", what, extra={
                        "message_id": message_id, "status_code": response.status_code})
                return True
            log.info("sandbox %s not taken yet", what, extra={
                "message_id": message_id, "attempt": attempt, "status_code": response.status_code})
        except httpx.HTTPError as exc:
            log.info("sandbox %s not delivered yet", what, extra={
                "message_id": message_id, "attempt": attempt, "error": repr(exc)})
        if attempt < attempts:
            await asyncio.sleep(pause)
            pause = min(pause * 2, max_pause)
    log.warning("sandbox %s dropped", what, extra={"message_id": message_id})
    return False
