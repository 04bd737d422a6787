"""What differs between the channels' send and read endpoints; everything else is shared.

A ``ChannelSpec`` validates one send request into a ``Prepared`` message (its document and command) and
shows a stored document on the API. ``sends.py`` and ``reads.py`` build the routes of every channel from
its spec: ``POST /v1/{path}/send``, ``POST /v1/{path}/batch``, ``GET /v1/{path}``, ``GET /v1/{path}/{id}``
and ``GET /v1/{path}/{id}/timeline``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from postwire_contracts.status import Channel
from postwire_platform.ids import new_id
from postwire_platform.mongo import Document

from .accept import Prepared
from .auth import Principal
from .context import Gateway
from .views import iso


class ChannelSpec(ABC):
    """One channel's request type, validation, document and views."""

    channel: ClassVar[Channel]
    path: ClassVar[str]
    """The URL segment: ``sms``, ``emails``, ``whatsapp``."""
    noun: ClassVar[str]
    request_type: ClassVar[type[msgspec.Struct]]
    search_fields: ClassVar[tuple[str, ...]]
    """Document fields the list's ``query`` matches (recipient, body, external id)."""
    filters: ClassVar[tuple[tuple[str, tuple[str, ...], str], ...]] = ()
    """Extra list filters: (query parameter, allowed values, document field)."""

    @property
    def send_scope(self) -> str:
        return f"send:{self.channel.value}"

    @property
    def read_scope(self) -> str:
        return f"read:{self.channel.value}"

    @abstractmethod
    async def prepare(self, gateway: Gateway, principal: Principal, request: Any,
                      message_id: str, now: datetime) -> Prepared:
        """Validate ``request`` (an instance of ``request_type``) into a message; ``ApiError`` if not."""

    @abstractmethod
    def view(self, doc: Document) -> dict[str, Any]:
        """One stored message as ``GET /v1/{path}/{id}`` shows it."""

    def accepted_view(self, doc: Document) -> dict[str, Any]:
        """The send's 201 answer (and a batch item's result)."""
        return self.view(doc)

    async def prepare_all(self, gateway: Gateway, principal: Principal, request: Any,
                          now: datetime) -> list[Prepared]:
        """The messages of one send request: one, except where a channel splits a request (email
        makes one message per recipient, so each has its own status)."""
        return [await self.prepare(gateway, principal, request, new_id(), now)]

    def accepted_views(self, docs: list[Document]) -> dict[str, Any]:
        """The 201 answer for the messages of one send request."""
        return self.accepted_view(docs[0])


def common_view(doc: Document) -> dict[str, Any]:
    """The fields every channel's message view has."""
    return {
        "id": doc["_id"],
        "channel": doc["channel"],
        "status": doc["status"],
        "to": doc["to"],
        "metadata": doc.get("metadata") or {},
        "externalId": doc.get("external_id"),
        "live": doc.get("live", False),
        "providerMessageId": doc.get("provider_message_id"),
        "errorCode": doc.get("error_code"),
        "errorReason": doc.get("error_reason"),
        "acceptedAt": iso(doc.get("accepted_at")),
        "sentAt": iso(doc.get("sent_at")),
        "deliveredAt": iso(doc.get("delivered_at")),
        "readAt": iso(doc.get("read_at")),
        "failedAt": iso(doc.get("failed_at")),
        "updatedAt": iso(doc.get("updated_at")),
    }
