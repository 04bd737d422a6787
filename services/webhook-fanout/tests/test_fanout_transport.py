"""The delivery client's pools: split by origin, one TLS context for all of them."""

from __future__ import annotations

import httpx

from postwire_platform.outbound import OriginShardedTransport
from postwire_webhook_fanout.transport import POOLS, GuardedTransport, make_client


async def test_the_delivery_client_splits_by_origin_and_shares_one_tls_context() -> None:
    """Sixteen pools, each a guarded one; a TLS context apiece would load the CA bundle sixteen times
    more (about 9 MiB of webhook-fanout's RSS before they shared one)."""
    client = make_client(timeout=5.0, allow_private=False, max_connections=200)
    try:
        transport = client._transport
        assert isinstance(transport, OriginShardedTransport)
        pools = transport._transports
        assert len(pools) == POOLS and all(isinstance(p, GuardedTransport) for p in pools)
        contexts = {id(p._pool._ssl_context) for p in pools}  # type: ignore[attr-defined]
        assert len(contexts) == 1
        url = httpx.URL("https://hooks.customer.test/a")
        assert transport.pool_of(url) == transport.pool_of(url.copy_with(path="/b"))
    finally:
        await client.aclose()
