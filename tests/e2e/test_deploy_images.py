"""What each service's image installs, checked without a Docker engine.

deploy/Dockerfile runs `uv sync --frozen --no-dev --no-editable --package postwire-<service>`; here the
same command builds a virtualenv per service, which must be enough to import and configure the service
(an import of a package the service does not declare fails here, as it would in the image).
docker-compose.yml must run every service from that Dockerfile against RabbitMQ and MongoDB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

SERVICES = ["gateway", "provider-ingest", "email-dispatcher", "sms-dispatcher",
            "whatsapp-dispatcher", "webhook-fanout", "reporting"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_install_of_each_service_is_self_sufficient(
    service: str, repo_root: Path, tmp_path: Path
) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "sync", "--frozen", "--no-dev", "--no-editable", "--quiet", "--package",
                    f"postwire-{service}"], cwd=repo_root, env=env, check=True, timeout=300)
    module = "postwire_" + service.replace("-", "_")
    probe = (f"import {module}.app, {module}.__main__; "
             "import importlib.util as u; "
             "assert u.find_spec('secantus') is None, 'a dev-only dependency leaked into the image'")
    subprocess.run([str(venv / "bin" / "python"), "-c", probe], check=True, timeout=120)
    bad = subprocess.run([str(venv / "bin" / f"postwire-{service}")], capture_output=True, text=True,
                         env={**env, "HTTP_PORT": "x"}, timeout=60)
    assert bad.returncode == 2 and "HTTP_PORT" in bad.stderr


def test_compose_runs_every_service_from_the_dockerfile_on_rabbitmq_and_mongodb(
    repo_root: Path,
) -> None:
    compose = yaml.safe_load((repo_root / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"rabbitmq", "mongodb"} <= set(services)
    assert "--replSet" in services["mongodb"]["command"]
    for name in SERVICES:
        spec = services[name]
        assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
        assert spec["build"]["args"]["SERVICE"] == name
        assert spec["environment"]["AMQP_URL"].startswith("amqp://")
        assert spec["environment"]["MONGODB_URL"].startswith("mongodb://mongodb:27017/")
        assert spec["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert spec["depends_on"]["mongodb"]["condition"] == "service_healthy"
        assert spec["restart"] == "unless-stopped"
        assert "/readyz" in " ".join(spec["healthcheck"]["test"])
    dockerfile = (repo_root / "deploy" / "Dockerfile").read_text()
    assert 'uv sync --frozen --no-dev --no-editable --package "postwire-${SERVICE}"' in dockerfile
