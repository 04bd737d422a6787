"""Helpers of the client tests: a tenant with keys, a scripted HTTP server, a transport that loses answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform import tenancy
from postwire_platform.mongo import Document
from postwire_testing.servers import ThreadedServer

SENDER = "Postwire"


@dataclass
class Tenant:
    id: str
    key: str
    """Every tenant scope (a live key)."""
    sms_read_key: str
    """``read:sms`` only."""
    admin_key: str
    """Every scope, ``admin`` included (the operator's)."""
    test_key: str
    """Every tenant scope, a test key (sandbox; webhook endpoints on http)."""
    base_url: str


NO_LIMIT = (1_000_000, 100_000)
"""A rate limit these tests never reach (the rate limit has its own test)."""


async def make_tenant(db: AsyncDatabase[Document], base_url: str) -> Tenant:
    """A tenant with an all-scopes key, a read-only key, an admin key and the approved sender id
    ``Postwire``."""
    doc = await tenancy.create_tenant(db, "SDK test")
    tid = doc["_id"]
    key, _ = await tenancy.create_key(db, tid, list(tenancy.TENANT_SCOPES), mode="live",
                                      rate_limit=NO_LIMIT)
    read_only, _ = await tenancy.create_key(db, tid, ["read:sms"], mode="live", rate_limit=NO_LIMIT)
    admin, _ = await tenancy.create_key(db, tid, list(tenancy.SCOPES), mode="live", rate_limit=NO_LIMIT)
    test, _ = await tenancy.create_key(db, tid, list(tenancy.TENANT_SCOPES), mode="test",
                                       rate_limit=NO_LIMIT)
    await tenancy.approve_sender_id(db, tid, SENDER)
    return Tenant(tid, key, read_only, admin, test, base_url)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer(ThreadedServer):
    """A local HTTP server that answers requests from a script (the last answer repeats) and records
    every request it got."""

    def __init__(self, *answers: Answer) -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self._answer(scope, receive, send)  # uvicorn takes a bound method for ASGI 2

        super().__init__(app, lifespan="off")
        self.answers = list(answers)
        self.requests: list[Recorded] = []

    async def _answer(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append(Recorded(scope["method"], scope["path"],
                                      {k.decode().lower(): v.decode() for k, v in scope["headers"]},
                                      body))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        content = b"" if answer.body is None else json.dumps(answer.body).encode()
        headers = {"content-type": "application/json", **answer.headers}
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": content})


class LosesFirstAnswer(httpx.BaseTransport):
    """Delivers the first request to the server, then drops its answer as a broken connection would."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[httpx.Request] = []
        self.answers: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        response = self.inner.handle_request(request)
        response.read()
        if len(self.seen) == 1:
            response.close()
            raise httpx.ReadError("connection reset while reading the answer", request=request)
        self.answers.append(response)
        return response

    def close(self) -> None:
        self.inner.close()


def sms_item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"to": "+14155552671", "body": "Hello", "senderId": SENDER}
    item.update(overrides)
    return item
