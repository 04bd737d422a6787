"""One example payload per message type, as it travels on the wire. Tests decode each."""

from __future__ import annotations

EXAMPLES: dict[str, bytes] = {
    "send.sms.v1": b"""{"kind":"send.sms.v1","message_id":"01JD0000000000000000000000",
"tenant_id":"ten_demo","live":false,"to":"+447911123456","body":"Your code is 123456",
"sender_id":"Postwire","flow":"OTP","metadata":{"order":"42"},"external_id":"ord-42",
"accepted_at":"2026-11-21T12:00:00Z","expires_at":"2026-11-21T12:05:00Z","attempt":0}""",
    "send.email.v1": b"""{"kind":"send.email.v1","message_id":"01JD0000000000000000000001",
"tenant_id":"ten_demo","live":true,"from_address":"Receipts <receipts@shop.example>",
"to":["ada@example.com"],"subject":"Your receipt","html":"<p>Thanks</p>","text":"Thanks",
"accepted_at":"2026-11-21T12:00:00Z"}""",
    "send.whatsapp.v1": b"""{"kind":"send.whatsapp.v1","message_id":"01JD0000000000000000000002",
"tenant_id":"ten_demo","live":true,"to":"15551234567","template":{"name":"order_update",
"language":"en_US","body_parameters":["#12345"]},"accepted_at":"2026-11-21T12:00:00Z"}""",
    "event.status.v1": b"""{"kind":"event.status.v1","event_id":"dlr:abc123:DELIVRD",
"channel":"sms","status":"DELIVERED","occurred_at":"2026-11-21T12:00:02Z","source":"carrier-dlr",
"provider_message_id":"abc123","provider_status":"DELIVRD",
"raw":"id:abc123 sub:001 dlvrd:001 submit date:2611211200 done date:2611211200 stat:DELIVRD err:000"}""",
    "event.inbound.v1": b"""{"kind":"event.inbound.v1","event_id":"mo:wamid.HBgL","channel":"whatsapp",
"sender":"16505551234","recipient":"106540352242922","body":"STOP",
"received_at":"2026-11-21T12:00:00Z","provider_message_id":"wamid.HBgL"}""",
    "notify.status.v1": b"""{"kind":"notify.status.v1","event_id":"evt_1","event_type":"sms_delivered",
"tenant_id":"ten_demo","message_id":"01JD0000000000000000000000","channel":"sms",
"status":"DELIVERED","event_status":"DELIVERED","occurred_at":"2026-11-21T12:00:02Z",
"recipient":"+447911123456","metadata":{"order":"42"}}""",
}
