"""Rate limits per key: counted, announced in headers, refused with 429, shared by gateway replicas."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_gateway.ratelimit import Limits, RateLimiter
from postwire_platform import tenancy
from postwire_platform.errors import ApiError
from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import generate_key
from postwire_testing.servers import free_port, wait_for_port

from .gateway_support import Tenant

Client = AsyncTestClient[Any]


async def limit_key(db: AsyncDatabase[Document], tenant: Tenant, per_minute: int,
                    per_second: int) -> dict[str, str]:
    key, record = await tenancy.create_key(db, tenant.id, ["read:sms", "send:sms"], mode="live")
    await db["api_keys"].update_one({"_id": record["_id"]}, {"$set": {
        "rate_limit": {"per_minute": per_minute, "per_second": per_second}}})
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_gets_its_limit_with_headers_then_429_and_other_keys_are_unaffected(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    limited = await limit_key(db, tenant, per_minute=5, per_second=100)
    answers = [await client.get("/v1/sms", headers=limited) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.headers["x-ratelimit-limit"] for a in answers] == ["5"] * 5
    assert [int(a.headers["x-ratelimit-remaining"]) for a in answers] == [4, 3, 2, 1, 0]
    reset = int(answers[0].headers["x-ratelimit-reset"])
    assert reset % 60 == 0

    refused = await client.get("/v1/sms", headers=limited)
    assert (refused.status_code, refused.json()["error"], refused.json()["code"]) == (
        429, "rate_limited", 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    # an error response after authentication carries the headers too
    other = await client.get("/v1/sms", headers=tenant.auth(), params={"pageSize": "500"})
    assert other.status_code == 422 and other.headers["x-ratelimit-limit"] == "100"


async def test_a_suspended_tenant_gets_402(client: Client, tenant: Tenant,
                                           db: AsyncDatabase[Document]) -> None:
    await db["tenants"].update_one({"_id": tenant.id}, {"$set": {"status": "suspended"}})
    response = await client.get("/v1/sms", headers=tenant.auth())
    assert (response.status_code, response.json()["error"]) == (402, "tenant_suspended")


async def test_the_burst_window_and_leases_against_the_shared_store(
        db: AsyncDatabase[Document]) -> None:
    now = [1_000_000.2]
    runtime: Any = SimpleNamespace(db=db)
    replica_a = RateLimiter(runtime, per_minute=100, per_second=20, now=lambda: now[0])
    replica_b = RateLimiter(runtime, per_minute=100, per_second=20, now=lambda: now[0])
    limits = Limits(per_minute=100, per_second=3)
    granted = 0
    for limiter in (replica_a, replica_b, replica_a, replica_b, replica_a):
        try:
            await limiter.take("key_x", limits)
            granted += 1
        except ApiError as exc:
            assert exc.status == 429 and exc.headers["Retry-After"] == "1"
    assert granted == 3  # three per second across both replicas
    now[0] += 1.0  # the next second: a fresh burst
    await replica_b.take("key_x", limits)
    shared = await db["rate_limits"].find_one({"_id": "key_x:1:1000001"})
    assert shared is not None and shared["count"] == 1


@pytest.fixture
def two_gateways(amqp_url: str, mongodb_url: str, db_name: str) -> Iterator[list[str]]:
    """Two gateway processes on the same RabbitMQ vhost and database."""
    ports = [free_port(), free_port()]
    bin_dir = Path(sys.executable).parent
    processes = []
    for port in ports:
        env = {**os.environ, "AMQP_URL": amqp_url, "MONGODB_URL": mongodb_url,
               "MONGODB_DATABASE": db_name, "HTTP_PORT": str(port), "LOG_JSON": "false",
               "LOG_LEVEL": "WARNING", "SECRET_KEYS": json.dumps([generate_key()])}
        processes.append(subprocess.Popen([str(bin_dir / "postwire-gateway")], env=env))
    try:
        for port in ports:
            wait_for_port("127.0.0.1", port, timeout=60)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_two_gateway_processes_together_never_exceed_a_keys_limit(
        two_gateways: list[str], db: AsyncDatabase[Document]) -> None:
    tenant = await tenancy.create_tenant(db, "Shared")
    holder = Tenant(tenant["_id"], "", "", "", "")
    headers = await limit_key(db, holder, per_minute=12, per_second=1000)
    granted: dict[str, int] = {}  # per minute window (X-RateLimit-Reset)
    refused = 0
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(30):
            response = await http.get(f"{two_gateways[i % 2]}/v1/sms", headers=headers)
            assert response.status_code in (200, 429), response.text
            window = response.headers["x-ratelimit-reset"]
            if response.status_code == 200:
                granted[window] = granted.get(window, 0) + 1
            else:
                refused += 1
    # both processes served, and together they never granted more than 12 in one minute window
    assert all(count <= 12 for count in granted.values()), granted
    assert sum(granted.values()) + refused == 30 and refused >= 6
    assert max(granted.values()) == 12  # the whole limit was usable across the two
