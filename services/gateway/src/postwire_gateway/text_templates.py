"""SMS and WhatsApp text from a stored template (``templateId``, ``templateVersion``, ``variables``).

The same engine and store as email (``template_store``): a send names either its text directly or a
template of its channel, rendered at accept time; a missing variable is 422 naming it, never a
half-rendered message.
"""

from __future__ import annotations

from typing import Any

from postwire_platform.errors import ApiError

from .auth import Principal
from .context import Gateway
from .email_services import email_services


async def text_of(gateway: Gateway, principal: Principal, channel: str, *, direct: str | None,
                  direct_field: str, template_id: str | None, template_version: int | None,
                  variables: dict[str, Any], required: bool = True) -> str | None:
    """The message text: ``direct``, or the named template rendered with ``variables``."""
    if template_id is None:
        if template_version is not None or variables:
            field = "templateVersion" if template_version is not None else "variables"
            raise ApiError(422, "validation_error", f"{field} needs templateId", field=field)
        if direct is None and required:
            raise ApiError(422, "validation_error", f"{direct_field} or templateId is required",
                           field=direct_field)
        return direct
    if direct is not None:
        raise ApiError(422, "validation_error",
                       f"{direct_field} comes from the template; do not send it with templateId",
                       field=direct_field)
    rendered = await email_services(gateway).templates.for_send(
        principal.tenant_id, channel, template_id, template_version, variables)
    if not rendered.text:
        raise ApiError(422, "template_render_error", "the template rendered an empty text",
                       field="variables")
    return rendered.text
