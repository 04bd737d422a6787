"""The shape of every service's ``__main__``: settings first (a clear error), then the app."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from litestar import Litestar

from .service import configure_observability, serve
from .settings import CommonSettings, SettingsError, load_settings

S = TypeVar("S", bound=CommonSettings)


def run_service(settings_cls: type[S], create_app: Callable[[S], Litestar]) -> None:
    """Load settings from the environment, exit 2 with the variable's name if bad, else serve.

    ``create_app`` may raise ``SettingsError`` too (a setting only some services need, such as
    ``SECRET_KEYS``), with the same effect.
    """
    try:
        settings = load_settings(settings_cls)
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from None
    configure_observability(settings)  # tracing is set up before the app is built
    try:
        app = create_app(settings)
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from None
    serve(app, settings)
