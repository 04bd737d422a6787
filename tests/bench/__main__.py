"""``python -m tests.bench [--quick]``: raw limits, then the whole system under bounded load."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from postwire_testing.servers import rabbit_vhost
from postwire_testing.system import DevSystem

from . import load, raw, report
from .stats import children, cpu_seconds, machine_info, rss_kib, self_cpu_seconds

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
PROGRAMS = ("gateway", "provider-ingest", "email-dispatcher", "sms-dispatcher",
            "whatsapp-dispatcher", "webhook-fanout", "reporting", "mongodb")


@dataclass(frozen=True)
class Plan:
    rabbit_messages: int = 5000
    mongo_docs: int = 20000
    mongo_updates: int = 5000
    accept: tuple[tuple[int, int], ...] = ((1, 300), (10, 1000), (50, 2000))
    e2e_count: int = 500
    e2e_rate: float = 50.0
    drain_timeout: float = 600.0
    e2e_timeout: float = 120.0
    overall_timeout: float = 1200.0


QUICK = Plan(rabbit_messages=500, mongo_docs=2000, mongo_updates=500,
             accept=((1, 30), (10, 100), (50, 200)), e2e_count=50, drain_timeout=60.0,
             e2e_timeout=60.0, overall_timeout=400.0)


def snapshot(pids: dict[str, int]) -> dict[str, dict[str, Any]]:
    return {name: {"rss_kib": rss_kib(pid), "cpu_s": cpu_seconds(pid)} for name, pid in pids.items()}


def service_pids(dev: DevSystem) -> dict[str, int]:
    pids: dict[str, int] = {}
    for name in PROGRAMS:
        try:
            pids[name] = dev.pid(name)
        except ValueError:
            print(f"  no pid for {name}: not measured")
    return pids


async def run_system(plan: Plan, dev: DevSystem, result: dict[str, Any]) -> None:
    info = dev.info
    key, sender = info["api_key"], info["sender_id"]
    pids = service_pids(dev)
    forks = {name: children(pid) for name, pid in pids.items() if children(pid)}
    result["service_children"] = forks  # not measured if any: RSS/CPU are of the main pid only
    await asyncio.sleep(3.0)  # let start-up settle before the idle reading
    idle = snapshot(pids)
    client_cpu0 = self_cpu_seconds()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=30, limits=limits) as client:
        r = await client.post("/v1/sms/send", headers={"Authorization": f"Bearer {key}"},
                              json={"to": "+447911123456", "body": "warm-up", "senderId": sender})
        r.raise_for_status()
        await load.wait_delivered(client, key, 1, 30)
        sent = 1
        first_send = time.perf_counter()
        for in_flight, count in plan.accept:
            print(f"  accept: {count} sends, {in_flight} in flight")
            row, ids = await load.accept(client, key, sender, count, in_flight, offset=sent)
            result["accept"].append(row)
            sent += len(ids)
        print(f"  waiting for {sent} DELIVERED (at most {plan.drain_timeout:.0f} s)")
        drain = await load.wait_delivered(client, key, sent, plan.drain_timeout)
        seconds = time.perf_counter() - first_send
        drain["seconds_from_first_send"] = round(seconds, 2)
        drain["delivered_per_s"] = round((drain["delivered"] - 1) / seconds, 1)
        result["drain"] = drain
        print(f"  e2e: {plan.e2e_count} sends at {plan.e2e_rate} msg/s")
        before = await load.count_sms(client, key, "DELIVERED")
        ids, took, errors = await load.paced_send(client, key, sender, plan.e2e_count,
                                                  plan.e2e_rate, offset=sent)
        wait = await load.wait_delivered(client, key, before + len(ids), plan.e2e_timeout)
        sent += len(ids)
        timeline = await load.timeline_latencies(client, key, ids)
        result["e2e"] = {"sent": len(ids), "rate": plan.e2e_rate, "send_errors": errors,
                         "achieved_send_rate": round(len(ids) / took, 1), "wait": wait,
                         "timeline": timeline,
                         "sandbox_dlr_delay_s": os.environ.get("SANDBOX_DLR_DELAY", "0.2")}
    client_cpu1 = self_cpu_seconds()
    after = snapshot(pids)
    result["messages_through_system"] = sent
    result["load_client"] = {"cpu_load_s": round(client_cpu1 - client_cpu0, 2),
                             "cpu_total_s": round(client_cpu1, 2)}
    for name, pid in pids.items():
        c0, c1 = idle[name]["cpu_s"], after[name]["cpu_s"]
        result["processes"][name] = {
            "pid": pid, "rss_idle_kib": idle[name]["rss_kib"], "rss_after_kib": after[name]["rss_kib"],
            "cpu_load_s": None if c0 is None or c1 is None else round(c1 - c0, 2),
            "cpu_total_s": c1}


async def main(plan: Plan, mode: str) -> dict[str, Any]:
    base = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "mode": mode,
                              "plan": plan.__dict__, "machine": machine_info(REPO), "raw": {},
                              "accept": [], "processes": {}}
    with rabbit_vhost(base) as amqp_url:
        print(f"raw RabbitMQ: {plan.rabbit_messages} messages")
        result["raw"]["rabbitmq"] = await raw.rabbit_roundtrip(amqp_url, plan.rabbit_messages)
        print(f"raw SecantusDB: {plan.mongo_docs} docs, {plan.mongo_updates} updates")
        result["raw"]["secantusdb"] = await raw.secantus_standalone(plan.mongo_docs,
                                                                    plan.mongo_updates)
        with tempfile.TemporaryDirectory(prefix="postwire-bench-") as state:
            dev = DevSystem(Path(state), amqp_url=amqp_url, cwd=REPO)
            print("starting the system (postwire dev)")
            await asyncio.to_thread(dev.start)
            try:
                await run_system(plan, dev, result)
            finally:
                print("stopping the system")
                result["system_exit_code"] = await asyncio.to_thread(dev.stop)
    result["loadavg_end"] = os.getloadavg()
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~10x smaller counts: a smoke run")
    args = parser.parse_args()
    plan, mode = (QUICK, "quick") if args.quick else (Plan(), "full")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = asyncio.run(asyncio.wait_for(main(plan, mode), plan.overall_timeout))
    print()
    print(report.render(result))
    print(f"\nJSON: {report.write(result, RESULTS, stamp + ('-quick' if args.quick else ''))}")


if __name__ == "__main__":
    cli()
