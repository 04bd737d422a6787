"""The SMS rate phases: a fixed paced rate with end-to-end latencies, and the maximum sustained rate
(ascending paced steps, each judged by whether any queue or lag grows, least-squares trends over the
step, then bisection between the last pass and the first fail)."""

from __future__ import annotations

import bisect
import time
from typing import Any

from . import hops
from .observe import slope
from .sms import Bench, _ts, phase_cpu, summary
from .stats import latency_summary


async def fixed_rate(bench: Bench, rate: float, seconds: float, drain_timeout: float) -> dict[str, Any]:
    """The end-to-end latencies at a fixed, modest rate."""
    count = int(rate * seconds)
    print(f"  e2e: {rate:.0f} msg/s for {seconds:.0f} s ({count} messages)", flush=True)
    start = time.time()
    (result, drain), cpu = await phase_cpu(bench, bench.load_and_drain(
        drain_timeout, "paced", seconds + 30, count=count, rate=rate, connections=50), "e2e")
    rows = result["rows"]
    trend = growth(bench, rows, start, start + seconds, rate)
    latency = await bench.latencies(rows, timeline=True)  # also brings bench.hooks up to date
    hop_times = await hops.breakdown(bench, [r[0] for r in rows if r[0]])
    return {"rate": rate, "seconds": seconds, **summary(rows), "queues": trend["queues"],
            "latency": latency, "hops": hop_times, "drain": drain,
            "client_cpu_s": result["process_cpu_s"], "service_cpu_s": cpu}


def growth(bench: Bench, rows: list[list[Any]], start: float, end: float,
           rate: float) -> dict[str, Any]:
    """Whether anything falls behind during [start, end]: each queue's depth, and the lag of the
    carrier (accepted but not submitted) and of the customer webhooks (submitted, no sms_delivered
    webhook yet), as least-squares trends over the step after a 5 s warm-up."""
    t0 = start + min(5.0, (end - start) / 3)
    threshold = max(1.0, 0.01 * rate)  # msg/s of growth that counts
    floor = max(20.0, 0.25 * rate)  # and a depth that is more than a moment's worth
    samples = bench.queues.window(t0, end)
    queues: dict[str, dict[str, float]] = {}
    names = sorted({n for _, d in samples for n in d})
    for name in names:
        points = [(t, float(d.get(name, 0))) for t, d in samples]
        s = slope(points)
        tail = max((v for _, v in points[-max(1, len(points) // 3):]), default=0.0)
        queues[name] = {"slope_per_s": round(s, 2), "max_depth": max((v for _, v in points),
                                                                     default=0.0),
                        "grows": s > threshold and tail > floor}
    submits = bench.smsc.first_submits()
    bench.hooks.update()
    accepted_at = sorted(a for r in rows if r[0] and (a := _ts(r[5])) is not None)
    mine = {r[0] for r in rows if r[0]}
    sub_at = sorted(submits[m] for m in mine if m in submits)
    hook_at = sorted(t for (k, m), t in bench.hooks.first.items() if k == "sms_delivered" and m in mine)
    lags: dict[str, dict[str, float]] = {}
    ticks = [t0 + i * 0.5 for i in range(int((end - t0) / 0.5) + 1)]
    for name, ahead, behind in (("carrier", accepted_at, sub_at), ("webhooks", sub_at, hook_at)):
        points = [(t, float(bisect.bisect_right(ahead, t) - bisect.bisect_right(behind, t)))
                  for t in ticks]
        s = slope(points)
        tail = max((v for _, v in points[-max(1, len(points) // 3):]), default=0.0)
        lags[name] = {"slope_per_s": round(s, 2), "max_lag": max((v for _, v in points), default=0.0),
                      "grows": s > threshold and tail > floor}
    grows = [n for n, q in queues.items() if q["grows"]] + [f"{n} lag" for n, q in lags.items()
                                                             if q["grows"]]
    return {"queues": queues, "lags": lags, "growing": grows}


async def sustained(bench: Bench, rates: tuple[float, ...], seconds: float, refine: int,
                    drain_timeout: float) -> dict[str, Any]:
    """The highest offered rate at which nothing grows over a step of ``seconds``: ascending steps,
    stop at the first that fails, then ``refine`` bisections between the last pass and that fail."""
    steps: list[dict[str, Any]] = []

    async def step(rate: float) -> bool:
        count = int(rate * seconds)
        print(f"  sustained: {rate:.0f} msg/s for {seconds:.0f} s", flush=True)
        start = time.time()
        (result, drain), cpu = await phase_cpu(bench, bench.load_and_drain(
            drain_timeout, "paced", seconds + 30, count=count, rate=rate, connections=256),
            f"sustained-{rate:.0f}")
        rows = result["rows"]
        s = summary(rows)
        end = max((r[3] for r in rows), default=start + seconds)
        trend = growth(bench, rows, start, min(end, start + seconds), rate)
        submits = bench.smsc.first_submits()
        mine = [r[0] for r in rows if r[0]]
        at_carrier = [submits[m] for m in mine if m in submits]
        in_step = sum(1 for t in at_carrier if t <= start + seconds)
        kept_up = s["accepted_per_s"] >= 0.95 * rate and not s["errors"]
        ok = kept_up and not trend["growing"] and drain["complete"]
        steps.append({"rate": rate, "seconds": seconds, **s, "ok": ok, "accept_kept_up": kept_up,
                      "carrier_per_s_during_step": round(in_step / seconds, 1),
                      "http_accept": latency_summary([r[3] - r[1] for r in rows if r[0]]),
                      **trend, "drain": drain, "client_cpu_s": result["process_cpu_s"],
                      "service_cpu_s": cpu})
        print(f"    ok={ok} accepted {s['accepted_per_s']}/s, carrier {in_step / seconds:.1f}/s, "
              f"growing {trend['growing']}, drained in {drain['waited_s']} s", flush=True)
        return ok

    best: float | None = None
    failed: float | None = None
    for rate in rates:
        if await step(rate):
            best = rate
        else:
            failed = rate
            break
    for _ in range(refine):
        if failed is None:
            break
        low = best or 0.0
        mid = round((low + failed) / 2 / 10) * 10
        if mid <= low or mid >= failed:
            break
        if await step(mid):
            best = mid
        else:
            failed = mid
    return {"max_sustained_per_s": best, "first_failed_per_s": failed, "steps": steps}
