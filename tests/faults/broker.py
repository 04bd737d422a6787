"""The RabbitMQ the fault suite's system talks to, and how a scenario takes it away and gives it back.

Preferred: a private RabbitMQ node (``rabbit_node.RabbitNode``), really stopped and restarted. Where
that cannot run (no local server scripts, e.g. a remote ``AMQP_URL``), the system gets a vhost of its
own on the shared broker and an "outage" cuts it off instead: its permissions are cleared and its
connections closed, so every reconnect is refused until they are restored. ``kind`` says which.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

from postwire_testing.servers import rabbit_vhost

from . import rabbit_node


def _parse(out: str) -> dict[str, int]:
    depths: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1])
    return depths


class PrivateBroker:
    """A RabbitMQ node of the suite's own: an outage is a real stop and start of the server."""

    kind = "private RabbitMQ node, stopped and restarted"

    def __init__(self, node: rabbit_node.RabbitNode) -> None:
        self.node = node
        self.url = node.url

    def list_queues(self) -> dict[str, int]:
        return _parse(self.node.ctl("list_queues", "name", "messages"))

    def go_down(self) -> None:
        self.node.stop()

    def come_back(self) -> None:
        self.node.start()


class SharedBrokerVhost:
    """A vhost on the shared broker: an outage clears its permissions and closes its connections."""

    kind = "shared broker: vhost permissions cleared and connections closed"

    def __init__(self, url: str) -> None:
        self.url = url
        self.vhost = urlsplit(url).path.lstrip("/")

    def _ctl(self, *args: str) -> str:
        done = subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True,
                              text=True, timeout=60)
        return done.stdout

    def list_queues(self) -> dict[str, int]:
        return _parse(self._ctl("list_queues", "-p", self.vhost, "name", "messages"))

    def go_down(self) -> None:
        self._ctl("clear_permissions", "-p", self.vhost, "guest")
        self._ctl("close_all_connections", "--vhost", self.vhost, "postwire fault suite")

    def come_back(self) -> None:
        self._ctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")


Broker = PrivateBroker | SharedBrokerVhost


@contextlib.contextmanager
def fault_broker() -> Iterator[Broker]:
    """A private node when possible (``FAULT_SHARED_BROKER=1`` forces the shared-broker fallback)."""
    if rabbit_node.available() and os.environ.get("FAULT_SHARED_BROKER") != "1":
        node = rabbit_node.RabbitNode()
        try:
            node.start()
            yield PrivateBroker(node)
        finally:
            node.close()
        return
    base = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with rabbit_vhost(base) as url:
        yield SharedBrokerVhost(url)
