"""The readable table at the end, and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _ratio(value: float | None, limit: float | None) -> str:
    if not value or not limit:
        return "-"
    return f"{value / limit:.1%}"


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def render(result: dict[str, Any]) -> str:
    raw = result["raw"]
    rabbit, mongo = raw["rabbitmq"], raw["secantusdb"]
    pub, rt = rabbit["publish_confirmed_per_s"], rabbit["roundtrip_per_s"]
    upd = mongo["update_one_concurrent_per_s"]
    lines = [f"Postwire bench {result['date']}  mode={result['mode']}  "
             f"nproc={result['machine']['nproc']}  {result['machine']['cpu_model']}  "
             f"git={str(result['machine']['git_head'])[:12]}",
             f"load average at start {result['machine']['loadavg_start']}, at end "
             f"{result.get('loadavg_end')} (other work on this box shares its CPUs)", "",
             "Raw limits of this box",
             f"  RabbitMQ publish+confirm (window {rabbit['confirm_window']}, persistent)"
             f"  {_n(pub)} msg/s",
             f"  RabbitMQ publish->consume round trip ({rabbit['messages']} msgs)       {_n(rt)} msg/s",
             f"  SecantusDB insert_many                                       "
             f"{_n(mongo['insert_many_docs_per_s'])} docs/s",
             f"  SecantusDB update_one sequential                             "
             f"{_n(mongo['update_one_sequential_per_s'])} /s",
             f"  SecantusDB update_one {mongo['concurrency']} concurrent                          "
             f"{_n(upd)} /s", "",
             "Gateway accept (POST /v1/sms/send, test key, sandbox)",
             f"  {'in flight':>9} {'requests':>8} {'ok':>6} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
             f" {'/rabbit pub':>11} {'/mongo upd':>10}  errors"]
    for row in result["accept"]:
        lines.append(f"  {row['in_flight']:>9} {row['requests']:>8} {row['accepted']:>6} "
                     f"{row['accepted_per_s']:>8.1f} {_n(row['p50_ms']):>8} {_n(row['p99_ms']):>8} "
                     f"{_ratio(row['accepted_per_s'], pub):>11} "
                     f"{_ratio(row['accepted_per_s'], upd):>10}  {row['errors'] or ''}")
    drain = result["drain"]
    lines += ["", "Pipeline drain (all accepted above until DELIVERED)",
              f"  {drain['delivered']}/{drain['target']} DELIVERED, {drain['failed']} FAILED, "
              f"complete={drain['complete']}, {drain['seconds_from_first_send']} s from first send"
              f" -> {_n(drain['delivered_per_s'])} msg/s  ({_ratio(drain['delivered_per_s'], rt)} of "
              f"rabbit round trip, {_ratio(drain['delivered_per_s'], upd)} of mongo update_one)"]
    e2e = result["e2e"]
    qd, qs = e2e["timeline"]["queued_to_delivered"], e2e["timeline"]["queued_to_sent"]
    lines += ["", f"SMS end to end ({e2e['sent']} sent at {e2e['rate']} msg/s, "
              f"achieved {e2e['achieved_send_rate']} msg/s, send errors {e2e['send_errors']})",
              f"  QUEUED->SENT       p50 {_n(qs['p50_ms'])} ms  p99 {_n(qs['p99_ms'])} ms  "
              f"max {_n(qs['max_ms'])} ms  (n={qs['n']})",
              f"  QUEUED->DELIVERED  p50 {_n(qd['p50_ms'])} ms  p99 {_n(qd['p99_ms'])} ms  "
              f"max {_n(qd['max_ms'])} ms  (n={qd['n']}; includes SANDBOX_DLR_DELAY "
              f"{e2e['sandbox_dlr_delay_s']} s)",
              f"  wait: {e2e['wait']['delivered']}/{e2e['wait']['target']} DELIVERED in "
              f"{e2e['wait']['waited_s']} s, without DELIVERED in timeline: "
              f"{e2e['timeline']['without_delivered']}", "",
              "Processes (RSS MiB idle -> after load; CPU s during load / total since start)",
              f"  {'process':<20} {'pid':>7} {'RSS idle':>9} {'RSS after':>9} {'CPU load':>9}"
              f" {'CPU total':>9} {'ms CPU/msg':>10}"]
    msgs = result["messages_through_system"] or 1
    for name, p in result["processes"].items():
        def mib(kib: int | None) -> str:
            return "-" if kib is None else f"{kib / 1024:.1f}"
        per_msg = None if p["cpu_load_s"] is None else round(p["cpu_load_s"] * 1000 / msgs, 2)
        lines.append(f"  {name:<20} {p['pid']:>7} {mib(p['rss_idle_kib']):>9} "
                     f"{mib(p['rss_after_kib']):>9} {_n(p['cpu_load_s']):>9} "
                     f"{_n(p['cpu_total_s']):>9} {_n(per_msg):>10}")
    client = result["load_client"]
    lines += [f"  {'load client (self)':<20} {'':>7} {'':>9} {'':>9} "
              f"{_n(client['cpu_load_s']):>9} {_n(client['cpu_total_s']):>9}",
              f"  (ms CPU/msg over {msgs} messages sent through the system)"]
    return "\n".join(lines)


def write(result: dict[str, Any], directory: Path, stamp: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
