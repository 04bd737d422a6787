"""Sending a :class:`Call` over httpx with the retry policy: the only code that exists twice (sync, async)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx

from ._core import Call
from ._version import __version__
from .errors import APIConnectionError, APITimeoutError, PostwireError, error_from_response
from .retries import RetryPolicy

log = logging.getLogger("postwire_client")

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 30.0


class Settings:
    """What both clients are configured with; arguments first, then ``POSTWIRE_*`` variables."""

    def __init__(self, api_key: str | None, base_url: str | None, retry: RetryPolicy | None,
                 max_retries: int | None, headers: Mapping[str, str] | None) -> None:
        key = api_key or os.environ.get("POSTWIRE_API_KEY")
        if not key:
            raise PostwireError("no API key: pass api_key=… or set POSTWIRE_API_KEY")
        self.api_key = key
        self.base_url = (base_url or os.environ.get("POSTWIRE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = RetryPolicy(max_retries=max_retries, initial_delay=policy.initial_delay,
                                 max_delay=policy.max_delay, max_retry_after=policy.max_retry_after,
                                 rng=policy.rng)
        self.retry = policy
        self.headers = {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "User-Agent": f"postwire-python/{__version__}",
            **(headers or {}),
        }

    def request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        headers = dict(self.headers)
        if call.content is not None:
            headers["Content-Type"] = "application/json"
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        return http.build_request(call.method, self.base_url + call.path, params=call.params,
                                  content=call.content, headers=headers)


def _finished(call: Call[T], response: httpx.Response) -> T:
    if response.is_success:
        return call.decode(response.content)
    raise error_from_response(response)


def _give_up(exc: httpx.TransportError, call: Call[Any]) -> APIConnectionError:
    kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    return kind(f"{call.method} {call.path}: {type(exc).__name__}: {exc}")


def _log_retry(call: Call[Any], what: str, delay: float, retry: int) -> None:
    log.info("%s %s: %s; retry %d in %.2fs", call.method, call.path, what, retry + 1, delay)


class SyncTransport:
    """Sends calls with an ``httpx.Client``, retrying per the policy."""

    def __init__(self, settings: Settings, http: httpx.Client) -> None:
        self.settings = settings
        self.http = http

    def request(self, call: Call[T]) -> T:
        policy = self.settings.retry
        retry = 0
        while True:
            try:
                response = self.http.send(self.settings.request(self.http, call))
            except httpx.TransportError as exc:
                delay = policy.after_error(retry, exc, replayable=call.replayable)
                if delay is None:
                    raise _give_up(exc, call) from exc
                _log_retry(call, type(exc).__name__, delay, retry)
            else:
                if response.is_success:
                    return _finished(call, response)
                delay = policy.after_response(retry, response, replayable=call.replayable)
                if delay is None:
                    return _finished(call, response)
                _log_retry(call, str(response.status_code), delay, retry)
            time.sleep(delay)
            retry += 1


class AsyncTransport:
    """Sends calls with an ``httpx.AsyncClient``, retrying per the policy."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    async def request(self, call: Call[T]) -> T:
        policy = self.settings.retry
        retry = 0
        while True:
            try:
                response = await self.http.send(self.settings.request(self.http, call))
            except httpx.TransportError as exc:
                delay = policy.after_error(retry, exc, replayable=call.replayable)
                if delay is None:
                    raise _give_up(exc, call) from exc
                _log_retry(call, type(exc).__name__, delay, retry)
            else:
                if response.is_success:
                    return _finished(call, response)
                delay = policy.after_response(retry, response, replayable=call.replayable)
                if delay is None:
                    return _finished(call, response)
                _log_retry(call, str(response.status_code), delay, retry)
            await asyncio.sleep(delay)
            retry += 1
