"""Whether a tenant's recipient opted out of a channel: the shared ``opt_outs`` collection (unique
tenant/channel/address), as the dispatchers check it right before a send."""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection

from .batching import Coalescer
from .mongo import Document


class OptOutLookups:
    """The opt-out checks of one channel; those of the deliveries in flight are answered by one
    ``find`` (group commit), not one round trip each."""

    def __init__(self, collection: AsyncCollection[Document], channel: str) -> None:
        self._collection = collection
        self._channel = channel
        self._lookups: Coalescer[tuple[str, str], bool] = Coalescer(
            self._find_many, name=f"{channel}-opt-out-lookups")

    async def opted_out(self, tenant_id: str, address: str) -> bool:
        """True when ``address`` opted out of ``tenant_id``'s messages on this channel."""
        return await self._lookups.submit((tenant_id, address))

    async def _find_many(self, pairs: list[tuple[str, str]]) -> list[bool]:
        tenants = sorted({t for t, _ in pairs})
        addresses = sorted({a for _, a in pairs})
        found: set[tuple[str, str]] = set()
        async for doc in self._collection.find(
                {"tenant_id": tenants[0] if len(tenants) == 1 else {"$in": tenants},
                 "channel": self._channel,
                 "address": addresses[0] if len(addresses) == 1 else {"$in": addresses}},
                projection=["tenant_id", "address"]):
            found.add((doc["tenant_id"], doc["address"]))
        return [pair in found for pair in pairs]
