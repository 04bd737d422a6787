"""Real servers for tests: a RabbitMQ vhost of their own and a SecantusDB process.

Order of preference, as the brief asks: ``AMQP_URL``/``MONGODB_URL`` from the environment, then
testcontainers where a Docker engine exists (not here), then the local RabbitMQ and an embedded SecantusDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit, urlunsplit

import uvicorn


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


class Served:
    """Context-manager plumbing for test servers with blocking ``start()``/``stop()``."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


SECANTUS_STANDALONE = "--standalone"
"""SecantusDB without its replica-set persona, as ``make run`` starts it: no oplog entry is written
for each write (a BSON copy of the whole new document per update: about a quarter of an update's
server CPU, docs/performance.md, change 21). Postwire uses neither transactions nor change streams."""


class SecantusProcess:
    """A standalone SecantusDB server on a free port with its own storage directory.

    ``replica_set=True`` keeps SecantusDB's default one-member replica set (oplog written), for a
    comparison only.
    """

    def __init__(self, port: int | None = None, storage: str | None = None,
                 *, replica_set: bool = False) -> None:
        self.port = port or free_port()
        self.replica_set = replica_set
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
             "--storage-path", str(self.storage), "--log-level", "WARNING",
             *(() if self.replica_set else (SECANTUS_STANDALONE,))],
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


class ThreadedServer(Served):
    """Any ASGI app served by uvicorn on 127.0.0.1 (a free port) in a thread with its own loop."""

    def __init__(self, app: Any, *, lifespan: Literal["auto", "on", "off"] = "on",
                 port: int = 0) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                lifespan=lifespan, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if not self._port:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start serving (lifespan included) and return once it accepts connections."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()),
                                        name="threaded-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        self._port = self._server.servers[0].sockets[0].getsockname()[1]

    def stop(self, timeout: float = 30.0) -> None:
        """Ask uvicorn to exit (running the lifespan shutdown) and wait for the thread."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=timeout)
        self._thread = None

