"""Nagle's algorithm is off on the SMPP binds' sockets (``smpp34`` leaves it on): a ``submit_sm``
behind an unacknowledged ``deliver_sm_resp`` would otherwise wait for the SMSC's delayed ACK
(docs/performance.md, change 24). Real TCP, the local SMSC simulator."""

from __future__ import annotations

import asyncio
import os
import socket

import smpp34

from postwire_sms_dispatcher.nodelay import nodelay_to
from postwire_sms_dispatcher.routes import SmppRoute
from postwire_sms_dispatcher.smpp import SmppCarrier
from postwire_testing.smsc import SmscSimulator


def nagle_off(port: int) -> list[bool]:
    """Per TCP connection of this process to 127.0.0.1:``port``, whether TCP_NODELAY is set."""
    found: list[bool] = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:  # closed meanwhile
            continue
        with sock:
            try:
                peer = sock.getpeername()
            except OSError:
                continue
            if sock.type == socket.SOCK_STREAM and peer == ("127.0.0.1", port):
                found.append(bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
    return found


async def _no_receipts(route: str, event: smpp34.DeliverSmEvent) -> None:
    return None


async def test_every_bind_of_a_route_has_nagle_off() -> None:
    async with SmscSimulator() as smsc:
        route = SmppRoute(host="127.0.0.1", port=smsc.port, system_id="postwire",
                          password="secret", binds=2, reconnect_min=0.1)
        carrier = SmppCarrier("a", route, _no_receipts)
        carrier.start()
        try:
            for bind in carrier.binds:
                await asyncio.wait_for(bind.bound.wait(), 15)
            assert nagle_off(smsc.port) == [True, True]
        finally:
            await carrier.aclose()


async def test_nodelay_to_sets_the_option_on_connections_to_that_address_only() -> None:
    with socket.create_server(("127.0.0.1", 0)) as one, socket.create_server(("127.0.0.1", 0)) as two:
        to_one = socket.create_connection(one.getsockname())
        to_two = socket.create_connection(two.getsockname())
        try:
            assert nagle_off(one.getsockname()[1]) == [False]  # a plain socket has it on
            assert await nodelay_to("localhost", one.getsockname()[1]) == 1
            assert nagle_off(one.getsockname()[1]) == [True]
            assert nagle_off(two.getsockname()[1]) == [False]
            assert await nodelay_to("127.0.0.1", 9) == 0  # nothing connected there
            open_fds = len(os.listdir("/proc/self/fd"))
            for _ in range(20):  # it looks at every descriptor and leaves none open behind it
                await nodelay_to("127.0.0.1", one.getsockname()[1])
            assert len(os.listdir("/proc/self/fd")) == open_fds
        finally:
            to_one.close()
            to_two.close()
