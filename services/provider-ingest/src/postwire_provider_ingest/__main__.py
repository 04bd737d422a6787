"""``python -m postwire_provider_ingest``: settings from the environment, then serve."""

from __future__ import annotations

from postwire_platform.cli_main import run_service

from .app import create_app
from .settings import ProviderIngestSettings


def main() -> None:
    """Run provider-ingest until SIGTERM."""
    run_service(ProviderIngestSettings, create_app)


if __name__ == "__main__":
    main()
