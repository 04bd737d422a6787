"""A customer watches a message on the live stream and finds it in the stats, through the API only."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from postwire_testing.system import DevSystem

from .helpers import send_body

pytestmark = pytest.mark.e2e


async def sms_stats(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    r = await client.get("/v1/stats", headers={"Authorization": f"Bearer {key}"}, params={
        "channel": "sms", "dateFrom": (today - timedelta(days=1)).isoformat(),
        "dateTo": (today + timedelta(days=1)).isoformat()})
    assert r.status_code == 200, r.text
    totals: dict[str, Any] = r.json()["data"]["totals"]
    return totals


async def test_the_live_stream_and_the_stats_follow_a_message(system: DevSystem) -> None:
    info = system.info
    key = info["api_key"]
    stream_url = info["gateway"].replace("http://", "ws://") + f"/v1/stream?token={key}"
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=10) as client:
        before = await sms_stats(client, key)
        async with connect(stream_url) as ws:
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready" and "sms" in ready["channels"]
            r = await client.post("/v1/sms/send", headers={"Authorization": f"Bearer {key}"},
                                  json={**send_body(info["sender_id"]), "metadata": {"order": "S-1"}})
            assert r.status_code == 201, r.text
            message_id = r.json()["data"]["id"]
            frames: list[dict[str, Any]] = []
            async with asyncio.timeout(30):
                while not any(f["type"] == "sms_delivered" for f in frames):
                    frame = json.loads(await ws.recv())
                    if frame.get("messageId") == message_id:
                        frames.append(frame)
        types = [f["type"] for f in frames]
        assert "sms_sent" in types and types[-1] == "sms_delivered"
        delivered = frames[-1]
        assert (delivered["status"], delivered["recipient"], delivered["metadata"]) == (
            "DELIVERED", "+447911123456", {"order": "S-1"})

        # reporting counted it as the events arrived: accepted, sent and delivered, with latencies
        deadline = time.monotonic() + 30
        while True:
            after = await sms_stats(client, key)
            if after["counts"]["delivered"] > before["counts"]["delivered"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    for counter in ("accepted", "sent", "delivered"):
        assert after["counts"][counter] >= before["counts"][counter] + 1, counter
    latency = after["latency"]["acceptToDelivered"]
    assert latency["samples"] >= 1 and latency["p50"] is not None and latency["p50"] >= 0
