"""``GET``/``PATCH /v1/account/whatsapp-cloud-line``: the tenant's own Meta phone number and token.

Stored on ``tenants.whatsapp_line`` (docs/architecture.md): ``phone_number_id`` (unique across tenants,
sparse index), ``access_token`` sealed with ``SECRET_KEYS`` (context
``tenants.whatsapp_line.access_token:<tenant id>``), ``access_token_hint`` (its last four characters, all
that is ever shown), ``updated_at``, and ``needs_attention`` set by whatsapp-dispatcher when Meta rejects
the token (error 190). Storing a new token or number clears ``needs_attention``. ``null`` clears a
value (``$unset``: a null id would collide in the unique index). Without a phone number id the tenant
sends on the platform's default line. Reads need ``members:read``; changes ``members:write``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, patch
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from postwire_platform.errors import ApiError, unavailable
from postwire_platform.mongo import TENANTS, Document
from postwire_platform.secrets_at_rest import Keyring

from .availability import mongo_guard
from .context import Gateway, gateway_of
from .decoding import decode_body
from .views import iso

PATH = "/v1/account/whatsapp-cloud-line"
IN_USE = "WHATSAPP_PHONE_NUMBER_ID_IN_USE"

PhoneNumberId = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{5,32}$")]
AccessToken = Annotated[str, msgspec.Meta(min_length=8, max_length=4096, pattern=r"^\S+$")]


class LinePatch(msgspec.Struct, rename="camel", kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Either field or both; ``null`` clears it, an absent field is left as it is."""

    whatsapp_phone_number_id: PhoneNumberId | msgspec.UnsetType | None = msgspec.UNSET
    whatsapp_access_token: AccessToken | msgspec.UnsetType | None = msgspec.UNSET


def token_context(tenant_id: str) -> str:
    return f"tenants.whatsapp_line.access_token:{tenant_id}"


@get(PATH, summary="The tenant's WhatsApp Cloud API line", tags=["Account"], opt={"page": False})
async def get_whatsapp_line(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's own phone number id (or the platform default in use), never the token."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "members:read")
    async with mongo_guard("reading the WhatsApp line"):
        tenant = await gateway.runtime.db[TENANTS].find_one({"_id": principal.tenant_id},
                                                            projection=["whatsapp_line"])
    return {"success": True, "data": line_view(gateway, tenant)}


@patch(PATH, summary="Set or clear the tenant's WhatsApp Cloud API line", tags=["Account"],
       opt={"body": LinePatch})
async def patch_whatsapp_line(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Store the tenant's phone number id and/or access token (sealed); ``null`` clears one.

    409 ``WHATSAPP_PHONE_NUMBER_ID_IN_USE`` when another tenant (or the platform) holds the number.
    """
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "members:write")
    body = decode_body(await request.body(), LinePatch)
    phone, token = body.whatsapp_phone_number_id, body.whatsapp_access_token
    if phone is msgspec.UNSET and token is msgspec.UNSET:
        raise ApiError(422, "validation_error",
                       "give whatsappPhoneNumberId and/or whatsappAccessToken (null clears one)",
                       field="whatsappPhoneNumberId")
    tenant_id = principal.tenant_id
    now = gateway.clock()
    sets: Document = {"whatsapp_line.updated_at": now}
    unsets: Document = {}
    if isinstance(phone, str):
        await _check_free(gateway, tenant_id, phone)
        sets["whatsapp_line.phone_number_id"] = phone
    elif phone is None:
        unsets["whatsapp_line.phone_number_id"] = ""
    if isinstance(token, str):
        sets["whatsapp_line.access_token"] = _keyring(request).encrypt(
            token, context=token_context(tenant_id))
        sets["whatsapp_line.access_token_hint"] = token[-4:]
    elif token is None:
        unsets["whatsapp_line.access_token"] = ""
        unsets["whatsapp_line.access_token_hint"] = ""
    if isinstance(phone, str) or isinstance(token, str):
        sets["whatsapp_line.needs_attention"] = False
        unsets["whatsapp_line.attention_reason"] = ""
        unsets["whatsapp_line.attention_at"] = ""
    update: Document = {"$set": sets}
    if unsets:
        update["$unset"] = unsets
    try:
        async with mongo_guard("storing the WhatsApp line"):
            tenant = await gateway.runtime.db[TENANTS].find_one_and_update(
                {"_id": tenant_id}, update, projection=["whatsapp_line"],
                return_document=ReturnDocument.AFTER)
    except DuplicateKeyError:
        raise _in_use(str(phone)) from None
    return {"success": True, "data": line_view(gateway, tenant)}


def line_view(gateway: Gateway, tenant: Document | None) -> dict[str, Any]:
    """The line as the API shows it: a hint of the token at most."""
    line = (tenant or {}).get("whatsapp_line") or {}
    phone = line.get("phone_number_id")
    return {
        "whatsappPhoneNumberId": phone,
        "usesPlatformDefault": not phone,
        "platformLineConfigured": bool(gateway.settings.whatsapp_phone_number_id),
        "accessTokenConfigured": bool(line.get("access_token")),
        "accessTokenHint": f"…{line['access_token_hint']}" if line.get("access_token_hint") else None,
        "needsAttention": bool(line.get("needs_attention")),
        "attentionReason": line.get("attention_reason"),
        "updatedAt": iso(line.get("updated_at")),
    }


async def _check_free(gateway: Gateway, tenant_id: str, phone: str) -> None:
    if phone == gateway.settings.whatsapp_phone_number_id:
        raise _in_use(phone)
    async with mongo_guard("checking the phone number id"):
        holder = await gateway.runtime.db[TENANTS].find_one(
            {"whatsapp_line.phone_number_id": phone, "_id": {"$ne": tenant_id}}, projection=["_id"])
    if holder is not None:
        raise _in_use(phone)


def _in_use(phone: str) -> ApiError:
    return ApiError(409, IN_USE, f"the phone number id {phone} is already in use by another account")


def _keyring(request: Request[Any, Any, Any]) -> Keyring:
    keyring: Keyring | None = getattr(request.app.state, "whatsapp_keyring", None)
    if keyring is None:
        raise unavailable("secret storage (SECRET_KEYS is not configured)")
    return keyring


WHATSAPP_LINE_ROUTES = [get_whatsapp_line, patch_whatsapp_line]
