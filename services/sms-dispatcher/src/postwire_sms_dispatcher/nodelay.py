"""TCP_NODELAY on the SMPP binds' sockets, which ``smpp34`` (1.5.0) leaves with Nagle's algorithm on.

With Nagle on, a ``submit_sm`` written while an earlier small write is still unacknowledged (our
``deliver_sm_resp`` to a receipt, say) waits in the kernel until that ACK comes back, and the SMSC's
TCP stack delays pure ACKs (up to 40 ms on Linux). Measured in the bench at 50 msg/s: from the
window slot to the SMSC taking the ``submit_sm``, p50 24 ms and p99 45 ms (docs/performance.md,
change 24). Every other socket Postwire opens already has TCP_NODELAY (asyncio's transports,
PyMongo, aiormq, httpx).

``smpp34`` connects from its Rust core and exposes neither the socket nor an option for it, so after a
bind the process looks for its own TCP connections to the SMSC's address among its open file
descriptors and sets the option on each (idempotent: a second bind to the same SMSC sets it again
on the first). Where the descriptors cannot be listed (no ``/proc/self/fd`` or ``/dev/fd``) nothing is
changed and the bind works as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

log = logging.getLogger(__name__)

_FD_DIRS = ("/proc/self/fd", "/dev/fd")


async def nodelay_to(host: str, port: int) -> int:
    """Set TCP_NODELAY on this process's TCP connections to ``host``:``port``; how many it set."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        log.warning("TCP_NODELAY not set: %s does not resolve (%s)", host, exc)
        return 0
    peers = {(str(info[4][0]), int(info[4][1])) for info in infos}
    return sum(_nodelay_if_to(fd, peers) for fd in _fds())


def _fds() -> list[int]:
    for directory in _FD_DIRS:
        try:
            return [int(n) for n in os.listdir(directory) if n.isdigit()]
        except OSError:
            continue
    return []


def _nodelay_if_to(fd: int, peers: set[tuple[str, int]]) -> bool:
    """Set TCP_NODELAY on ``fd`` if it is a TCP socket connected to one of ``peers``. Works on a
    duplicate of ``fd``: closing it leaves the connection open on ``fd``."""
    try:
        dup = os.dup(fd)
    except OSError:
        return False
    try:
        sock = socket.socket(fileno=dup)
    except OSError:  # not a socket
        os.close(dup)
        return False
    with contextlib.closing(sock):
        try:
            if (sock.family not in (socket.AF_INET, socket.AF_INET6)
                    or sock.type != socket.SOCK_STREAM):
                return False
            peer = sock.getpeername()
            if (str(peer[0]), int(peer[1])) not in peers:
                return False
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            return False
        return True
