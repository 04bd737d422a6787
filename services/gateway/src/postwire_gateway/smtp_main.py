"""``postwire-smtp``: the SMTP submission listener, its own process (and deployment) of the gateway.

It shares the gateway's accept path (same package), serves ``/healthz``, ``/readyz`` and ``/metrics`` on
``HTTP_PORT`` (default 8087) and SMTP on ``SMTP_PORT`` (default 587) with STARTTLS required before AUTH.
Without ``SMTP_TLS_CERT_FILE``/``SMTP_TLS_KEY_FILE`` it makes a self-signed certificate at start-up
(development; production mounts a real one).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import msgspec
from litestar import Litestar

from postwire_platform.cli_main import run_service
from postwire_platform.clock import Clock, utcnow
from postwire_platform.mongo import API_KEYS, DOMAINS, MESSAGES, SUPPRESSIONS, TENANTS
from postwire_platform.service import Runtime, build_app, new_broker
from postwire_platform.settings import SettingsError
from postwire_platform.tls import server_context

from .context import Gateway
from .email_services import EmailServices
from .settings import GatewaySettings
from .smtp_submission import start_listener

log = logging.getLogger(__name__)

LISTENER = "smtp_listener"


class SmtpSettings(GatewaySettings, frozen=True, kw_only=True):
    """The gateway's settings plus the listener's."""

    service_name: str = "smtp"
    http_port: int = 8087
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    smtp_hostname: str = "localhost"
    """The name the server greets with (and the self-signed certificate's)."""
    smtp_tls_cert_file: str = ""
    smtp_tls_key_file: str = ""
    smtp_max_message_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 5 * 1024 * 1024


def create_app(settings: SmtpSettings, *, clock: Clock | None = None) -> Litestar:
    """The listener's app: health routes, the gateway's accept path, SMTP on ``SMTP_PORT``."""
    if bool(settings.smtp_tls_cert_file) != bool(settings.smtp_tls_key_file):
        raise SettingsError("SMTP_TLS_CERT_FILE: give both SMTP_TLS_CERT_FILE and SMTP_TLS_KEY_FILE "
                            "or neither")
    try:
        tls = server_context(settings.smtp_tls_cert_file, settings.smtp_tls_key_file,
                             hostname=settings.smtp_hostname)
    except OSError as exc:
        raise SettingsError(f"SMTP_TLS_CERT_FILE: cannot load the certificate: {exc}") from None
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    gateway = Gateway.create(runtime, settings, clock or utcnow)
    EmailServices.create(runtime, settings)

    async def start(rt: Runtime) -> None:
        await gateway.start()
        rt.extras[LISTENER] = await start_listener(
            gateway, host=settings.smtp_host, port=settings.smtp_port, tls=tls,
            max_bytes=settings.smtp_max_message_bytes, hostname=settings.smtp_hostname)
        log.info("SMTP submission listening", extra={"port": settings.smtp_port})

    async def stop(rt: Runtime) -> None:
        server: asyncio.Server | None = rt.extras.pop(LISTENER, None)
        if server is not None:
            server.close()
            try:
                async with asyncio.timeout(settings.shutdown_timeout):
                    await server.wait_closed()
            except TimeoutError:
                log.warning("SMTP sessions still open at shutdown")
        await gateway.stop()

    app = build_app(runtime, collections=[TENANTS, API_KEYS, MESSAGES, SUPPRESSIONS, DOMAINS],
                    on_start=[start], on_stop=[stop])
    app.state.gateway = gateway
    return app


def main() -> None:
    """Run the SMTP submission listener until SIGTERM."""
    run_service(SmtpSettings, create_app)


if __name__ == "__main__":
    main()
