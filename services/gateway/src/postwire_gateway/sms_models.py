"""The HTTP request bodies of the SMS endpoints (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

MAX_BODY_CHARS = 1600
MAX_METADATA_KEYS = 20

MetadataKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MetadataValue = Annotated[str, msgspec.Meta(max_length=500)]


class SendSmsRequest(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/sms/send``."""

    to: str
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_BODY_CHARS)] | None = None
    """The text; or ``templateId`` (+ ``variables``) names a stored SMS template instead."""
    sender_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    flow: Literal["OTP", "STANDARD"] = "STANDARD"
    metadata: Annotated[dict[MetadataKey, MetadataValue],
                        msgspec.Meta(max_length=MAX_METADATA_KEYS)] = {}
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    expires_at: datetime | None = None
    template_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    template_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    variables: Annotated[dict[str, Any], msgspec.Meta(max_length=200)] = {}
    """Not to be sent after this; an OTP without one expires 5 minutes after acceptance."""
