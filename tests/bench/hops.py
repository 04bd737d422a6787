"""Where receipt → customer webhook goes, hop by hop, for the messages of a phase.

Read after the phase from what the system records anyway: each message's timeline (``recorded_at`` of
SENT and DELIVERED, stamped by reporting just before its write) and its ``webhook_attempts`` records
(``at``: when webhook-fanout started the attempt), joined by wall clock (one machine) with the SMSC
simulator's receipt time and the webhook receiver's arrival time. The hops show whether the time is
in reporting (receipt → DELIVERED recorded), in the notification and first-attempt path (recorded →
attempt), in the order rule (SENT's attempt → DELIVERED's attempt) or in the HTTP request.
"""

from __future__ import annotations

from typing import Any

from .sms import Bench
from .stats import latency_summary

HOPS = (
    ("receipt_to_delivered_recorded", "receipt", "DELIVERED"),
    ("delivered_recorded_to_attempt", "DELIVERED", "sms_delivered"),
    ("sent_recorded_to_attempt", "SENT", "sms_sent"),
    ("sent_attempt_to_delivered_attempt", "sms_sent", "sms_delivered"),
    ("delivered_attempt_to_received", "sms_delivered", "hook"),
)


async def breakdown(bench: Bench, ids: list[str]) -> dict[str, Any]:
    """Per hop, a latency summary (ms) over the messages of ``ids`` that have both its ends."""
    stamps = await bench.timelines(ids)  # status → recorded_at, per message
    async with bench.reading() as client:
        for first in range(0, len(ids), 500):
            # tenant and message only, on their index; the first attempts are picked here (a third
            # field in the filter costs SecantusDB a scan: 9 s instead of 0.6 s per 500 messages)
            async for rec in client["postwire"]["webhook_attempts"].find(
                    {"tenant_id": bench.tenant_id, "message_id": {"$in": ids[first:first + 500]}},
                    projection=["message_id", "event_type", "at", "attempt"]):
                if rec.get("attempt") != 1:
                    continue
                stamps.setdefault(rec["message_id"], {}).setdefault(rec["event_type"],
                                                                    rec["at"].timestamp())
    for mid, seen in stamps.items():
        if mid in bench.smsc.receipt_at:
            seen["receipt"] = bench.smsc.receipt_at[mid]
        if ("sms_delivered", mid) in bench.hooks.first:
            seen["hook"] = bench.hooks.first[("sms_delivered", mid)]
    return {name: latency_summary([s[b] - s[a] for s in stamps.values() if a in s and b in s])
            for name, a, b in HOPS}
