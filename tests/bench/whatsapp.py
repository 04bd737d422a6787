"""WhatsApp end to end on the live path: gateway → whatsapp-dispatcher → the fake Graph API (real HTTP,
``postwire_testing.fake_graph``) → its signed status notifications → provider-ingest → reporting →
DELIVERED in the timeline → the ``whatsapp_delivered`` customer webhook, at a fixed rate.

Each message goes to its own recipient (Meta paces a recipient to about one message per 6 s); the
platform line is the fake's phone number id; the fake's ``delivered`` status follows the send after
``status_delay``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from postwire_testing.fake_graph import FakeGraph

from .sms import Bench, _ts, phase_cpu, summary
from .stats import latency_summary

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "bench-graph-token"
APP_SECRET = "bench-app-secret"


class TimedGraph(FakeGraph):
    """A ``FakeGraph`` that remembers when it posted each (wamid, status) notification."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(app_secret=APP_SECRET, **kwargs)
        self.status_at: dict[tuple[str, str], float] = {}

    async def _post_statuses(self, phone_number_id: str, statuses: list[dict[str, Any]]) -> None:
        now = time.time()
        for status in statuses:
            self.status_at.setdefault((str(status.get("id")), str(status.get("status"))), now)
        await super()._post_statuses(phone_number_id, statuses)

    def by_message(self) -> dict[str, tuple[str, float]]:
        """Our message id → (wamid, when the send reached the fake)."""
        return {a.callback_data: (a.wamid, a.received_at.timestamp())
                for a in list(self.accepted) if a.callback_data}


def env(graph: FakeGraph) -> dict[str, str]:
    return {"WHATSAPP_CLOUD_API_ENABLED": "true", "WHATSAPP_GRAPH_URL": graph.url,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID, "WHATSAPP_ACCESS_TOKEN": TOKEN,
            "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_RATE_PER_NUMBER": "1000",
            "WHATSAPP_BURST_PER_NUMBER": "1000"}


async def fixed_rate(bench: Bench, graph: TimedGraph, key: str, rate: float, seconds: float,
                     drain_timeout: float) -> dict[str, Any]:
    count = int(rate * seconds)
    print(f"  whatsapp e2e: {rate:.0f} msg/s for {seconds:.0f} s ({count} messages)", flush=True)

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        result = await bench.load("paced", seconds + 30, count=count, rate=rate, connections=50,
                                  channel="whatsapp", key=key)
        ids = {r[0] for r in result["rows"] if r[0]}
        start = time.perf_counter()
        reached = hooked = 0
        while time.perf_counter() - start < drain_timeout:
            reached = len(ids & graph.by_message().keys())
            hooked = bench.hooks.count("whatsapp_delivered", ids)
            if reached >= len(ids) and hooked >= len(ids):
                break
            await asyncio.sleep(0.5)
        return result, {"target": len(ids), "at_graph": reached, "webhooks_delivered": hooked,
                        "complete": reached >= len(ids) and hooked >= len(ids),
                        "waited_s": round(time.perf_counter() - start, 2)}

    (result, drained), cpu = await phase_cpu(bench, go(), "whatsapp")
    rows = result["rows"]
    ok = [r for r in rows if r[0]]
    sent = graph.by_message()
    stamps = await bench.timelines([r[0] for r in ok])
    bench.hooks.update()
    to_graph, to_delivered, status_hook = [], [], []
    for mid, _sched, _start, _end, _status, accepted_iso in ok:
        accepted = _ts(accepted_iso)
        wamid, at = sent.get(mid, (None, None))
        delivered = stamps.get(mid, {}).get("DELIVERED")
        hook = bench.hooks.first.get(("whatsapp_delivered", mid))
        notified = graph.status_at.get((wamid or "", "delivered"))
        if accepted is not None and at is not None:
            to_graph.append(at - accepted)
        if accepted is not None and delivered is not None:
            to_delivered.append(delivered - accepted)
        if notified is not None and hook is not None:
            status_hook.append(hook - notified)
    return {"rate": rate, "seconds": seconds, **summary(rows), "status_delay_s": graph.status_delay,
            "http_accept": latency_summary([r[3] - r[1] for r in ok]),
            "accept_to_graph": latency_summary(to_graph),
            "accept_to_delivered_timeline": latency_summary(to_delivered),
            "status_to_webhook": latency_summary(status_hook),
            "drain": drained, "client_cpu_s": result["process_cpu_s"], "service_cpu_s": cpu}
