"""Small measurement helpers: percentiles, /proc readings and machine facts."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_summary(seconds: list[float]) -> dict[str, Any]:
    """p50/p99/max in milliseconds."""
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 2)
    return {"n": len(seconds), "p50_ms": ms(percentile(seconds, 50)),
            "p99_ms": ms(percentile(seconds, 99)), "max_ms": ms(max(seconds) if seconds else None)}


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def stat_ticks(stat: Path) -> int | None:
    """utime+stime in clock ticks from a ``/proc/<pid>/stat`` (or ``…/task/<tid>/stat``) file."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def cpu_seconds(pid: int) -> float | None:
    """utime+stime of ``pid`` (its own threads, not its children) in seconds."""
    ticks = stat_ticks(Path(f"/proc/{pid}/stat"))
    return None if ticks is None else ticks / CLOCK_TICKS


BROKER = "rabbitmq"
"""The broker's row among the processes: the whole RabbitMQ node, every vhost."""


def broker_pid() -> int | None:
    """The RabbitMQ server's Erlang VM (``beam.smp`` running ``rabbit``) on this machine, if any.

    It is not one of our processes and serves every vhost, but on this box it spends CPU on every
    message the system moves, so the bench reports it beside the services."""
    found: list[tuple[int, int]] = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() != "beam.smp":
                continue
            if b"rabbit" not in (comm.parent / "cmdline").read_bytes():
                continue
            found.append((rss_kib(int(comm.parent.name)) or 0, int(comm.parent.name)))
        except (OSError, ValueError):
            continue
    return max(found)[1] if found else None  # the server, not a short-lived CLI VM


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all threads), to notice a service that forks workers."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_kib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _run(*cmd: str) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info(repo: Path) -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_kib": _mem_total_kib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "git_head": _run("git", "-C", str(repo), "rev-parse", "HEAD"),
        "git_dirty": bool(_run("git", "-C", str(repo), "status", "--porcelain")),
        "rabbitmq": _run("rabbitmqctl", "-q", "version"),
        "loadavg_start": os.getloadavg(),
    }
