"""`python -m postwire_reporting` / `postwire-reporting`."""

from __future__ import annotations

from postwire_platform.cli_main import run_service

from .app import create_app
from .settings import Settings


def main() -> None:
    """Run the reporting service with settings from the environment."""
    run_service(Settings, create_app)


if __name__ == "__main__":
    main()
