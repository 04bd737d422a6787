"""Email end to end on the live path: gateway → email-dispatcher → the relay (a local SMTP sink) →
SENT in the timeline → the ``email_sent`` customer webhook, at a fixed rate.

With a relay the relay's acceptance is the last thing Postwire sees (DELIVERED would need the MTA's
feedback), so "at the carrier" is "accepted by the relay" here.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx

from postwire_testing.smtp_sink import SmtpSink

from .sms import Bench, _ts, phase_cpu, summary
from .stats import latency_summary

DOMAIN = "bench.example"
_MESSAGE_ID = re.compile(rb"^X-Postwire-Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def relay_env(sink: SmtpSink) -> dict[str, str]:
    """email-dispatcher's relay: the sink, plain SMTP on loopback."""
    return {"EMAIL_RELAY_HOST": "127.0.0.1", "EMAIL_RELAY_PORT": str(sink.port),
            "EMAIL_RELAY_TLS": "none"}


async def verified_domain(bench: Bench, gateway: str, key: str) -> str:
    """Add the sending domain through the API, then mark it verified (setup shortcut); its sender."""
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        r = await client.post("/v1/domains", headers={"Authorization": f"Bearer {key}"},
                              json={"domain": DOMAIN})
        r.raise_for_status()
        await bench.set_domain_verified(str(r.json()["data"]["id"]))
    return f"bench@{DOMAIN}"


def sink_times(sink: SmtpSink) -> dict[str, float]:
    """Our message id → when the relay accepted it."""
    out: dict[str, float] = {}
    for mail in sink.messages:
        found = _MESSAGE_ID.search(mail.data[:8192])
        if found:
            out.setdefault(found.group(1).decode(), mail.received_at.timestamp())
    return out


async def drain(bench: Bench, sink: SmtpSink, ids: set[str], timeout: float) -> dict[str, Any]:
    start = time.perf_counter()
    relayed = hooked = 0
    while time.perf_counter() - start < timeout:
        relayed = len(ids & sink_times(sink).keys())
        hooked = bench.hooks.count("email_sent", ids)
        if relayed >= len(ids) and hooked >= len(ids):
            break
        await asyncio.sleep(0.5)
    return {"target": len(ids), "relayed": relayed, "webhooks_sent": hooked,
            "complete": relayed >= len(ids) and hooked >= len(ids),
            "waited_s": round(time.perf_counter() - start, 2)}


async def fixed_rate(bench: Bench, sink: SmtpSink, key: str, sender: str, rate: float,
                     seconds: float, drain_timeout: float) -> dict[str, Any]:
    count = int(rate * seconds)
    print(f"  email e2e: {rate:.0f} msg/s for {seconds:.0f} s ({count} messages)", flush=True)

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        result = await bench.load("paced", seconds + 30, count=count, rate=rate, connections=50,
                                  channel="email", key=key, sender=sender)
        ids = {r[0] for r in result["rows"] if r[0]}
        return result, await drain(bench, sink, ids, drain_timeout)

    (result, drained), cpu = await phase_cpu(bench, go(), "email")
    rows = result["rows"]
    ok = [r for r in rows if r[0]]
    relayed = sink_times(sink)
    stamps = await bench.timelines([r[0] for r in ok])
    bench.hooks.update()
    to_relay, to_sent, relay_hook = [], [], []
    for mid, _sched, _start, _end, _status, accepted_iso in ok:
        accepted = _ts(accepted_iso)
        at = relayed.get(mid)
        sent = stamps.get(mid, {}).get("SENT")
        hook = bench.hooks.first.get(("email_sent", mid))
        if accepted is not None and at is not None:
            to_relay.append(at - accepted)
        if accepted is not None and sent is not None:
            to_sent.append(sent - accepted)
        if at is not None and hook is not None:
            relay_hook.append(hook - at)
    return {"rate": rate, "seconds": seconds, **summary(rows),
            "http_accept": latency_summary([r[3] - r[1] for r in ok]),
            "accept_to_relay": latency_summary(to_relay),
            "accept_to_sent_timeline": latency_summary(to_sent),
            "relay_to_webhook": latency_summary(relay_hook),
            "drain": drained, "client_cpu_s": result["process_cpu_s"], "service_cpu_s": cpu}
