"""One running system for the security tests (``postwire dev`` with tracing to a local OTLP receiver),
and two tenants: ``a`` (the demo tenant, whose keys ``postwire dev`` made) and ``b`` (a stranger)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from postwire_testing.otlp import OtlpReceiver
from postwire_testing.servers import rabbit_vhost
from postwire_testing.system import DevSystem
from tests.e2e.helpers import cli


@dataclass(frozen=True)
class TenantKeys:
    tenant_id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpReceiver) -> Iterator[DevSystem]:
    base = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with rabbit_vhost(base) as amqp_url:
        dev = DevSystem(tmp_path_factory.mktemp("postwire-security"), amqp_url=amqp_url,
                        env={**otlp.env(), "LOG_LEVEL": "INFO"})
        dev.start()
        try:
            yield dev
        finally:
            code = dev.stop()
            assert code == 0, dev.read_output()


@pytest.fixture(scope="session")
def tenant_a(stack: DevSystem) -> TenantKeys:
    return TenantKeys(stack.info["tenant_id"], stack.info["api_key"])


@pytest.fixture(scope="session")
def tenant_b(stack: DevSystem) -> TenantKeys:
    url = stack.mongodb_url
    tenant_id = cli(url, "tenants", "create", "Stranger")["id"]
    cli(url, "sender-ids", "approve", "--tenant", tenant_id, "Postwire")
    key = cli(url, "keys", "create", "--tenant", tenant_id, "--scopes", "all",
              "--rate-limit", "100000/10000")["key"]
    return TenantKeys(tenant_id, key)
