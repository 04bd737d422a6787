"""docker-compose.yml validates against the Compose Specification and its wiring holds together.

No Docker engine here (nor in CI), so ``docker compose config`` cannot run: the file is checked against
the compose-spec JSON schema that check-jsonschema vendors, and the references the schema cannot see
(depends_on targets and their healthchecks, volumes, mounted files) are checked by hand.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from postwire_cli.supervisor_conf import SERVICES


@pytest.fixture(scope="module")
def compose(repo_root: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((repo_root / "docker-compose.yml").read_text()))


def compose_schema() -> dict[str, Any]:
    path = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return dict(json.loads(path.read_text()))


def test_the_compose_file_validates_against_the_compose_specification(
        compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["gateway"]["depends_on"]["rabbitmq"]["condition"] = "service_ready"
    broken["services"]["gateway"]["healthcheck"]["retries"] = "six"
    validator = jsonschema.Draft202012Validator(compose_schema())
    assert len(list(validator.iter_errors(broken))) >= 2


def test_the_whole_stack_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"rabbitmq", "mongodb", "otel-collector", "tempo", "prometheus", "grafana"} <= set(services)
    assert set(SERVICES) <= set(services)
    assert services["rabbitmq"]["image"].endswith("-management")
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert env["SERVICE_NAME"] == name
        assert services[name]["read_only"] is True


def test_every_dependency_exists_and_waits_on_a_real_condition(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in services.items():
        for target, how in (spec.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} would never complete"


def test_volumes_and_mounted_files_exist(compose: dict[str, Any], repo_root: Path) -> None:
    named = set(compose.get("volumes") or {})
    for name, spec in compose["services"].items():
        for volume in spec.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (repo_root / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named, f"{name} uses undeclared volume {source}"


def test_required_variables_are_the_documented_ones(repo_root: Path) -> None:
    text = (repo_root / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required == {"SECRET_KEYS"}
    assert "SECRET_KEYS" in (repo_root / "docs" / "operations.md").read_text()
