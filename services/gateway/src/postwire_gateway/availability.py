"""Turning a dependency that is down into the SPEC's 503, instead of a 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo.errors import PyMongoError

from postwire_platform.errors import unavailable

log = logging.getLogger(__name__)


@asynccontextmanager
async def mongo_guard(action: str) -> AsyncIterator[None]:
    """Run a MongoDB call; any driver error becomes 503 ``service_unavailable`` with Retry-After."""
    try:
        yield
    except PyMongoError as exc:
        log.warning("MongoDB failed during %s: %r", action, exc)
        raise unavailable("MongoDB") from exc

