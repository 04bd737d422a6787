"""``python -m postwire_gateway``: settings from the environment, then serve the public HTTP API."""

from __future__ import annotations

from postwire_platform.cli_main import run_service

from .app import create_app
from .settings import GatewaySettings


def main() -> None:
    """Run the gateway until SIGTERM/SIGINT."""
    run_service(GatewaySettings, create_app)


if __name__ == "__main__":
    main()
