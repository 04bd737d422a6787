"""``postwire send`` and ``postwire messages`` against the real gateway, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from postwire_cli.__main__ import main
from postwire_client import Postwire
from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged
from postwire_contracts.status import Channel, Status
from postwire_platform.broker import Publisher, make_broker

from .conftest import SENDER, Tenant

pytestmark = pytest.mark.usefixtures("no_postwire_env")


def postwire(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``postwire argv…`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def auth(tenant: Tenant) -> list[str]:
    return ["--api-key", tenant.key, "--base-url", tenant.base_url]


def test_send_sms_then_list_and_show_it(tenant: Tenant, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = postwire(capsys, "send", "sms", *auth(tenant), "--to", "+1 415 555 2671",
                              "--body", "Your code is 123456", "--sender-id", SENDER, "--flow", "OTP",
                              "--metadata", "order=42", "--external-id", "ord-42")
    assert code == 0, err
    sent = json.loads(out)
    assert (sent["status"], sent["to"], sent["senderId"], sent["flow"], sent["metadata"]) == (
        "QUEUED", "+14155552671", SENDER, "OTP", {"order": "42"})

    code, out, err = postwire(capsys, "messages", "list", *auth(tenant), "--json", "--flow", "OTP")
    assert code == 0, err
    listed = json.loads(out)
    assert [m["id"] for m in listed["data"]] == [sent["id"]]
    assert listed["pagination"]["total"] == 1

    code, out, _ = postwire(capsys, "messages", "list", *auth(tenant))
    assert code == 0 and sent["id"] in out and "QUEUED" in out

    code, out, err = postwire(capsys, "messages", "show", *auth(tenant), sent["id"])
    assert code == 0, err
    shown = json.loads(out)
    assert shown["message"]["body"] == "Your code is 123456"
    assert [(e["status"], e["source"]) for e in shown["timeline"]] == [("QUEUED", "gateway")]

    code, _, err = postwire(capsys, "messages", "show", *auth(tenant), "no_such_message")
    assert code == 1 and "404 not_found" in err


def test_send_email_and_whatsapp(tenant: Tenant, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = postwire(capsys, "send", "email", *auth(tenant), "--from", "noreply@acme.example",
                              "--to", "ann@example.com", "--to", "bob@example.com",
                              "--subject", "Receipt", "--text", "Thanks")
    assert code == 0, err
    email = json.loads(out)
    recipients = ([m["to"] for m in email["messages"]] if email.get("messages")  # one per recipient
                  else email["to"])
    assert (email["channel"], recipients, email["subject"]) == (
        "email", ["ann@example.com", "bob@example.com"], "Receipt")

    code, out, err = postwire(capsys, "send", "whatsapp", *auth(tenant), "--to", "+14155552671",
                              "--template", "order_update", "--param", "#12345")
    assert code == 0, err
    wa = json.loads(out)
    assert wa["template"] == {"name": "order_update", "language": "en_US", "bodyParameters": ["#12345"]}

    code, out, _ = postwire(capsys, "messages", "show", *auth(tenant), wa["id"])
    assert code == 0 and json.loads(out)["message"]["channel"] == "whatsapp"


def test_the_key_and_url_from_the_environment_or_dev_json(
        tenant: Tenant, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("POSTWIRE_API_KEY", tenant.key)
    monkeypatch.setenv("POSTWIRE_BASE_URL", tenant.base_url)
    code, out, err = postwire(capsys, "send", "sms", "--to", "+14155552671", "--body", "from env",
                              "--sender-id", SENDER)
    assert code == 0, err
    assert json.loads(out)["status"] == "QUEUED"

    monkeypatch.delenv("POSTWIRE_API_KEY")
    monkeypatch.delenv("POSTWIRE_BASE_URL")
    code, _, err = postwire(capsys, "messages", "list")
    assert code == 2 and "no API key" in err

    state = tmp_path / ".postwire"
    state.mkdir()
    (state / "dev.json").write_text(json.dumps({"gateway": tenant.base_url, "api_key": tenant.key,
                                                "sender_id": SENDER}))
    monkeypatch.chdir(tmp_path)
    code, out, err = postwire(capsys, "send", "sms", "--to", "+14155552671", "--body", "from dev.json")
    assert code == 0, err
    assert json.loads(out)["senderId"] == SENDER  # the demo sender id is the default too

    code, _, err = postwire(capsys, "messages", "list", "--api-key", "pw_test_wrong")
    assert code == 1 and "401 unauthorized" in err


def test_csv_bulk_reports_rejected_rows_and_fails(tenant: Tenant, capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    csv_file = tmp_path / "recipients.csv"
    csv_file.write_text(
        "to,body,senderId,externalId,metadata.campaign,nickname\n"
        "+14155550101,Hello one,Postwire,row-1,spring,Ann\n"
        "not a number,Hello two,Postwire,row-2,spring,Bob\n"
        "+14155550103,Hello three,,row-3,,Cy\n"
        "\n"
        "+14155550105,Hello five,Unapproved,row-5,spring,Di\n"
        "+14155550106,Hello six,Postwire,row-6,summer,Ed\n")
    code, out, err = postwire(capsys, "send", "sms", *auth(tenant), "--csv", str(csv_file),
                              "--sender-id", SENDER, "--batch-size", "2")
    assert code == 1, err
    assert "accepted 3, rejected 2 of 5 rows" in out
    assert "line 3: to=not a number:" in out and "(field to)" in out
    assert "line 6: to=+14155550105:" in out and "(field senderId)" in out
    assert "ignoring column(s) nickname" in err

    with Postwire(tenant.key, base_url=tenant.base_url) as client:
        stored = {m.external_id: m for m in client.sms.list_all()}
    assert set(stored) == {"row-1", "row-3", "row-6"}
    assert stored["row-1"].metadata == {"campaign": "spring"}
    assert stored["row-3"].sender_id == SENDER and stored["row-3"].metadata == {}


def test_csv_bulk_all_accepted_and_safe_to_rerun_with_a_key(
        tenant: Tenant, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv_file = tmp_path / "ok.csv"
    csv_file.write_text("to,body,flow\n" + "".join(f"+1415555{i:04d},Code {i},OTP\n" for i in range(25)))
    args = ["send", "sms", *auth(tenant), "--csv", str(csv_file), "--sender-id", SENDER,
            "--batch-size", "10", "--idempotency-key", "campaign-7", "--json"]
    code, out, err = postwire(capsys, *args)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["rows"], summary["accepted"], summary["rejected"], summary["rejects"]) == (
        25, 25, 0, [])

    code, out, _ = postwire(capsys, *args)  # an interrupted run, started again
    assert code == 0 and json.loads(out)["accepted"] == 25
    with Postwire(tenant.key, base_url=tenant.base_url) as client:
        assert client.sms.list(flow="OTP").pagination.total == 25  # nothing sent twice

    code, _, err = postwire(capsys, "send", "sms", *auth(tenant), "--csv", str(tmp_path / "none.csv"))
    assert code == 2 and "cannot read" in err
    (tmp_path / "bad.csv").write_text("phone,text\n+14155550000,hi\n")
    code, _, err = postwire(capsys, "send", "sms", *auth(tenant), "--csv", str(tmp_path / "bad.csv"))
    assert code == 2 and "missing column(s) body, to" in err


def test_the_installed_command(tenant: Tenant) -> None:
    exe = Path(sys.executable).with_name("postwire")
    env = {**os.environ, "POSTWIRE_API_KEY": tenant.key, "POSTWIRE_BASE_URL": tenant.base_url}
    result = subprocess.run([str(exe), "send", "sms", "--to", "+14155552671", "--body", "hi",
                             "--sender-id", "Nobody"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "422" in result.stderr and "senderId" in result.stderr


async def test_messages_tail_prints_each_event_of_the_stream(capsys: pytest.CaptureFixture[str]) -> None:
    """Against a local WebSocket server speaking the stream's protocol (a JSON object per event)."""
    frames = [{"type": "sms_sent", "messageId": "msg1", "channel": "sms", "status": "SENT",
               "recipient": "+14155552671", "occurredAt": "2026-11-21T12:00:00Z"},
              {"type": "email_sent", "messageId": "msg2", "channel": "email", "status": "SENT",
               "recipient": "ann@example.com", "occurredAt": "2026-11-21T12:00:00Z"},
              {"type": "sms_failed", "messageId": "msg1", "channel": "sms", "status": "FAILED",
               "recipient": "+14155552671", "occurredAt": "2026-11-21T12:00:01Z",
               "errorCode": "UNDELIV", "errorReason": "handset off"}]
    paths: list[str] = []

    def check(connection: ServerConnection, request: Request) -> None:
        paths.append(request.path)
        assert request.headers["Authorization"] == "Bearer pw_test_tail"

    async def handler(connection: ServerConnection) -> None:
        for frame in frames:
            await connection.send(json.dumps(frame))
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0, process_request=check) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        code, out, _ = await asyncio.to_thread(
            postwire, capsys, "messages", "tail", "--api-key", "pw_test_tail", "--base-url",
            f"http://127.0.0.1:{port}", "--channel", "sms", "--count", "2")
    assert code == 0
    assert out.splitlines() == [
        "2026-11-21T12:00:00+00:00 sms msg1 SENT +14155552671",
        "2026-11-21T12:00:01+00:00 sms msg1 FAILED +14155552671 UNDELIV: handset off"]
    assert paths == ["/v1/stream"]


async def test_messages_tail_on_the_gateways_live_stream(
        tenant: Tenant, served: set[str], amqp_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``postwire messages tail`` against the gateway, fed as reporting feeds it (a StatusChanged)."""
    if "/v1/stream" not in served:
        pytest.skip("/v1/stream is not served by this gateway yet")
    broker = make_broker(amqp_url)
    await broker.connect()
    try:
        tail = asyncio.create_task(asyncio.to_thread(
            postwire, capsys, "messages", "tail", *auth(tenant), "--count", "1", "--channel", "sms"))
        note = StatusChanged(
            event_id="evt_tail_1", event_type="sms_delivered", tenant_id=tenant.id, message_id="msg_tail",
            channel=Channel.SMS, status=Status.DELIVERED, event_status=Status.DELIVERED,
            occurred_at=datetime(2026, 11, 21, 12, tzinfo=UTC), recipient="+14155552671")
        async with asyncio.timeout(60):
            while not tail.done():  # until the socket is open and the event reached it
                await Publisher(broker).publish(note, topology.notify_key(Channel.SMS),
                                                message_id=note.event_id)
                await asyncio.wait({tail}, timeout=1.0)
        code, out, err = await tail
    finally:
        await broker.stop()
    assert code == 0, err
    assert out.splitlines()[0] == "2026-11-21T12:00:00+00:00 sms msg_tail DELIVERED +14155552671"
