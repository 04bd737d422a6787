"""``python -m postwire_whatsapp_dispatcher``: settings from the environment, then serve."""

from __future__ import annotations

import sys

from litestar import Litestar

from postwire_platform.cli_main import run_service
from postwire_platform.settings import SettingsError

from .app import create_app
from .settings import Settings


def _checked(settings: Settings) -> Litestar:
    try:
        return create_app(settings)
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from None


def main() -> None:
    """Run whatsapp-dispatcher until SIGTERM."""
    run_service(Settings, _checked)


if __name__ == "__main__":
    main()
