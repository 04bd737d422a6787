"""When to retry a request and how long to wait first: one policy for the sync and the async client.

What is safe to repeat:

- 429 and 503: Postwire promises the request changed nothing, so any request may be sent again (a 503
  that names another error than ``service_unavailable`` and gives no ``Retry-After``, such as
  ``whatsapp_disabled``, is a switch, not an outage, and is raised at once).
- 409 ``idempotency_request_in_progress``: a retry of a send reached the gateway while the first attempt
  (whose answer was lost) was still running; asking again soon gets the original answer.
- 502 and 504 (a proxy in front of the gateway), a read timeout or a broken connection: the request may
  have been carried out, so only a *replayable* request is repeated: an idempotent method (GET, PUT,
  DELETE, …) or one carrying an ``Idempotency-Key`` (every send and batch does).
- A connection that could not even be opened: the request never left, so any request is repeated.

The wait honours ``Retry-After`` when the answer has one (up to ``max_retry_after``; a longer wait is not
taken and the error is raised), else it is exponential with jitter: a random time between half and all of
``min(max_delay, initial_delay * 2**retry)``, so clients that failed together do not retry together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx

from .errors import parse_retry_after

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
ALWAYS_RETRY_STATUSES = frozenset({429, 503})
REPLAYABLE_RETRY_STATUSES = frozenset({502, 504})
IN_PROGRESS = "idempotency_request_in_progress"
UNAVAILABLE = "service_unavailable"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter, honouring ``Retry-After``."""

    max_retries: int = 3
    """Retries after the first attempt (so at most ``max_retries + 1`` requests)."""
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    """A ``Retry-After`` longer than this is not waited for: the error is raised instead."""
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, retry: int) -> float:
        """The jittered exponential wait before retry number ``retry`` (0 for the first retry)."""
        cap = min(self.max_delay, self.initial_delay * float(2 ** retry))
        jitter: float = self.rng.uniform(0.5, 1.0)
        return cap * jitter

    def after_response(self, retry: int, response: httpx.Response, *, replayable: bool) -> float | None:
        """Seconds to wait before retrying after ``response``, or None to stop (and raise)."""
        if retry >= self.max_retries or not self._retryable_status(response, replayable=replayable):
            return None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None:
            return self.backoff(retry)
        if retry_after > self.max_retry_after:
            return None
        return retry_after

    def after_error(self, retry: int, exc: httpx.TransportError, *, replayable: bool) -> float | None:
        """Seconds to wait before retrying after a transport failure, or None to stop (and raise)."""
        if retry >= self.max_retries:
            return None
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if never_sent or (replayable and isinstance(exc, httpx.NetworkError | httpx.TimeoutException
                                                    | httpx.RemoteProtocolError)):
            return self.backoff(retry)
        return None

    @staticmethod
    def _retryable_status(response: httpx.Response, *, replayable: bool) -> bool:
        status = response.status_code
        if status == 503 and "retry-after" not in response.headers:
            # a deliberate 503 of Postwire's (a channel switched off: ``whatsapp_disabled``) stays so;
            # an outage says ``service_unavailable`` (with Retry-After), a proxy's 503 has no JSON
            return _error_code(response) in (None, UNAVAILABLE)
        if status in ALWAYS_RETRY_STATUSES:
            return True
        if status in REPLAYABLE_RETRY_STATUSES:
            return replayable
        if status == 409 and replayable:
            return IN_PROGRESS.encode() in response.content
        return False


def _error_code(response: httpx.Response) -> str | None:
    """The ``error`` of a JSON error body, or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None
