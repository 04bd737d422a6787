"""A RabbitMQ node of the fault suite's own, so a scenario can stop and restart "RabbitMQ" without
touching the machine's shared broker (other test runs use it at the same time).

The Debian package's server script runs as any user when called directly
(``/usr/lib/rabbitmq/bin/rabbitmq-server``); everything the node writes (Mnesia, logs, the Erlang
cookie through ``HOME``) lives in a temporary directory, on its own AMQP and distribution ports and
node name. The script's PID is the node's: SIGTERM makes it run ``rabbitmqctl stop`` and exit.
Messages survive a restart (durable queues, persistent messages), as in production.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from postwire_testing.servers import free_port, wait_for_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


def available() -> bool:
    """True when a private node can be started here (the Debian scripts are installed)."""
    return SERVER.exists() and CTL.exists() and shutil.which("erl") is not None


class RabbitNode:
    """One private RabbitMQ node: ``start``, ``stop`` (graceful), ``kill`` (SIGKILL), ``start`` again."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pwfaults-rabbit-"))
        self.name = f"pwfaults{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        (self.base / "enabled_plugins").write_text("[].\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        b = self.base
        return {
            **os.environ,
            "HOME": str(b),  # the Erlang cookie is made and read here
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
            "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(b / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(b / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(b / "rabbit.pid"),
        }

    def start(self, timeout: float = 180.0) -> None:
        """Start the node and return once it accepts AMQP connections and has booted."""
        assert self.proc is None or self.proc.poll() is not None, "node already running"
        self.proc = subprocess.Popen([str(SERVER)], env=self._env(), cwd=self.base,
                                     stdout=(self.base / "server.out").open("ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        wait_for_port("127.0.0.1", self.port, timeout=timeout)
        while True:
            done = subprocess.run([str(CTL), "-q", "-n", self.name, "await_startup"],
                                  env=self._env(), capture_output=True, timeout=timeout)
            if done.returncode == 0:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private RabbitMQ node did not start: {self.log_tail()}")
            time.sleep(0.5)

    def stop(self, timeout: float = 120.0) -> None:
        """Graceful stop (SIGTERM to the server script, which stops the node) and wait for the exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the node's whole process group (the script, the Erlang VM and its helpers)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` against this node; its standard output."""
        done = subprocess.run([str(CTL), "-q", "-n", self.name, *args], env=self._env(),
                              capture_output=True, text=True, timeout=120, check=True)
        return done.stdout

    def log_tail(self, lines: int = 30) -> str:
        path = self.base / "server.out"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"

    def close(self) -> None:
        """Stop the node and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
