"""The committed OpenAPI document matches the gateway, and the running gateway honours it under fuzzing.

schemathesis generates requests from ``openapi.json`` (a bounded number per operation) against a real
gateway on RabbitMQ and SecantusDB, authenticated with a key holding every scope: no answer may be a 5xx,
and every answer must be documented (status, content type, body schema, headers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pymongo import MongoClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from postwire_gateway.app import create_app
from postwire_gateway.openapi import render
from postwire_gateway.settings import GatewaySettings
from postwire_platform import tenancy
from postwire_platform.ids import new_id
from postwire_platform.secrets_at_rest import generate_key
from postwire_testing.servers import ThreadedServer

COMMITTED = Path(__file__).resolve().parents[3] / "openapi.json"
schema = schemathesis.openapi.from_path(str(COMMITTED))


def test_the_committed_document_is_what_the_gateway_serves() -> None:
    current = render(create_app(GatewaySettings(secret_keys=[generate_key()])))
    assert current == COMMITTED.read_text(), (
        "openapi.json is out of date: run `make openapi` and commit it")


@pytest.fixture(scope="module")
def fuzz_target(amqp_url: str, mongodb_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A running gateway and a key of a tenant with every scope and an approved sender id."""
    db_name = f"pwfuzz_{new_id().lower()}"
    sync = MongoClient(mongodb_url)
    db = sync[db_name]
    tenant_id = new_id("ten_")
    db["tenants"].insert_one({"_id": tenant_id, "name": "Fuzz", "status": "active"})
    key = tenancy.generate_key("test")
    db["api_keys"].insert_one({"_id": new_id("key_"), "tenant_id": tenant_id,
                               "hash": tenancy.hash_key(key), "prefix": key[:12],
                               "scopes": list(tenancy.SCOPES), "mode": "test", "name": "fuzz",
                               "revoked_at": None,
                               "rate_limit": {"per_minute": 1_000_000, "per_second": 100_000}})
    db["sender_ids"].insert_one({"_id": new_id("sid_"), "tenant_id": tenant_id,
                                 "sender_id": "Postwire", "status": "approved"})
    settings_ = GatewaySettings(amqp_url=amqp_url, mongodb_url=mongodb_url,
                                mongodb_database=db_name, log_json=False, log_level="WARNING",
                                whatsapp_cloud_api_enabled=True, secret_keys=[generate_key()],
                                # no name resolution (fuzzed webhook hosts) from the tests
                                webhook_allow_private=True)
    server = ThreadedServer(create_app(settings_))
    server.start()
    try:
        yield server.url, {"Authorization": f"Bearer {key}"}
    finally:
        server.stop()
        sync.drop_database(db_name)
        sync.close()


CHECKS: list[Any] = [not_a_server_error, status_code_conformance, content_type_conformance,
                     response_schema_conformance, response_headers_conformance]


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_answer_is_documented(case: Any,
                                               fuzz_target: tuple[str, dict[str, str]]) -> None:
    base_url, auth = fuzz_target
    case.call_and_validate(base_url=base_url, headers=auth, checks=CHECKS, timeout=30)
