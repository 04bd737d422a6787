"""``--trace DIR``: what was busy when messages stalled.

``CpuTrace`` runs ``python -m tests.bench.trace sample`` in a process of its own (so that reading
``/proc`` every 100 ms does not hold up the bench's event loop, which serves the SMSC and the webhook
receiver): every watched process's CPU, and each thread of the database server's (``db:<tid>``), as
JSON lines in ``DIR/cpu.jsonl`` (clock ticks; ``t`` is the wall clock). ``python -m tests.bench.trace
stalls DIR`` reads that beside the SMS e2e phase's per-message stamps (``DIR/sms-e2e-messages.json``).

A stall is a run of SMS e2e messages whose accept → dispatcher's claim took longer than ``--over`` ms,
each accepted before the one before it was claimed. For each, the CPU each process (and
each thread of the database server, ``db:<tid>``) used from the first such message's accept to the
last one's claim, from ``cpu.jsonl``, beside the median of what they use in windows of the same
length spread over the phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from .stats import CLOCK_TICKS, stat_ticks

REPO = Path(__file__).resolve().parents[2]


def sample(pids: dict[str, int]) -> dict[str, float]:
    """Clock ticks of each process, and of each thread of ``mongodb`` as ``db:<tid>``, now."""
    row: dict[str, float] = {"t": round(time.time(), 3)}
    for name, pid in pids.items():
        ticks = stat_ticks(Path(f"/proc/{pid}/stat"))
        if ticks is not None:
            row[name] = ticks
    db = pids.get("mongodb")
    if db is not None:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{db}/task").iterdir():
                ticks = stat_ticks(task / "stat")
                if ticks:
                    row[f"db:{task.name}"] = ticks
    return row


def sample_loop(path: Path, pids: dict[str, int], interval: float, seconds: float) -> None:
    """Sample until SIGTERM or ``seconds`` have passed (a bound, should the bench die first)."""
    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_term)
    deadline = time.monotonic() + seconds
    with path.open("a") as out:
        while not stop and time.monotonic() < deadline:
            out.write(json.dumps(sample(pids)) + "\n")
            time.sleep(interval)


class CpuTrace:
    """The sampler's process, started and stopped (by its PID) around the bench's phases."""

    def __init__(self, path: Path, pids: dict[str, int], interval: float = 0.1,
                 bound_s: float = 3600.0) -> None:
        self.path = path
        self.pids = pids
        self.interval = interval
        self.bound_s = bound_s
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.trace", "sample", str(self.path),
            "--interval", str(self.interval), "--seconds", str(self.bound_s),
            *(f"{name}={pid}" for name, pid in self.pids.items()),
            cwd=REPO)

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()


def _at(samples: list[dict[str, float]], t: float) -> dict[str, float]:
    """The sample nearest to ``t``."""
    return min(samples, key=lambda s: abs(s["t"] - t))


def _used(samples: list[dict[str, float]], start: float, end: float) -> dict[str, float]:
    """CPU milliseconds by name over [start, end]."""
    a, b = _at(samples, start), _at(samples, end)
    return {k: (v - a.get(k, v)) * 1000 / CLOCK_TICKS for k, v in b.items() if k != "t"}


def stalls(directory: Path, over_ms: float = 40.0) -> list[dict[str, Any]]:
    messages = json.loads((directory / "sms-e2e-messages.json").read_text())
    samples = [json.loads(line) for line in (directory / "cpu.jsonl").read_text().splitlines()]
    slow = sorted((m["accepted"], m["claimed"]) for m in messages
                  if m["accepted"] and m["claimed"] and (m["claimed"] - m["accepted"]) * 1000 > over_ms)
    episodes: list[list[tuple[float, float]]] = []
    for accepted, claimed in slow:  # one stall: each message accepted before the last one's claim
        if episodes and accepted <= max(c for _, c in episodes[-1]):
            episodes[-1].append((accepted, claimed))
        else:
            episodes.append([(accepted, claimed)])
    start = min(m["accepted"] for m in messages if m["accepted"])
    last = max(m["accepted"] for m in messages if m["accepted"])
    out = []
    for episode in episodes:
        begin, end = episode[0][0], max(c for _, c in episode)
        used = _used(samples, begin, end)
        span = end - begin
        # the same span at 20 places spread over the phase, for comparison
        step = max(0.0, last - start - span) / 20
        windows = [_used(samples, start + i * step, start + i * step + span) for i in range(20)]
        ordinary = {name: statistics.median(w.get(name, 0.0) for w in windows) for name in used}
        busiest = sorted(used.items(), key=lambda kv: -kv[1])[:8]
        out.append({"at_s": round(begin - start, 2), "messages": len(episode),
                    "worst_ms": round(max((c - a) * 1000 for a, c in episode)),
                    "window_ms": round(span * 1000),
                    "cpu_ms": {k: [round(v), round(ordinary.get(k, 0.0))] for k, v in busiest}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.trace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sampling = sub.add_parser("sample", help="(run by the bench) sample CPU into a JSON-lines file")
    sampling.add_argument("path", type=Path)
    sampling.add_argument("pids", nargs="+", metavar="NAME=PID")
    sampling.add_argument("--interval", type=float, default=0.1)
    sampling.add_argument("--seconds", type=float, default=3600.0)
    listing = sub.add_parser("stalls", help="list the stalls of a --trace DIR and what was busy")
    listing.add_argument("directory", type=Path)
    listing.add_argument("--over", type=float, default=40.0, help="ms of accept → claim (default 40)")
    args = parser.parse_args()
    if args.command == "sample":
        pids = {name: int(pid) for name, pid in (p.split("=", 1) for p in args.pids)}
        sample_loop(args.path, pids, args.interval, args.seconds)
        return
    for s in stalls(args.directory, args.over):
        busy = ", ".join(f"{k} {v[0]} ({v[1]})" for k, v in s["cpu_ms"].items())
        print(f"{s['at_s']:8.2f} s  {s['messages']:3d} msgs  worst {s['worst_ms']} ms  over "
              f"{s['window_ms']} ms, CPU ms (ordinary): {busy}")


if __name__ == "__main__":
    main()
