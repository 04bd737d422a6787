"""`python -m postwire_webhook_fanout` / `postwire-webhook-fanout`."""

from __future__ import annotations

from postwire_platform.cli_main import run_service

from .app import create_app
from .settings import Settings


def main() -> None:
    """Run webhook-fanout with settings from the environment."""
    run_service(Settings, create_app)


if __name__ == "__main__":
    main()
