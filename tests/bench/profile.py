"""``--profile DIR``: py-spy samples every service (and the database server) during each phase.

For each phase it writes ``DIR/<phase>/<service>.txt`` (py-spy's collapsed stacks) and a summary,
``DIR/<phase>/summary.txt``: per process, the functions with the most samples on the stack
("inclusive") and at the top of it ("own"), so the place where the time goes is read at a glance.
Sampling is at 50 Hz with ``--nonblocking`` (the profiled process is never paused) and ``--gil`` (only
the thread holding the GIL: where CPU goes, not where threads wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections import Counter
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")


class Profiler:
    def __init__(self, directory: Path, pids: dict[str, int], rate: int = 50) -> None:
        self.directory = directory
        self.pids = pids
        self.rate = rate

    @contextlib.asynccontextmanager
    async def phase(self, name: str):  # type: ignore[no-untyped-def]
        out = self.directory / name
        out.mkdir(parents=True, exist_ok=True)
        procs = []
        for service, pid in self.pids.items():
            procs.append(await asyncio.create_subprocess_exec(
                str(PY_SPY), "record", "-p", str(pid), "-r", str(self.rate), "-d", "3600",
                "--nonblocking", "--gil", "-f", "raw", "-o", str(out / f"{service}.txt"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
        try:
            yield
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGINT)
            for proc in procs:
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            (out / "summary.txt").write_text(summarise(out))


def summarise(directory: Path, top: int = 25) -> str:
    """The heaviest functions of every ``*.txt`` collapsed-stack file in ``directory``."""
    parts: list[str] = []
    for path in sorted(directory.glob("*.txt")):
        if path.name == "summary.txt":
            continue
        inclusive: Counter[str] = Counter()
        own: Counter[str] = Counter()
        total = 0
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
        parts.append(f"== {path.stem}: {total} samples")
        parts.append("  inclusive:")
        parts += [f"    {n * 100 / max(total, 1):5.1f}%  {f}" for f, n in inclusive.most_common(top)]
        parts.append("  own:")
        parts += [f"    {n * 100 / max(total, 1):5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(parts) + "\n"
