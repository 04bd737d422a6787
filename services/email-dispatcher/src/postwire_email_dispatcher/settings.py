"""Settings of the email dispatcher."""

from __future__ import annotations

from postwire_platform.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    service_name: str = "email-dispatcher"
    http_port: int = 8082
