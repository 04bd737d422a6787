"""The SPEC's paged list, for every list endpoint: ``page``, ``pageSize`` (max 100, over that 422)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from postwire_platform.mongo import Document

from .availability import mongo_guard
from .decoding import int_param
from .views import pagination

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def page_params(query: Mapping[str, Any]) -> tuple[int, int]:
    """(page, pageSize) from the query string; 422 naming a bad one."""
    page = int_param(query, "page", default=1, minimum=1)
    size = int_param(query, "pageSize", default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
    return page, size


async def paged(collection: AsyncCollection[Document], criteria: Document, query: Mapping[str, Any],
                view: Callable[[Document], dict[str, Any]], *,
                sort: list[tuple[str, int]] | None = None,
                projection: dict[str, bool] | None = None) -> dict[str, Any]:
    """``{"data": [...], "pagination": {...}}`` of ``criteria``, newest first by default."""
    page, size = page_params(query)
    order = sort or [("created_at", DESCENDING), ("_id", DESCENDING)]
    async with mongo_guard("listing"):
        cursor = (collection.find(criteria, projection=projection).sort(order)
                  .skip((page - 1) * size).limit(size))
        docs, total = await asyncio.gather(cursor.to_list(), collection.count_documents(criteria))
    return {"data": [view(d) for d in docs], "pagination": pagination(page, size, total)}
