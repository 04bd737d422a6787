"""Every HTTP endpoint of every service that takes a body refuses one over its size limit with 413 in
the error format, before authentication, routing to a resource or reading the body: a stranger on the
internet cannot make a service buffer a large request.

The routes come from each service's own app (every POST, PUT and PATCH it serves); the requests go to
the running system as ``postwire dev`` starts it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from typing import Any

import httpx
import pytest

from postwire_cli.supervisor_conf import SERVICES
from postwire_platform.secrets_at_rest import generate_key
from postwire_platform.settings import CommonSettings, load_settings
from postwire_testing.system import DevSystem

LIMIT = 1_000_000
"""Every service's default ``MAX_BODY_BYTES``."""
WITH_BODY = {"POST", "PUT", "PATCH"}


def routes_of(service: str) -> list[tuple[str, str]]:
    """(method, path) of every route of ``service`` that takes a body, path parameters filled in."""
    package = "postwire_" + service.replace("-", "_")
    settings_module = importlib.import_module(f"{package}.settings")
    [settings_cls] = [c for _, c in inspect.getmembers(settings_module, inspect.isclass)
                      if issubclass(c, CommonSettings) and c.__module__ == settings_module.__name__]
    settings = load_settings(settings_cls, {"SECRET_KEYS": json.dumps([generate_key()])})
    app: Any = importlib.import_module(f"{package}.app").create_app(settings)
    found = []
    for route in app.routes:
        for method in sorted(set(getattr(route, "methods", ())) & WITH_BODY):
            path = re.sub(r"\{[^}:]+:int\}", "1", route.path)
            found.append((method, re.sub(r"\{[^}]+\}", "x1", path)))
    return found


def http_services() -> list[str]:
    return [s for s in SERVICES if s != "smtp"]  # the SMTP listener serves only health over HTTP


def test_the_services_expose_routes_with_bodies() -> None:
    assert len(routes_of("gateway")) >= 20
    assert ("POST", "/v1/webhooks/whatsapp") in routes_of("provider-ingest")


@pytest.mark.parametrize("service", http_services())
async def test_an_oversized_body_is_413_everywhere(service: str, stack: DevSystem) -> None:
    port = stack.base_port + SERVICES.index(service)
    routes = routes_of(service)
    body = b'{"x": "' + b"a" * LIMIT + b'"}'
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for method, path in routes:
            r = await client.request(method, path, content=body,
                                     headers={"Content-Type": "application/json"})
            assert r.status_code == 413, (method, path, r.status_code, r.text[:200])
            assert r.json() == {"success": False, "error": "payload_too_large", "code": 413,
                                "message": r.json()["message"]}, (method, path)
            # just under the limit is not refused for its size
            small = await client.request(method, path, content=b"{}",
                                         headers={"Content-Type": "application/json"})
            assert small.status_code != 413, (method, path)
