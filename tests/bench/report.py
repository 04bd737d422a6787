"""The readable table at the end, and the JSON file.

Every throughput is printed beside its ratio to the raw limits measured in the same run (RabbitMQ's
confirmed publish → consume round trip; the database's ``update_one`` rate, its scarcest resource), and
the targets of issue 9 are checked in a last block: met, not met (with the figure), or not measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .stats import BROKER


def _ratio(value: float | None, limit: float | None) -> str:
    if not value or not limit:
        return "-"
    return f"{value / limit:.0%}"


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def _lat(s: dict[str, Any] | None) -> str:
    if not s or not s.get("n"):
        return "p50 -  p99 -"
    return f"p50 {_n(s['p50_ms'])} ms  p99 {_n(s['p99_ms'])} ms  max {_n(s['max_ms'])} ms (n={s['n']})"


def targets(result: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target of the issue."""
    out: list[tuple[str, str, bool | None]] = []
    sus = result.get("sustained") or {}
    best = sus.get("max_sustained_per_s")
    out.append(("sustained SMS accept→carrier ≥ 600 msg/s (nothing grows)",
                f"{_n(best)} msg/s" + (f" (first failing step {_n(sus.get('first_failed_per_s'))})"
                                       if sus.get("first_failed_per_s") else ""),
                None if not sus else bool(best and best >= 600)))
    e2e = result.get("e2e") or {}
    # the latency targets are the at 50 msg/s; a run at another rate does not measure them
    lat = (e2e.get("latency") or {}) if e2e.get("rate") == 50 else {}
    for name, key, limit in (("at 50 msg/s accept→carrier p99 ≤ 15 ms", "accept_to_submit", 15),
                             ("at 50 msg/s accept→DELIVERED (timeline) p99 ≤ 50 ms",
                              "accept_to_delivered_timeline", 50),
                             ("at 50 msg/s receipt→customer webhook p99 ≤ 50 ms",
                              "receipt_to_webhook", 50)):
        p99 = (lat.get(key) or {}).get("p99_ms")
        out.append((name, f"{_n(p99)} ms", None if p99 is None else p99 <= limit))
    b = result.get("burst") or {}
    at = b.get("all_at_carrier_s")
    out.append((f"{_n(b.get('count'))} burst at the carrier ≤ 8 s", f"{_n(at)} s",
                None if not b else (at is not None and at <= 8)))
    otp = (b.get("otp") or {}).get("accept_to_submit_ms")
    out.append(("OTP inside the burst at the carrier ≤ 100 ms", f"{_n(otp)} ms",
                None if otp is None else otp <= 100))
    paced = result.get("accept_paced") or {}
    out.append((f"gateway accept p99 ≤ 15 ms at {_n(paced.get('rate'))} req/s",
                f"{_n(paced.get('p99_ms'))} ms",
                None if paced.get("p99_ms") is None else paced["p99_ms"] <= 15))
    idle = {n: p["rss_idle_kib"] for n, p in (result.get("processes") or {}).items()
            if n not in ("mongodb", BROKER) and p.get("rss_idle_kib")}
    worst = max(idle.values(), default=None)
    out.append(("each service ≤ 120 MB RSS idle",
                f"max {worst / 1024:.1f} MiB" if worst else "-",
                None if worst is None else worst / 1024 <= 120 * 1000 * 1000 / 1024 / 1024))
    return out


def render(result: dict[str, Any]) -> str:
    raw = result["raw"]
    rabbit, mongo = raw["rabbitmq"], raw["secantusdb"]
    rt = rabbit["roundtrip_per_s"]
    upd = mongo["update_one_concurrent_per_s"]
    m = result["machine"]
    lines = [f"Postwire bench {result['date']}  mode={result['mode']}  nproc={m['nproc']}  "
             f"{m['cpu_model']}  git={str(m['git_head'])[:12]}{' (dirty)' if m.get('git_dirty') else ''}",
             f"load average at start {tuple(round(x, 2) for x in m['loadavg_start'])}, at end "
             f"{tuple(round(x, 2) for x in result.get('loadavg_end') or ())} "
             "(other work on this box shares its CPUs)", "",
             "Raw limits of this box (the denominators below)",
             f"  RabbitMQ publish+confirm, persistent, window {rabbit['confirm_window']}   "
             f"{_n(rabbit['publish_confirmed_per_s'])} msg/s",
             f"  RabbitMQ publish→consume round trip                    {_n(rt)} msg/s  [rabbit]",
             f"  SecantusDB insert_many                                 "
             f"{_n(mongo['insert_many_docs_per_s'])} docs/s",
             f"  SecantusDB update_one sequential                       "
             f"{_n(mongo['update_one_sequential_per_s'])} /s",
             f"  SecantusDB update_one {mongo['concurrency']} concurrent                    "
             f"{_n(upd)} /s  [db upd]"]
    if mongo.get("bulk_update_ops_per_s"):
        lines.append(f"  SecantusDB bulk_write of UpdateOne (batches of {mongo['bulk_batch']})     "
                     f"{_n(mongo['bulk_update_ops_per_s'])} ops/s")

    lines += ["", "Gateway accept (POST /v1/sms/send, live key; HTTP latency from the load client)",
              f"  {'in flight':>9} {'requests':>8} {'ok':>6} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
              f" {'/rabbit':>8} {'/db upd':>8}  errors"]
    for row in result.get("accept", []):
        lines.append(f"  {row['in_flight']:>9} {row['requests']:>8} {row['accepted']:>6} "
                     f"{row['accepted_per_s']:>8.1f} {_n(row['p50_ms']):>8} {_n(row['p99_ms']):>8} "
                     f"{_ratio(row['accepted_per_s'], rt):>8} {_ratio(row['accepted_per_s'], upd):>8}"
                     f"  {row['errors'] or ''}")
    paced = result.get("accept_paced")
    if paced:
        lines.append(f"  open loop at {paced['rate']:.0f} req/s: achieved {paced['accepted_per_s']} "
                     f"msg/s, p50 {_n(paced['p50_ms'])} ms, p99 {_n(paced['p99_ms'])} ms (from the "
                     f"scheduled send time), errors {paced['errors'] or 0}")

    e2e = result.get("e2e")
    if e2e:
        lat = e2e["latency"]
        lines += ["", f"SMS end to end at {e2e['rate']:.0f} msg/s for {e2e['seconds']:.0f} s "
                  f"({e2e['accepted']} accepted, {e2e['accepted_per_s']} msg/s, errors "
                  f"{e2e['errors'] or 0}; SMSC receipt delay {result['plan']['receipt_delay']} s)",
                  f"  accept→carrier submit_sm        {_lat(lat['accept_to_submit'])}",
                  f"  request→carrier submit_sm       {_lat(lat['request_to_submit'])}",
                  f"    accept→dispatcher's claim     {_lat(lat.get('accept_to_claim'))}",
                  f"    claim→carrier submit_sm       {_lat(lat.get('claim_to_submit'))}",
                  f"  accept→DELIVERED in timeline    {_lat(lat.get('accept_to_delivered_timeline'))}",
                  f"  carrier: submit→receipt         {_lat(lat['carrier_receipt_delay'])}",
                  f"  receipt→customer webhook        {_lat(lat['receipt_to_webhook'])}",
                  f"  accept→sms_delivered webhook    {_lat(lat['accept_to_delivered_webhook'])}",
                  f"  missing: {lat['missing']}; drained: {e2e['drain']['complete']} "
                  f"in {e2e['drain']['waited_s']} s"]
        hop_times = e2e.get("hops") or {}
        if hop_times:
            lines.append("  receipt → webhook by hop (timeline recorded_at, first attempt's start):")
            lines += [f"    {name.replace('_', ' '):34s}{_lat(summary)}"
                      for name, summary in hop_times.items()]

    b = result.get("burst")
    if b:
        lines += ["", f"Burst: {b['count']} sends at {b['in_flight']} in flight ({b['accepted']} "
                  f"accepted, errors {b['errors'] or 0})",
                  f"  all accepted after {_n(b['all_accepted_s'])} s "
                  f"({_n(b['accepted_per_s'])} msg/s, {_ratio(b['accepted_per_s'], rt)} of rabbit, "
                  f"{_ratio(b['accepted_per_s'], upd)} of db upd)",
                  f"  all at the carrier after {_n(b['all_at_carrier_s'])} s "
                  f"({_n(b['carrier_rate_per_s'])} msg/s, {_ratio(b['carrier_rate_per_s'], rt)} of "
                  f"rabbit, {_ratio(b['carrier_rate_per_s'], upd)} of db upd); reached "
                  f"{b['reached_carrier']}",
                  f"  OTP in the middle: {b['otp']}"]

    em = result.get("email")
    if em:
        lines += ["", f"Email end to end at {em['rate']:.0f} msg/s for {em['seconds']:.0f} s "
                  f"({em['accepted']} accepted, {em['accepted_per_s']} msg/s, errors {em['errors'] or 0};"
                  " relay = a local SMTP sink)",
                  f"  HTTP accept                     {_lat(em['http_accept'])}",
                  f"  accept→relay accepted (SMTP)    {_lat(em['accept_to_relay'])}",
                  f"  accept→SENT in timeline         {_lat(em['accept_to_sent_timeline'])}",
                  f"  relay→email_sent webhook        {_lat(em['relay_to_webhook'])}",
                  f"  drained: {em['drain']}"]
    elif "email" in (result.get("phases") or []):
        lines += ["", "Email end to end: not run"]
    wa = result.get("whatsapp")
    if wa:
        lines += ["", f"WhatsApp end to end at {wa['rate']:.0f} msg/s for {wa['seconds']:.0f} s "
                  f"({wa['accepted']} accepted, {wa['accepted_per_s']} msg/s, errors {wa['errors'] or 0};"
                  f" fake Graph API, statuses {wa['status_delay_s']} s after the send)",
                  f"  HTTP accept                     {_lat(wa['http_accept'])}",
                  f"  accept→Graph API send           {_lat(wa['accept_to_graph'])}",
                  f"  accept→DELIVERED in timeline    {_lat(wa['accept_to_delivered_timeline'])}",
                  f"  delivered status→webhook        {_lat(wa['status_to_webhook'])}",
                  f"  drained: {wa['drain']}"]
    elif "whatsapp" in (result.get("phases") or []):
        lines += ["", "WhatsApp end to end: not run"]

    sus = result.get("sustained")
    if sus:
        lines += ["", "Sustained rate search (a step passes when the accept keeps up, no queue or "
                  "lag grows, and it drains)",
                  f"  {'offered':>8} {'accepted/s':>10} {'carrier/s':>9} {'/rabbit':>8} {'/db upd':>8}"
                  f" {'p99 ms':>8} {'drain s':>8}  ok  growing"]
        for st in sus["steps"]:
            lines.append(f"  {st['rate']:>8.0f} {st['accepted_per_s']:>10.1f} "
                         f"{st['carrier_per_s_during_step']:>9.1f} "
                         f"{_ratio(st['carrier_per_s_during_step'], rt):>8} "
                         f"{_ratio(st['carrier_per_s_during_step'], upd):>8} "
                         f"{_n(st['http_accept']['p99_ms']):>8} {st['drain']['waited_s']:>8} "
                         f"{'yes' if st['ok'] else 'NO ':>3}  {', '.join(st['growing']) or '-'}")
        lines.append(f"  max sustained: {_n(sus['max_sustained_per_s'])} msg/s "
                     f"({_ratio(sus['max_sustained_per_s'], rt)} of rabbit, "
                     f"{_ratio(sus['max_sustained_per_s'], upd)} of db upd)")

    once = result.get("exactly_once")
    if once:
        lines += ["", f"Exactly once: {once}"]
    fanout = result.get("webhook_fanout_counters")
    if fanout:
        lines += ["", "webhook-fanout per phase (first attempts inline or from a job; jobs set aside "
                      "through the defer queue, by reason)"]
        lines += [f"  {phase:<10} {counts or '-'}" for phase, counts in fanout.items()]

    msgs = result.get("messages_through_system") or 1
    lines += ["", "Processes (RSS MiB idle → after load; CPU s over the whole load; ms CPU per message)",
              f"  {'process':<20} {'pid':>7} {'RSS idle':>9} {'RSS after':>9} {'CPU load':>9}"
              f" {'ms/msg':>7}"]
    for name, p in result["processes"].items():
        def mib(kib: int | None) -> str:
            return "-" if kib is None else f"{kib / 1024:.1f}"
        per_msg = None if p["cpu_load_s"] is None else round(p["cpu_load_s"] * 1000 / msgs, 2)
        lines.append(f"  {name:<20} {p['pid']:>7} {mib(p['rss_idle_kib']):>9} "
                     f"{mib(p['rss_after_kib']):>9} {_n(p['cpu_load_s']):>9} {_n(per_msg):>7}")
    client = result.get("load_client") or {}
    side = result.get("carrier_and_receiver") or {}
    lines += [f"  {'load client':<20} {'':>7} {'':>9} {'':>9} {_n(client.get('cpu_s')):>9} "
              f"{_n(round(client['cpu_s'] * 1000 / msgs, 2) if client.get('cpu_s') else None):>7}",
              f"  {'SMSC+receiver':<20} {'':>7} {'':>9} {'':>9} {_n(side.get('cpu_s')):>9} "
              f"{_n(round(side['cpu_s'] * 1000 / msgs, 2) if side.get('cpu_s') else None):>7}",
              f"  ({msgs} messages through the system"
              + (f"; {BROKER} is the whole broker, every vhost" if BROKER in result["processes"]
                 else "") + ")"]
    reads = result.get("bench_reads_cpu_s") or {}
    if reads:
        lines.append("  (taken out above: the bench's reads of its results between phases, "
                     + ", ".join(f"{n} {v:.1f} s" for n, v in reads.items() if v >= 0.05) + ")")
    ops = (result.get("e2e") or {}).get("service_cpu_s", {}).get("db_ops")
    if ops and e2e:
        n = e2e["accepted"] or 1
        lines.append(f"  database commands per message at {e2e['rate']:.0f} msg/s: " + ", ".join(
            f"{k} {v / n:.2f}" for k, v in ops.items() if v))

    lines += ["", "Targets (issue 9)"]
    for name, measured, met in targets(result):
        mark = "not measured" if met is None else ("met" if met else "NOT MET")
        lines.append(f"  {name:<58} {measured:<28} {mark}")
    return "\n".join(lines)


def write(result: dict[str, Any], directory: Path, stamp: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
