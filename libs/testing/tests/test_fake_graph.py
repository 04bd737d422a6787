"""The fake Graph API: Meta-shaped answers and errors, recorded requests, signed status notifications."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
from typing import Any

import httpx
from litestar import Litestar, Request, post

from postwire_testing.fake_graph import FakeGraph
from postwire_testing.servers import ThreadedServer

TEXT = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567",
        "type": "text", "text": {"preview_url": False, "body": "Hi"},
        "biz_opaque_callback_data": "01JD0000000000000000000002"}


def hook(got: list[tuple[bytes, str]]) -> Litestar:
    @post("/v1/webhooks/whatsapp", status_code=200)
    async def receive(request: Request[Any, Any, Any]) -> dict[str, bool]:
        got.append((await request.body(), request.headers.get("x-hub-signature-256", "")))
        return {"success": True}

    return Litestar(route_handlers=[receive])


async def test_send_is_answered_recorded_and_notified_with_signed_statuses() -> None:
    got: list[tuple[bytes, str]] = []
    async with ThreadedServer(hook(got)) as receiver, \
            FakeGraph(webhook_url=f"{receiver.url}/v1/webhooks/whatsapp", app_secret="s3",
                      status_delay=0.01) as graph, httpx.AsyncClient(base_url=graph.url) as http:
        r = await http.post("/v23.0/106540352242922/messages", json=TEXT,
                            headers={"Authorization": "Bearer EAAG-token"})
        assert r.status_code == 200
        answer = r.json()
        wamid = answer["messages"][0]["id"]
        assert wamid.startswith("wamid.")
        assert answer["contacts"] == [{"input": "15551234567", "wa_id": "15551234567"}]
        await graph.wait_for(lambda: len(graph.notifications) == 3)
        await graph.wait_for(lambda: len(got) == 3)
    [req] = graph.requests
    assert (req.version, req.phone_number_id, req.token, req.body) == (
        "v23.0", "106540352242922", "EAAG-token", TEXT)
    assert req.path == "/v23.0/106540352242922/messages"
    assert sorted(graph.statuses_sent(wamid)) == ["delivered", "read", "sent"]
    for raw, sig in got:
        assert sig == "sha256=" + hmac.new(b"s3", raw, hashlib.sha256).hexdigest()
    statuses = [n.statuses[0] for n in graph.notifications]
    assert {s["biz_opaque_callback_data"] for s in statuses} == {"01JD0000000000000000000002"}
    assert all(n.status_code == 200 for n in graph.notifications)
    sent = next(s for s in statuses if s["status"] == "sent")
    assert sent["recipient_id"] == "15551234567" and sent["pricing"]["billable"] is True
    assert graph.notifications[0].payload["entry"][0]["changes"][0]["value"]["metadata"][
        "phone_number_id"] == "106540352242922"


async def test_errors_are_meta_shaped_and_configurable_per_recipient() -> None:
    async with FakeGraph() as graph, httpx.AsyncClient(base_url=graph.url) as http:
        graph.fail_recipient("+15550001111", 131047)
        graph.fail_recipient("15550002222", 130429, times=1)
        graph.tokens["999"] = "right"
        auth = {"Authorization": "Bearer t"}

        outside = await http.post("/v23.0/1/messages", json={**TEXT, "to": "15550001111"}, headers=auth)
        assert outside.status_code == 400
        error = outside.json()["error"]
        assert error["code"] == 131047 and error["type"] == "OAuthException"
        assert "24 hours" in error["error_data"]["details"] and error["fbtrace_id"]
        again = await http.post("/v23.0/1/messages", json={**TEXT, "to": "15550001111"}, headers=auth)
        assert again.json()["error"]["code"] == 131047

        throttled = await http.post("/v23.0/1/messages", json={**TEXT, "to": "15550002222"}, headers=auth)
        assert throttled.json()["error"]["code"] == 130429
        ok = await http.post("/v23.0/1/messages", json={**TEXT, "to": "15550002222"}, headers=auth)
        assert ok.status_code == 200

        wrong = await http.post("/v23.0/999/messages", json=TEXT, headers=auth)
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, 190)
        missing = await http.post("/v23.0/1/messages", json=TEXT)
        assert missing.json()["error"]["code"] == 190

        graph.fail_next(1, status=502)
        assert (await http.post("/v23.0/1/messages", json=TEXT, headers=auth)).status_code == 502
        bad = await http.post("/v23.0/1/messages", json={"to": "1"}, headers=auth)
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, 100)
    assert len(graph.requests) == 8 and len(graph.accepted) == 1
    assert [r.to for r in graph.requests_to("15550002222")] == ["15550002222"] * 2


async def test_asynchronous_failure_and_custom_status_order() -> None:
    got: list[tuple[bytes, str]] = []
    async with ThreadedServer(hook(got)) as receiver, \
            FakeGraph(webhook_url=f"{receiver.url}/v1/webhooks/whatsapp",
                      status_delay=0.02) as graph, httpx.AsyncClient(base_url=graph.url) as http:
        graph.fail_recipient("15550003333", 131026, asynchronous=True)
        graph.statuses_for["15550004444"] = ["read", "delivered"]
        auth = {"Authorization": "Bearer t"}
        r1 = await http.post("/v23.0/1/messages", json={**TEXT, "to": "15550003333"}, headers=auth)
        r2 = await http.post("/v23.0/1/messages", json={**TEXT, "to": "15550004444"}, headers=auth)
        w1, w2 = r1.json()["messages"][0]["id"], r2.json()["messages"][0]["id"]
        await graph.wait_for(lambda: len(graph.notifications) == 4)
        inbound = await graph.post_inbound("16505551234", "STOP")
        assert inbound.status_code == 200
        await graph.wait_for(lambda: len(got) == 5)
    assert sorted(graph.statuses_sent(w1)) == ["failed", "sent"]
    failed = next(s for n in graph.notifications for s in n.statuses if s["status"] == "failed")
    assert failed["errors"][0]["code"] == 131026
    assert sorted(graph.statuses_sent(w2)) == ["delivered", "read"]
    body, sig = got[-1]
    message = json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["text"] == {"body": "STOP"} and sig.startswith("sha256=")


def test_it_runs_in_a_process_of_its_own_for_benchmarks() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "postwire_testing.fake_graph", "--statuses", ""],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url) as http:
            r = http.post("/v23.0/1/messages", json=TEXT, headers={"Authorization": "Bearer t"})
        assert r.status_code == 200 and r.json()["messages"][0]["id"].startswith("wamid.")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
