"""Every service validates its environment at start-up and names the bad variable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from postwire_testing.system import DevSystem

SERVICES = ["gateway", "provider-ingest", "email-dispatcher", "sms-dispatcher",
            "whatsapp-dispatcher", "webhook-fanout", "reporting"]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(("var", "value"), [("HTTP_PORT", "eighty"), ("SHUTDOWN_TIMEOUT", "soon")])
def test_a_bad_variable_stops_the_service_with_its_name(service: str, var: str, value: str) -> None:
    exe = Path(sys.executable).with_name(f"postwire-{service}")
    result = subprocess.run([str(exe)], env={**os.environ, var: value}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert f"configuration error: {var}:" in result.stderr


async def test_an_idle_keep_alive_connection_outlives_uvicorns_default_five_seconds(
        system: DevSystem) -> None:
    # behind a load balancer that reuses connections idle for up to 60 s, a server closing them at
    # 5 s makes the balancer send into a closing connection (a 502 to the customer)
    host, port = urlsplit(system.info["gateway"]).netloc.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    try:
        for _ in range(2):
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            await asyncio.sleep(6.5)  # past uvicorn's default keep-alive timeout
        assert not reader.at_eof()
    finally:
        writer.close()
