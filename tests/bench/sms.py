"""The SMS phases on the live path: gateway → RabbitMQ → sms-dispatcher → SMPP simulator → receipt →
reporting → webhook-fanout → the customer's endpoint. Each phase runs the load client in its own
process, then joins its rows with the carrier's and the receiver's stamps and the stored timelines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from .observe import Hooks, QueueSampler, TimedSmsc
from .profile import Profiler
from .stats import cpu_seconds, latency_summary, self_cpu_seconds

REPO = Path(__file__).resolve().parents[2]


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Bench:
    """Everything a phase needs: where to send, what to watch, and the running totals."""

    gateway: str
    key: str
    sender: str
    smsc: TimedSmsc
    hooks: Hooks
    queues: QueueSampler
    mongodb_url: str
    pids: dict[str, int]
    tenant_id: str
    """The bench tenant: reads of tenant-scoped collections name it, so they use their indexes."""
    accepted: set[str] = field(default_factory=set)
    """SMS accepted so far (what ``drain`` waits for); other channels' ids go to ``accepted_other``."""
    accepted_other: set[str] = field(default_factory=set)
    offset: int = 0
    client_cpu_s: float = 0.0
    profiler: Profiler | None = None
    db_profile: bool = False
    trace: Path | None = None
    """``--trace DIR``: where the per-message stamps of the SMS e2e phase are written."""
    reads_cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU each process spent while the bench read its results back from the database (after a
    phase): taken out of the processes' load figures, since it is the bench's work, not the system's."""

    # -- the load client -------------------------------------------------------------------------
    async def load(self, phase: str, timeout: float, **plan: Any) -> dict[str, Any]:
        """Run the load client process for one phase; returns its rows (accepted ids are recorded)."""
        full = {"gateway": self.gateway, "key": self.key, "sender": self.sender, "phase": phase,
                "offset": self.offset, "deadline": timeout, **plan}  # plan may name its own key
        with tempfile.TemporaryDirectory(prefix="postwire-bench-client-") as tmp:
            plan_path, result_path = Path(tmp, "plan.json"), Path(tmp, "result.json")
            plan_path.write_text(json.dumps(full))  # noqa: ASYNC240 - tiny, local
            cpu0 = _children_cpu()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.bench.client", str(plan_path), str(result_path),
                cwd=REPO)
            try:
                await asyncio.wait_for(proc.wait(), timeout + 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
            if proc.returncode != 0:
                raise RuntimeError(f"load client exited {proc.returncode}")
            result: dict[str, Any] = json.loads(result_path.read_text())  # noqa: ASYNC240
            result["process_cpu_s"] = round(_children_cpu() - cpu0, 3)
        self.client_cpu_s += result["process_cpu_s"]
        self.offset += int(plan.get("count", 0)) + 1
        rows = result["rows"] + ([result["otp"]] if result.get("otp") else [])
        target = self.accepted if plan.get("channel", "sms") == "sms" else self.accepted_other
        target.update(r[0] for r in rows if r[0])
        return result

    async def load_and_drain(self, drain_timeout: float, phase: str, timeout: float,
                             **plan: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        result = await self.load(phase, timeout, **plan)
        return result, await self.drain(drain_timeout)

    # -- waiting -----------------------------------------------------------------------------------
    async def drain(self, timeout: float) -> dict[str, Any]:
        """Wait (bounded) until every accepted message reached the carrier and its ``sms_delivered``
        webhook arrived, and the work queues are empty. ``submitted`` counts messages, not submits: a
        message submitted twice must not stand in for one that never arrived."""
        start = time.perf_counter()
        target = len(self.accepted)
        submitted = delivered = 0
        depths: dict[str, int] = {}
        while time.perf_counter() - start < timeout:
            counts = self.smsc.counts()
            submitted = sum(1 for message_id in self.accepted if counts.get(message_id))
            self.hooks.update()
            delivered = self.hooks.by_type.get("sms_delivered", 0)
            depths = await self.queues.depths()
            if submitted >= target and delivered >= target and not any(depths.values()):
                break
            await asyncio.sleep(0.25)
        return {"target": target, "submitted": submitted, "webhooks_delivered": delivered,
                "queues": {k: v for k, v in depths.items() if v},
                "complete": submitted >= target and delivered >= target,
                "waited_s": round(time.perf_counter() - start, 2)}

    def cpu(self) -> dict[str, float | None]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    async def enable_db_profile(self) -> None:
        """Diagnostics only (it adds a write per operation): record every operation of the
        ``postwire`` database in ``system.profile``."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url)
        try:
            await client["postwire"].command("profile", 2)
        finally:
            await client.close()

    async def db_profile_since(self, since: datetime) -> dict[str, dict[str, float]]:
        """Operations by collection and kind since ``since``: count, documents and milliseconds."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url, tz_aware=True)
        out: dict[str, dict[str, float]] = {}
        try:
            async for op in client["postwire"]["system.profile"].find({"ts": {"$gte": since}}):
                command = op.get("command") or {}
                kind = str(op.get("op"))
                if kind == "command":
                    kind = next(iter(command), "command")
                key = f"{str(op.get('ns', '')).split('.', 1)[-1]} {kind}"
                row = out.setdefault(key, {"ops": 0, "docs": 0, "ms": 0})
                row["ops"] += 1
                row["docs"] += len(command.get("updates") or command.get("documents")
                                   or command.get("deletes") or []) or 1
                row["ms"] += float(op.get("millis") or 0)
        finally:
            await client.close()
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["ms"]))

    async def opcounters(self) -> dict[str, int]:
        """The database server's operation counters (commands, not documents)."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url)
        try:
            status = await client.admin.command("serverStatus")
            return {k: int(v) for k, v in (status.get("opcounters") or {}).items()}
        except Exception:  # not every server reports them; the figure is then missing
            return {}
        finally:
            await client.close()

    # -- joins -------------------------------------------------------------------------------------
    async def set_domain_verified(self, domain_id: str) -> None:
        """Setup only: mark a sending domain verified (its DNS records cannot be published here)."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url, tz_aware=True)
        try:
            await client["postwire"]["domains"].update_one({"_id": domain_id}, {"$set": {
                "status": "verified", "dkim_verified": True, "spf_verified": True,
                "verified_at": datetime.now(UTC)}})
        finally:
            await client.close()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
        """A client for reading results back; the CPU spent meanwhile goes to ``reads_cpu_s``."""
        before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url, tz_aware=True)
        try:
            yield client
        finally:
            await client.close()
            for name, pid in self.pids.items():
                start, end = before[name], cpu_seconds(pid)
                if start is not None and end is not None:
                    self.reads_cpu_s[name] = self.reads_cpu_s.get(name, 0.0) + end - start

    async def claims_at(self, ids: list[str]) -> dict[str, float]:
        """Per message, when sms-dispatcher claimed it (its ``dispatches`` claim's ``created_at``)."""
        out: dict[str, float] = {}
        async with self.reading() as client:
            for first in range(0, len(ids), 500):
                async for doc in client["postwire"]["dispatches"].find(
                        {"_id": {"$in": ids[first:first + 500]}}, projection=["created_at"]):
                    if doc.get("created_at") is not None:
                        out[doc["_id"]] = doc["created_at"].timestamp()
        return out

    async def timelines(self, ids: list[str]) -> dict[str, dict[str, float]]:
        """Per message: status → when reporting recorded it (``recorded_at``), read from MongoDB."""
        out: dict[str, dict[str, float]] = {}
        async with self.reading() as client:
            coll = client["postwire"]["messages"]
            for first in range(0, len(ids), 500):
                async for doc in coll.find({"_id": {"$in": ids[first:first + 500]}},
                                           projection=["timeline"]):
                    seen: dict[str, float] = {}
                    for entry in doc.get("timeline") or []:
                        at = entry.get("recorded_at")
                        if at is not None:
                            seen.setdefault(entry["status"], at.timestamp())
                    out[doc["_id"]] = seen
        return out

    async def latencies(self, rows: list[list[Any]], *, timeline: bool) -> dict[str, Any]:
        """The per-message latencies of ``rows`` (accepted ones), in milliseconds."""
        ok = [r for r in rows if r[0]]
        submits = self.smsc.first_submits()
        self.hooks.update()
        accept_http, to_submit, req_to_submit, to_hook, receipt_hook, carrier = [], [], [], [], [], []
        to_delivered: list[float] = []
        stamps = await self.timelines([r[0] for r in ok]) if timeline else {}
        claims = await self.claims_at([r[0] for r in ok]) if timeline else {}
        to_claim: list[float] = []
        claim_to_submit: list[float] = []
        missing_submit = missing_hook = missing_delivered = 0
        for mid, scheduled, _started, ended, _status, accepted_iso in ok:
            accepted = _ts(accepted_iso)
            accept_http.append(ended - scheduled)
            sub = submits.get(mid)
            if sub is None or accepted is None:
                missing_submit += 1
            else:
                to_submit.append(sub - accepted)
                req_to_submit.append(sub - scheduled)
            receipt = self.smsc.receipt_at.get(mid)
            hook = self.hooks.first.get(("sms_delivered", mid))
            if hook is None:
                missing_hook += 1
            else:
                if receipt is not None:
                    receipt_hook.append(hook - receipt)
                if accepted is not None:
                    to_hook.append(hook - accepted)
            if receipt is not None and sub is not None:
                carrier.append(receipt - sub)
            if timeline:
                claimed = claims.get(mid)
                if claimed is not None and accepted is not None and sub is not None:
                    to_claim.append(claimed - accepted)
                    claim_to_submit.append(sub - claimed)
                delivered = stamps.get(mid, {}).get("DELIVERED")
                if delivered is None or accepted is None:
                    missing_delivered += 1
                else:
                    to_delivered.append(delivered - accepted)
        out: dict[str, Any] = {"accepted": len(ok), "http_accept": latency_summary(accept_http),
               "accept_to_submit": latency_summary(to_submit),
               "request_to_submit": latency_summary(req_to_submit),
               "carrier_receipt_delay": latency_summary(carrier),
               "receipt_to_webhook": latency_summary(receipt_hook),
               "accept_to_delivered_webhook": latency_summary(to_hook),
               "missing": {"submit": missing_submit, "delivered_webhook": missing_hook}}
        if timeline:
            out["accept_to_delivered_timeline"] = latency_summary(to_delivered)
            out["accept_to_claim"] = latency_summary(to_claim)
            out["claim_to_submit"] = latency_summary(claim_to_submit)
            out["missing"]["delivered_timeline"] = missing_delivered
            if self.trace is not None:
                self.write_stamps(ok, submits, claims, stamps)
        return out

    def write_stamps(self, ok: list[list[Any]], submits: dict[str, float], claims: dict[str, float],
                     stamps: dict[str, dict[str, float]]) -> None:
        """``--trace``: every message of the SMS e2e phase with its stamps (wall-clock seconds), for
        lining a stall up with ``cpu.jsonl``."""
        assert self.trace is not None
        self.trace.mkdir(parents=True, exist_ok=True)
        rows = [{"id": mid, "accepted": _ts(accepted_iso), "claimed": claims.get(mid),
                 "submitted": submits.get(mid), "receipt": self.smsc.receipt_at.get(mid),
                 "recorded": stamps.get(mid, {}),
                 "delivered_webhook": self.hooks.first.get(("sms_delivered", mid))}
                for mid, _scheduled, _started, _ended, _status, accepted_iso in ok]
        (self.trace / "sms-e2e-messages.json").write_text(json.dumps(rows))


def summary(rows: list[list[Any]]) -> dict[str, Any]:
    """Accept throughput and errors of a phase's rows."""
    ok = [r for r in rows if r[0]]
    errors: dict[str, int] = {}
    for r in rows:
        if not r[0]:
            errors[str(r[4])] = errors.get(str(r[4]), 0) + 1
    if not rows:
        return {"requests": 0, "accepted": 0, "errors": errors}
    first = min(r[1] for r in rows)
    last = max(r[3] for r in rows)
    return {"requests": len(rows), "accepted": len(ok), "errors": errors,
            "seconds": round(last - first, 3),
            "accepted_per_s": round(len(ok) / max(last - first, 1e-9), 1)}


async def phase_cpu(bench: Bench, run: Any, name: str = "") -> tuple[Any, dict[str, Any]]:
    """Run ``run``; returns its result and the CPU seconds each service used meanwhile, plus the
    database's operation counters over the same span (``db_ops``) and the CPU seconds of the bench's
    own process (``bench_process``: the SMPP simulator, SMTP sink, fake Graph API and webhook
    receiver, which share the machine with the system); profiled when asked."""
    ops0 = await bench.opcounters()
    since = datetime.now(UTC)
    before = bench.cpu()
    own0 = self_cpu_seconds()
    if bench.profiler is not None and name:
        async with bench.profiler.phase(name):
            out = await run
    else:
        out = await run
    after = bench.cpu()
    own1 = self_cpu_seconds()
    ops1 = await bench.opcounters()
    cpu: dict[str, Any] = {k: (None if before[k] is None or after[k] is None
                               else round(after[k] - before[k], 2))  # type: ignore[operator]
                           for k in before}
    cpu["db_ops"] = {k: ops1[k] - ops0.get(k, 0) for k in ops1}
    cpu["bench_process"] = round(own1 - own0, 2)
    if bench.db_profile:
        cpu["db_profile"] = await bench.db_profile_since(since)
    return out, cpu


async def accept_levels(bench: Bench, levels: tuple[tuple[int, int], ...]) -> list[dict[str, Any]]:
    """Closed-loop sends at fixed concurrency levels."""
    rows_out = []
    for in_flight, count in levels:
        print(f"  accept: {count} sends, {in_flight} in flight", flush=True)
        result, cpu = await phase_cpu(bench, bench.load(
            "closed", 300, count=count, in_flight=in_flight, connections=in_flight),
            f"accept-{in_flight}")
        rows = result["rows"]
        rows_out.append({"in_flight": in_flight, **summary(rows),
                         **latency_summary([r[3] - r[2] for r in rows if r[0]]),
                         "client_cpu_s": result["process_cpu_s"], "service_cpu_s": cpu})
    return rows_out


async def accept_paced(bench: Bench, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop sends at a fixed rate: HTTP accept latency from each request's scheduled time."""
    count = int(rate * seconds)
    print(f"  accept: {rate:.0f} req/s for {seconds:.0f} s", flush=True)
    result, cpu = await phase_cpu(bench, bench.load("paced", seconds + 30, count=count, rate=rate,
                                                    connections=200), "accept-paced")
    rows = result["rows"]
    return {"rate": rate, **summary(rows),
            **latency_summary([r[3] - r[1] for r in rows if r[0]]),
            "client_cpu_s": result["process_cpu_s"], "service_cpu_s": cpu}


async def burst(bench: Bench, count: int, in_flight: int, drain_timeout: float) -> dict[str, Any]:
    """``count`` sends at ``in_flight``, an OTP in the middle: time until all reached the carrier."""
    print(f"  burst: {count} sends, {in_flight} in flight, an OTP after {count // 2}", flush=True)
    (result, drain), cpu = await phase_cpu(bench, bench.load_and_drain(
        drain_timeout, "burst", 600, count=count, in_flight=in_flight, connections=in_flight,
        otp_at=count // 2), "burst")
    rows = result["rows"]
    submits = bench.smsc.first_submits()
    ids = [r[0] for r in rows if r[0]]
    reached = [submits[i] for i in ids if i in submits]
    start = min(r[2] for r in rows)
    accepted_all = max(r[3] for r in rows)
    out: dict[str, Any] = {
        "count": count, "in_flight": in_flight, **summary(rows),
        "all_accepted_s": round(accepted_all - start, 3),
        "reached_carrier": len(reached),
        "all_at_carrier_s": round(max(reached) - start, 3) if len(reached) == len(ids) else None,
        "last_at_carrier_s": round(max(reached) - start, 3) if reached else None,
        "carrier_rate_per_s": round(len(reached) / max(max(reached) - start, 1e-9), 1)
        if reached else None,
        "drain": drain, "client_cpu_s": result["process_cpu_s"], "service_cpu_s": cpu}
    otp = result.get("otp")
    if otp and otp[0]:
        mid = otp[0]
        sub = submits.get(mid)
        accepted = _ts(otp[5])
        out["otp"] = {"id": mid, "http_accept_ms": round((otp[3] - otp[2]) * 1000, 2),
                      "accept_to_submit_ms": None if sub is None or accepted is None
                      else round((sub - accepted) * 1000, 2),
                      "request_to_submit_ms": None if sub is None else round((sub - otp[2]) * 1000, 2),
                      **_split(accepted, (await bench.claims_at([mid])).get(mid), sub),
                      "standard_submitted_before_it": sum(1 for t in reached if sub and t < sub)}
    else:
        out["otp"] = {"error": otp[4] if otp else "not sent"}
    return out


def _split(accepted: float | None, claimed: float | None, submitted: float | None) -> dict[str, Any]:
    """Where the OTP's accept → carrier time went: until the dispatcher claimed it, then after."""
    if accepted is None or claimed is None or submitted is None:
        return {}
    return {"accept_to_claim_ms": round((claimed - accepted) * 1000, 2),
            "claim_to_submit_ms": round((submitted - claimed) * 1000, 2)}
