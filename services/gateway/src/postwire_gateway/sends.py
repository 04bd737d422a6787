"""``POST /v1/{channel}/send`` and ``POST /v1/{channel}/batch`` for every channel, from its spec."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from postwire_platform.errors import ApiError

from .accept import Prepared
from .auth import Principal
from .channels import ChannelSpec
from .context import Gateway, gateway_of
from .decoding import decode_body, validation_error
from .idempotency import Outcome

MAX_BATCH = 1000


class BatchRequest(msgspec.Struct, kw_only=True, frozen=True):
    """``{"messages": [ … up to 1,000 send bodies … ]}``; each item is validated on its own."""

    messages: list[msgspec.Raw]


def send_route(spec: ChannelSpec) -> HTTPRouteHandler:
    async def handler(request: Request[Any, Any, Any]) -> Response[bytes]:
        gateway = gateway_of(request)
        principal = await gateway.auth.authenticate(request, spec.send_scope)
        body = await request.body()

        async def produce() -> Outcome:
            parsed = decode_body(body, spec.request_type)
            prepared = await spec.prepare_all(gateway, principal, parsed, gateway.clock())
            refusals = await gateway.acceptor.accept_many(prepared)
            refused = next((r for r in refusals if r is not None), None)
            if refused is not None:
                raise refused
            return 201, {"success": True, "data": spec.accepted_views([p.doc for p in prepared])}

        return await gateway.idempotency.run(request, principal.tenant_id, body, produce)

    handler.__name__ = f"send_{spec.channel.value}"
    handler.__doc__ = (f"Queue one {spec.noun}; 201 with the stored message once RabbitMQ confirmed "
                       "the command.")
    return post(f"/v1/{spec.path}/send", status_code=201, summary=f"Send one {spec.noun}",
                tags=[spec.noun], opt={"body": spec.request_type, "idempotent": True})(handler)


def batch_route(spec: ChannelSpec) -> HTTPRouteHandler:
    async def handler(request: Request[Any, Any, Any]) -> Response[bytes]:
        gateway = gateway_of(request)
        principal = await gateway.auth.authenticate(request, spec.send_scope)
        body = await request.body()

        async def produce() -> Outcome:
            batch = decode_body(body, BatchRequest)
            if not 1 <= len(batch.messages) <= MAX_BATCH:
                raise ApiError(422, "validation_error",
                               f"messages must hold 1 to {MAX_BATCH} items", field="messages")
            return 202, await _accept_batch(gateway, principal, spec, batch.messages)

        return await gateway.idempotency.run(request, principal.tenant_id, body, produce)

    handler.__name__ = f"batch_{spec.channel.value}"
    handler.__doc__ = (f"Queue up to {MAX_BATCH} {spec.noun} messages; each item is accepted or refused "
                       "on its own (202 with per-item results).")
    return post(f"/v1/{spec.path}/batch", status_code=202, summary=f"Send a batch of {spec.noun}",
                tags=[spec.noun],
                opt={"body": spec.request_type, "batch_of": True, "idempotent": True})(handler)


async def _accept_batch(gateway: Gateway, principal: Principal, spec: ChannelSpec,
                        items: list[msgspec.Raw]) -> dict[str, Any]:
    gateway.acceptor.require_broker()
    now = gateway.clock()

    async def prepare(raw: msgspec.Raw) -> list[Prepared] | ApiError:
        try:
            try:
                parsed = msgspec.json.decode(raw, type=spec.request_type)
            except msgspec.ValidationError as exc:
                raise validation_error(str(exc)) from None
            return await spec.prepare_all(gateway, principal, parsed, now)
        except ApiError as exc:
            if exc.status == 503:
                raise
            return exc

    outcomes = await asyncio.gather(*(prepare(raw) for raw in items))
    valid = [(i, p) for i, p in enumerate(outcomes) if not isinstance(p, ApiError)]
    flat = [message for _, group in valid for message in group]
    refusals = await gateway.acceptor.accept_many(flat)
    if flat and all(refusal is not None for refusal in refusals):
        first = refusals[0]
        assert first is not None
        raise first  # a dependency is down: nothing was accepted, the whole batch may be retried
    results: list[dict[str, Any]] = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, ApiError):
            results.append({"index": index, **outcome.body()})
    start = 0
    for index, group in valid:
        refusal = next((r for r in refusals[start:start + len(group)] if r is not None), None)
        start += len(group)
        if refusal is None:
            results.append({"index": index, "success": True,
                            "data": spec.accepted_views([p.doc for p in group])})
        else:
            results.append({"index": index, **refusal.body()})
    results.sort(key=lambda r: int(r["index"]))
    ok = sum(1 for r in results if r["success"])
    return {"success": True, "data": {"accepted": ok, "rejected": len(results) - ok,
                                      "results": results}}
