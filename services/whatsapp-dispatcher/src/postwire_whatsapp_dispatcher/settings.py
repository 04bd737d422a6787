"""Settings of the whatsapp dispatcher."""

from __future__ import annotations

from postwire_platform.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    service_name: str = "whatsapp-dispatcher"
    http_port: int = 8084
