"""Real servers for tests: a RabbitMQ vhost of their own and a SecantusDB process.

Order of preference, as the brief asks: ``AMQP_URL``/``MONGODB_URL`` from the environment, then
testcontainers where a Docker engine exists (not here), then the local RabbitMQ and an embedded SecantusDB.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    """Bounded poll until something accepts connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def rabbit_vhost(base_url: str = "amqp://guest:guest@127.0.0.1:5672/") -> Iterator[str]:
    """A fresh vhost on the local RabbitMQ, deleted afterwards, so tests never see each other's queues.

    Falls back to the URL as given when ``rabbitmqctl`` is not available (remote broker).
    """
    if shutil.which("rabbitmqctl") is None:
        yield base_url
        return
    name = f"pwtest-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", name)
    parts = urlsplit(base_url)
    user = parts.username or "guest"
    _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            _rabbitmqctl("delete_vhost", name)


class SecantusProcess:
    """A standalone SecantusDB server on a free port with its own storage directory."""

    def __init__(self, port: int | None = None, storage: str | None = None) -> None:
        self.port = port or free_port()
        self._tmp = None if storage else tempfile.mkdtemp(prefix="secantus-")
        self.storage = storage or self._tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false"

    def start(self) -> None:
        exe = Path(sys.executable).with_name("secantusd-py")
        self.proc = subprocess.Popen(
            [str(exe), "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", str(self.storage), "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port, timeout=60)

    def stop(self) -> None:
        """SIGTERM and wait for exit before the storage goes (WiredTiger panics otherwise)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


@contextlib.contextmanager
def mongodb_server() -> Iterator[str]:
    """``MONGODB_URL`` if set, else a SecantusDB process for the duration."""
    if os.environ.get("MONGODB_URL"):
        yield os.environ["MONGODB_URL"]
        return
    server = SecantusProcess()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
