"""Every service validates its environment at start-up and names the bad variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
