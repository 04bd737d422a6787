"""webhook-fanout refuses settings it cannot work with, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from postwire_platform.secrets_at_rest import generate_key
from postwire_platform.settings import SettingsError, load_settings
from postwire_webhook_fanout.app import create_app
from postwire_webhook_fanout.settings import DEFAULT_RETRY_DELAYS, Settings


def test_the_defaults_are_the_standard_webhooks_schedule_and_no_private_targets() -> None:
    settings = load_settings(Settings, {"SECRET_KEYS": f'["{generate_key()}"]'})
    assert settings.webhook_retry_delays == DEFAULT_RETRY_DELAYS
    assert len(settings.webhook_retry_delays) + 1 == 10  # ten attempts in all
    assert settings.webhook_timeout == 15 and settings.webhook_allow_private is False
    assert settings.declared_delays() == sorted({2.0, *DEFAULT_RETRY_DELAYS})


def test_without_secret_keys_it_does_not_start() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEYS"):
        create_app(Settings())


@pytest.mark.parametrize(("env", "var"), [
    ({"WEBHOOK_RETRY_JITTER": "1.5"}, "WEBHOOK_RETRY_JITTER"),
    ({"WEBHOOK_RETRY_DELAYS": "[5, 0]"}, "WEBHOOK_RETRY_DELAYS"),
    ({"WEBHOOK_ENDPOINT_CONCURRENCY": "0"}, "WEBHOOK_ENDPOINT_CONCURRENCY"),
    ({"WEBHOOK_ORDER_WAIT": "-1"}, "WEBHOOK_ORDER_WAIT"),
    ({"WEBHOOK_ATTEMPT_SWEEP_SECONDS": "0"}, "WEBHOOK_ATTEMPT_SWEEP_SECONDS"),
])
def test_a_bad_value_names_its_variable(env: dict[str, str], var: str) -> None:
    settings = load_settings(Settings, {"SECRET_KEYS": f'["{generate_key()}"]', **env})
    with pytest.raises(SettingsError, match=var):
        create_app(settings)


def test_the_service_exits_2_naming_secret_keys_when_it_is_missing() -> None:
    exe = Path(sys.executable).with_name("postwire-webhook-fanout")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEYS"}
    result = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "configuration error: SECRET_KEYS:" in result.stderr
