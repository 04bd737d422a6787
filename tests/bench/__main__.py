"""``python -m tests.bench [--quick]``: raw limits, then the whole system under bounded load.

One run on one machine: the raw limits of RabbitMQ and the MongoDB-wire server, then the system
started as ``make run`` starts it (``postwire dev``) with its SMS on the live path to a local SMPP
simulator and a customer webhook endpoint subscribed, driven over HTTP by a load client in its own
process. Every phase is bounded in count and time; traffic goes to 127.0.0.1 only; what it starts it
stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postwire_cli.supervisor_conf import SERVICES
from postwire_testing.receiver import WebhookReceiver
from postwire_testing.servers import rabbit_vhost
from postwire_testing.smtp_sink import SmtpSink
from postwire_testing.system import DevSystem

from . import email, rates, raw, report, sms, whatsapp
from .observe import Hooks, QueueSampler, TimedSmsc, counter_delta, fanout_counters
from .profile import Profiler
from .stats import BROKER, broker_pid, children, cpu_seconds, machine_info, rss_kib, self_cpu_seconds
from .trace import CpuTrace

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
PROGRAMS = ("gateway", "provider-ingest", "email-dispatcher", "sms-dispatcher",
            "whatsapp-dispatcher", "webhook-fanout", "reporting", "mongodb")
"""The broker's row: the whole RabbitMQ server (every vhost), when it runs on this machine."""


@dataclass(frozen=True)
class Plan:
    rabbit_messages: int = 5000
    mongo_docs: int = 20000
    mongo_updates: int = 5000
    warmup: int = 200
    accept: tuple[tuple[int, int], ...] = ((1, 300), (10, 1000), (50, 2000))
    accept_rate: float = 200.0
    accept_rate_seconds: float = 15.0
    e2e_rate: float = 50.0
    e2e_seconds: float = 30.0
    burst: int = 5000
    burst_in_flight: int = 50
    search_rates: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0, 600.0, 800.0)
    search_seconds: float = 60.0
    search_refine: int = 1
    drain_timeout: float = 180.0
    receipt_delay: float = 0.0
    smpp_binds: int = 1
    smpp_window: int = 100
    overall_timeout: float = 3000.0


QUICK = Plan(rabbit_messages=500, mongo_docs=2000, mongo_updates=500, warmup=50,
             accept=((1, 30), (10, 100), (50, 200)), accept_rate_seconds=3.0, e2e_seconds=6.0,
             burst=500, search_rates=(100.0, 300.0), search_seconds=10.0, search_refine=0,
             drain_timeout=90.0, overall_timeout=900.0)


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


def cli(mongodb_url: str, *args: str) -> dict[str, Any]:
    """The operator CLI, as an operator would run it."""
    exe = Path(sys.executable).with_name("postwire")
    out = subprocess.run([str(exe), "--mongodb-url", mongodb_url, *args], check=True,
                         capture_output=True, text=True, timeout=120)
    return dict(json.loads(out.stdout))


def log_summary(logs: Path) -> dict[str, dict[str, Any]]:
    """Per service: how many log lines of each level, and the first few warnings and errors."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(logs.glob("*.log")):
        levels: dict[str, int] = {}
        notable: list[str] = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                level, text = str(record.get("level", "?")).upper(), str(record.get("msg", ""))
            except ValueError:
                level, text = "TEXT", line
            levels[level] = levels.get(level, 0) + 1
            if level in ("WARNING", "ERROR", "CRITICAL") and len(notable) < 5:
                notable.append(text[:300])
        out[path.stem] = {"levels": levels, "first_warnings": notable}
    return out


def smpp_routes(plan: Plan, port: int) -> str:
    return json.dumps({"routes": {"smsc": {
        "type": "smpp", "host": "127.0.0.1", "port": port, "system_id": "postwire",
        "password": "secret", "binds": plan.smpp_binds, "window": plan.smpp_window,
        "reference_tlv": 0x1400}}, "default": ["smsc"]})


PHASES = ("accept", "paced", "e2e", "burst", "email", "whatsapp", "sustained")


async def run_system(plan: Plan, dev: DevSystem, smsc: TimedSmsc, receiver: WebhookReceiver,
                     sink: SmtpSink, graph: whatsapp.TimedGraph, amqp_url: str,
                     result: dict[str, Any],
                     phases: tuple[str, ...], profile: Path | None, db_profile: bool = False,
                     trace: Path | None = None) -> None:
    info = dev.info
    url = dev.mongodb_url
    key = cli(url, "keys", "create", "--tenant", info["tenant_id"], "--scopes", "send:sms,read:sms",
              "--live", "--name", "bench", "--rate-limit", "6000000/100000")["key"]
    endpoint = cli(url, "webhooks", "create", "--tenant", info["tenant_id"], "--state-dir",
                   str(dev.state_dir), receiver.url)
    pids = service_pids(dev)
    result["service_children"] = {n: children(p) for n, p in pids.items() if children(p)}
    ours = dict(pids)  # what py-spy can sample: our services and the database server
    broker = broker_pid()
    if broker is not None:
        pids[BROKER] = broker
    await smsc.wait_for(lambda s: s.bound >= plan.smpp_binds, timeout=60, what="binds")
    await asyncio.sleep(5.0)  # start-up settles (and webhook-fanout re-reads endpoints) before idle
    idle = snapshot(pids)
    queues = QueueSampler(amqp_url, interval=1.0)
    await queues.start()
    bench = sms.Bench(gateway=info["gateway"], key=key, sender=info["sender_id"], smsc=smsc,
                      hooks=Hooks(receiver), queues=queues, mongodb_url=url, pids=pids,
                      tenant_id=info["tenant_id"], trace=trace,
                      profiler=Profiler(profile, ours) if profile else None, db_profile=db_profile)
    # the bench's own process too: it serves the SMSC simulator and the webhook receiver
    cpu_trace = CpuTrace(trace / "cpu.jsonl", {**pids, "bench": os.getpid()}) if trace else None
    if cpu_trace is not None:
        await cpu_trace.start()
    if db_profile:
        await bench.enable_db_profile()
    fanout_url = f"http://127.0.0.1:{dev.base_port + SERVICES.index('webhook-fanout')}"
    counters = await fanout_counters(fanout_url)

    async def phase_counters(phase: str) -> None:
        nonlocal counters
        now = await fanout_counters(fanout_url)
        result.setdefault("webhook_fanout_counters", {})[phase] = counter_delta(counters, now)
        counters = now

    try:
        print(f"  warm-up: {plan.warmup} sends", flush=True)
        await bench.load("closed", 120, count=plan.warmup, in_flight=10, connections=10)
        result["warmup_drain"] = await bench.drain(plan.drain_timeout)
        await phase_counters("warmup")
        sample = receiver.requests[:3]
        result["webhook_signatures_checked"] = len(receiver.verify_all(endpoint["secret"], sample))
        if "accept" in phases:
            result["accept"] = await sms.accept_levels(bench, plan.accept)
            result["accept_drain"] = await bench.drain(plan.drain_timeout)
            await phase_counters("accept")
        if "paced" in phases:
            result["accept_paced"] = await sms.accept_paced(bench, plan.accept_rate,
                                                            plan.accept_rate_seconds)
            result["accept_paced_drain"] = await bench.drain(plan.drain_timeout)
            await phase_counters("paced")
        if "e2e" in phases:
            result["e2e"] = await rates.fixed_rate(bench, plan.e2e_rate, plan.e2e_seconds,
                                                 plan.drain_timeout)
            await phase_counters("e2e")
        if "burst" in phases:
            result["burst"] = await sms.burst(bench, plan.burst, plan.burst_in_flight,
                                              plan.drain_timeout)
            await phase_counters("burst")
        if "email" in phases:
            email_key = cli(url, "keys", "create", "--tenant", info["tenant_id"], "--scopes",
                            "send:email,read:email", "--live", "--name", "bench email",
                            "--rate-limit", "6000000/100000")["key"]
            sender = await email.verified_domain(bench, info["gateway"], info["api_key"])
            result["email"] = await email.fixed_rate(bench, sink, email_key, sender, plan.e2e_rate,
                                                     plan.e2e_seconds, plan.drain_timeout)
            await phase_counters("email")
        if "whatsapp" in phases:
            wa_key = cli(url, "keys", "create", "--tenant", info["tenant_id"], "--scopes",
                         "send:whatsapp,read:whatsapp", "--live", "--name", "bench whatsapp",
                         "--rate-limit", "6000000/100000")["key"]
            result["whatsapp"] = await whatsapp.fixed_rate(bench, graph, wa_key, plan.e2e_rate,
                                                           plan.e2e_seconds, plan.drain_timeout)
            await phase_counters("whatsapp")
        if "sustained" in phases:
            result["sustained"] = await rates.sustained(bench, plan.search_rates,
                                                      plan.search_seconds, plan.search_refine,
                                                      plan.drain_timeout)
            await phase_counters("sustained")
    finally:
        await queues.stop()
        if cpu_trace is not None:
            await cpu_trace.stop()
    after = snapshot(pids)
    counts = smsc.submit_counts()
    result["messages_through_system"] = len(bench.accepted) + len(bench.accepted_other)
    result["exactly_once"] = {"accepted": len(bench.accepted),
                              "submitted_once": sum(1 for m in bench.accepted if counts.get(m) == 1),
                              "submitted_twice_or_more": sum(1 for m in bench.accepted
                                                             if counts.get(m, 0) > 1),
                              "webhook_duplicates": bench.hooks.duplicates}
    result["load_client"] = {"cpu_s": round(bench.client_cpu_s, 2)}
    result["bench_reads_cpu_s"] = {n: round(v, 2) for n, v in bench.reads_cpu_s.items()}
    for name, pid in pids.items():
        c0, c1 = idle[name]["cpu_s"], after[name]["cpu_s"]
        result["processes"][name] = {
            "pid": pid, "rss_idle_kib": idle[name]["rss_kib"], "rss_after_kib": after[name]["rss_kib"],
            # the bench's own reads of results between phases are its work, not the system's
            "cpu_load_s": None if c0 is None or c1 is None
            else round(c1 - c0 - bench.reads_cpu_s.get(name, 0.0), 2),
            "cpu_total_s": c1}


async def main(plan: Plan, mode: str, phases: tuple[str, ...] = PHASES,
               profile: Path | None = None, db_profile: bool = False,
               trace: Path | None = None) -> dict[str, Any]:
    base = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "mode": mode,
                              "plan": asdict(plan), "machine": machine_info(REPO), "raw": {},
                              "processes": {}, "phases": list(phases),
                              "profile": str(profile) if profile else None,
                              "trace": str(trace) if trace else None}
    with rabbit_vhost(base) as amqp_url:
        print(f"raw RabbitMQ: {plan.rabbit_messages} messages", flush=True)
        result["raw"]["rabbitmq"] = await raw.rabbit_roundtrip(amqp_url, plan.rabbit_messages)
        print(f"raw SecantusDB: {plan.mongo_docs} docs, {plan.mongo_updates} updates", flush=True)
        result["raw"]["secantusdb"] = await raw.secantus_standalone(plan.mongo_docs,
                                                                    plan.mongo_updates)
    with (rabbit_vhost(base) as amqp_url,
          tempfile.TemporaryDirectory(prefix="postwire-bench-") as state,
          TimedSmsc(receipt_delay=plan.receipt_delay) as smsc, WebhookReceiver() as receiver,
          SmtpSink() as sink, whatsapp.TimedGraph(status_delay=plan.receipt_delay) as graph):
        dev = DevSystem(Path(state), amqp_url=amqp_url, cwd=REPO,
                        env={"SMS_ROUTES": smpp_routes(plan, smsc.port), **email.relay_env(sink),
                             **whatsapp.env(graph)})
        # provider-ingest's port (the launcher gives the services consecutive ports)
        graph.webhook_url = f"http://127.0.0.1:{dev.base_port + 1}/v1/webhooks/whatsapp"
        print("starting the system (postwire dev, SMS_ROUTES → the SMPP simulator)", flush=True)
        await asyncio.to_thread(dev.start)
        bench_cpu0 = self_cpu_seconds()
        try:
            await run_system(plan, dev, smsc, receiver, sink, graph, amqp_url, result, phases,
                             profile, db_profile, trace)
        finally:
            print("stopping the system", flush=True)
            result["system_exit_code"] = await asyncio.to_thread(dev.stop)
            result["service_logs"] = log_summary(Path(state) / "logs")
        result["carrier_and_receiver"] = {"cpu_s": round(self_cpu_seconds() - bench_cpu0, 2),
                                          "note": "the orchestrator process: SMPP simulator, "
                                                  "webhook receiver, queue sampling"}
    result["loadavg_end"] = os.getloadavg()
    return result


def cli_main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts and short steps")
    parser.add_argument("--label", default="", help="a word added to the result file's name")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy every service during each phase; stacks and summaries in DIR")
    parser.add_argument("--db-profile", action="store_true",
                        help="diagnostics: the database's own profile of every operation, per phase "
                             "(adds a write per operation: not for the figures)")
    parser.add_argument("--trace", type=Path, metavar="DIR",
                        help="diagnostics: every process's CPU (the database server's per thread) "
                             "every 100 ms in DIR/cpu.jsonl, and each SMS e2e message's stamps in "
                             "DIR/sms-e2e-messages.json, to line stalls up with what was busy")
    parser.add_argument("--e2e-rate", type=float, metavar="MSG_PER_S",
                        help="the fixed rate of the SMS, email and WhatsApp end-to-end phases "
                             "(default 50, the issue's; at another rate the latency targets are "
                             "reported as not measured)")
    parser.add_argument("--e2e-seconds", type=float, metavar="S",
                        help="how long the end-to-end phases run (default 30)")
    args = parser.parse_args()
    phases = tuple(p for p in args.phases.split(",") if p)
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    plan, mode = (QUICK, "quick") if args.quick else (Plan(), "full")
    if args.e2e_rate is not None:
        if not 0 < args.e2e_rate <= 1000:
            parser.error("--e2e-rate: between 0 and 1000 msg/s")
        plan = replace(plan, e2e_rate=args.e2e_rate)
    if args.e2e_seconds is not None:
        if not 1 <= args.e2e_seconds <= 600:
            parser.error("--e2e-seconds: between 1 and 600")
        plan = replace(plan, e2e_seconds=args.e2e_seconds)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    if args.label:
        stamp += f"-{args.label}"
    result = asyncio.run(asyncio.wait_for(main(plan, mode, phases, args.profile, args.db_profile,
                                               args.trace),
                                          plan.overall_timeout))
    print()
    print(report.render(result))
    print(f"\nJSON: {report.write(result, RESULTS, stamp)}")


if __name__ == "__main__":
    cli_main()
