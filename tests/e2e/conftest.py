from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from postwire_testing.fake_carrier import FakeCarrier
from postwire_testing.servers import rabbit_vhost
from postwire_testing.system import DevSystem


@pytest.fixture(scope="session")
def carrier() -> Iterator[FakeCarrier]:
    """A real local HTTP carrier that live keys deliver to."""
    with FakeCarrier() as fake:
        yield fake


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory, carrier: FakeCarrier) -> Iterator[DevSystem]:
    """The whole system as ``make run`` starts it, on its own vhost, ports and SecantusDB."""
    base = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with rabbit_vhost(base) as amqp_url:
        dev = DevSystem(tmp_path_factory.mktemp("postwire-dev"), amqp_url=amqp_url, env={
            "SMS_CARRIER_URL": carrier.url,
            "DISPATCH_LEASE_SECONDS": "3",
            "SMS_CARRIER_TIMEOUT": "2",
            "LOG_LEVEL": "INFO",
        })
        dev.start()
        try:
            yield dev
        finally:
            code = dev.stop()
            if code != 0:
                print(dev.read_output())
            assert code == 0, f"postwire dev exited {code}"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
