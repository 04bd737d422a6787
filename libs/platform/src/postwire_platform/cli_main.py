"""The shape of every service's ``__main__``: settings first (a clear error), then the app."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from litestar import Litestar

from .service import serve
from .settings import CommonSettings, SettingsError, load_settings

S = TypeVar("S", bound=CommonSettings)


def run_service(settings_cls: type[S], create_app: Callable[[S], Litestar]) -> None:
    """Load settings from the environment, exit 2 with the variable's name if bad, else serve."""
    try:
        settings = load_settings(settings_cls)
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from None
    serve(create_app(settings), settings)
