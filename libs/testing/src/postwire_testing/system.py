"""The whole system, started exactly as ``make run`` starts it (``postwire dev``), for end-to-end tests."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _ephemeral_start() -> int:
    """Where the kernel's ephemeral (outgoing) ports begin: a port there can be taken by any client
    socket between our check and the service's bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1, below the ephemeral range."""
    top = min(40000, _ephemeral_start()) - count
    for _ in range(200):
        base = random.randint(min(20000, top - 1000), top)
        try:
            socks = []
            for offset in range(count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no block of free ports")


class DevSystem:
    """``postwire dev`` in its own state directory, on its own ports, vhost and database server."""

    def __init__(self, state_dir: Path, *, amqp_url: str, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.state_dir = state_dir
        self.base_port = free_port_block(9)  # 8 services' HTTP ports and SMTP
        self.mongo_port = free_port_block(1)
        self.env = {**os.environ, "AMQP_URL": amqp_url, **(env or {})}
        if not (env or {}).get("MONGODB_URL"):
            self.env.pop("MONGODB_URL", None)  # the launcher's embedded SecantusDB
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.output: list[str] = []

    @property
    def mongodb_url(self) -> str:
        return self.env.get("MONGODB_URL") or (
            f"mongodb://127.0.0.1:{self.mongo_port}/?retryWrites=false")

    def command(self) -> list[str]:
        exe = Path(sys.executable).with_name("postwire")
        return [str(exe), "dev", "--state-dir", str(self.state_dir), "--base-port",
                str(self.base_port), "--mongo-port", str(self.mongo_port)]

    def start(self, timeout: float = 180.0) -> dict[str, Any]:
        """Start and wait (bounded) for the printed curl; returns ``dev.json``."""
        self.proc = subprocess.Popen(self.command(), env=self.env, cwd=self.cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.info = self.wait_started(timeout)
        return self.info

    def wait_started(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                self.output.append(line)
                if line.startswith("curl "):
                    return dict(json.loads((self.state_dir / "dev.json").read_text()))
                continue
            if self.proc.poll() is not None:
                raise RuntimeError("postwire dev exited:\n" + "".join(self.output))
            time.sleep(0.1)
        raise TimeoutError("postwire dev did not print its curl in time:\n" + "".join(self.output))

    def read_output(self) -> str:
        if self.proc is not None and self.proc.stdout is not None:
            try:
                rest = self.proc.stdout.read()
            except (OSError, ValueError):
                rest = None
            if rest:
                self.output.append(rest)
        return "".join(self.output)

    def supervisorctl(self, *args: str) -> str:
        exe = Path(sys.executable).with_name("supervisorctl")
        result = subprocess.run([str(exe), "-c", str(self.state_dir / "supervisord.conf"), *args],
                                capture_output=True, text=True, timeout=30)
        return result.stdout.strip()

    def pid(self, program: str) -> int:
        return int(self.supervisorctl("pid", program))

    def kill9(self, program: str) -> int:
        """SIGKILL one service (supervisord restarts it); returns the killed pid."""
        pid = self.pid(program)
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, program: str, old_pid: int, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.supervisorctl("status", program)
            if "RUNNING" in out:
                pid = self.pid(program)
                if pid != old_pid:
                    return pid
            time.sleep(0.2)
        raise TimeoutError(f"{program} was not restarted")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> int:
        """Signal the launcher and wait for everything it started to stop."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
