"""``python -m postwire_sms_dispatcher``: settings from the environment, then serve."""

from __future__ import annotations

from postwire_platform.cli_main import run_service

from .app import create_app
from .settings import SmsDispatcherSettings


def main() -> None:
    """Run sms-dispatcher until SIGTERM."""
    run_service(SmsDispatcherSettings, create_app)


if __name__ == "__main__":
    main()
