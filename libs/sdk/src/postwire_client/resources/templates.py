"""Templates (with versions, publishing, rollback, preview) and sending domains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .._core import (
    AsyncResource,
    Call,
    Endpoint,
    Paginated,
    SyncResource,
    body,
    data_of,
    nothing,
    page_of,
    query,
    segment,
)
from ..models import Domain, Page, RenderedTemplate, Template, TemplateVersion

TemplateChannel = Literal["email", "sms", "whatsapp"]


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _path(template_id: str, *rest: str) -> str:
    return "/".join(("/v1/templates", segment(template_id), *rest))


def create_template(*, name: str, channel: TemplateChannel = "email", description: str | None = None,
                    subject: str | None = None, html: str | None = None, text: str | None = None,
                    publish: bool | None = None, extra_body: Mapping[str, Any] | None = None
                    ) -> Call[Template]:
    """Create a template and its version 1, published unless ``publish=False`` (``POST
    /v1/templates``; ``templates:write``). Content uses ``{{ variables }}`` and conditional blocks;
    ``ConflictError`` when the name is taken."""
    payload = _given(name=name, channel=channel, description=description, subject=subject, html=html,
                     text=text, publish=publish)
    return Call("POST", "/v1/templates", data_of(Template), content=body(payload, extra_body))


def list_templates(*, channel: TemplateChannel | None = None, page: int | None = None,
                   page_size: int | None = None) -> Call[Page[Template]]:
    """The tenant's templates by name."""
    return Call("GET", "/v1/templates", page_of(Template),
                params=query(channel=channel, page=page, pageSize=page_size))


def get_template(template_id: str) -> Call[Template]:
    """A template with the content of its published version (``published``)."""
    return Call("GET", _path(template_id), data_of(Template))


def delete_template(template_id: str) -> Call[None]:
    """Delete a template and its versions (messages already sent keep their content)."""
    return Call("DELETE", _path(template_id), nothing)


def create_version(template_id: str, *, subject: str | None = None, html: str | None = None,
                   text: str | None = None, note: str | None = None, publish: bool | None = None,
                   extra_body: Mapping[str, Any] | None = None) -> Call[TemplateVersion]:
    """Add the next version (``POST /v1/templates/{id}/versions``), published only with
    ``publish=True``."""
    payload = _given(subject=subject, html=html, text=text, note=note, publish=publish)
    return Call("POST", _path(template_id, "versions"), data_of(TemplateVersion),
                content=body(payload, extra_body))


def list_versions(template_id: str, *, page: int | None = None, page_size: int | None = None
                  ) -> Call[Page[TemplateVersion]]:
    """A template's versions, newest first."""
    return Call("GET", _path(template_id, "versions"), page_of(TemplateVersion),
                params=query(page=page, pageSize=page_size))


def get_version(template_id: str, version: int) -> Call[TemplateVersion]:
    return Call("GET", _path(template_id, "versions", str(int(version))), data_of(TemplateVersion))


def publish_version(template_id: str, version: int) -> Call[Template]:
    """Make ``version`` the one sends without a version use."""
    return Call("POST", _path(template_id, "versions", str(int(version)), "publish"), data_of(Template))


def rollback(template_id: str) -> Call[Template]:
    """Publish again the version published before the current one (``ConflictError`` if none)."""
    return Call("POST", _path(template_id, "rollback"), data_of(Template))


def preview(template_id: str, *, variables: Mapping[str, Any] | None = None,
            version: int | None = None) -> Call[RenderedTemplate]:
    """Render the published (or the given) version with ``variables`` as a send would; sends nothing."""
    payload = _given(variables=dict(variables) if variables is not None else None, version=version)
    return Call("POST", _path(template_id, "preview"), data_of(RenderedTemplate), content=body(payload))


class _TemplateOps:
    create = Endpoint(create_template)
    list = Endpoint(list_templates)
    list_all = Paginated(list_templates)
    get = Endpoint(get_template)
    delete = Endpoint(delete_template)
    create_version = Endpoint(create_version)
    versions = Endpoint(list_versions)
    get_version = Endpoint(get_version)
    publish = Endpoint(publish_version)
    rollback = Endpoint(rollback)
    preview = Endpoint(preview)


class Templates(_TemplateOps, SyncResource):
    """``/v1/templates``."""


class AsyncTemplates(_TemplateOps, AsyncResource):
    """``/v1/templates``."""


# --- domains -----------------------------------------------------------------------------------------

def create_domain(*, domain: str) -> Call[Domain]:
    """Add a sending domain (``POST /v1/domains``; ``members:write``): a DKIM key is made and
    ``dns_records`` lists what to publish (DKIM TXT, SPF, return path). ``ConflictError`` when the
    account already has it."""
    return Call("POST", "/v1/domains", data_of(Domain), content=body({"domain": domain}))


def list_domains(*, page: int | None = None, page_size: int | None = None) -> Call[Page[Domain]]:
    return Call("GET", "/v1/domains", page_of(Domain), params=query(page=page, pageSize=page_size))


def get_domain(domain_id: str) -> Call[Domain]:
    return Call("GET", f"/v1/domains/{segment(domain_id)}", data_of(Domain))


def verify_domain(domain_id: str) -> Call[Domain]:
    """Look the DNS records up now (``POST /v1/domains/{id}/verify``): ``verified`` once DKIM and SPF
    are published; ``checks`` says what was found."""
    return Call("POST", f"/v1/domains/{segment(domain_id)}/verify", data_of(Domain))


def delete_domain(domain_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/domains/{segment(domain_id)}", nothing)


class _DomainOps:
    create = Endpoint(create_domain)
    list = Endpoint(list_domains)
    list_all = Paginated(list_domains)
    get = Endpoint(get_domain)
    verify = Endpoint(verify_domain)
    delete = Endpoint(delete_domain)


class Domains(_DomainOps, SyncResource):
    """``/v1/domains``."""


class AsyncDomains(_DomainOps, AsyncResource):
    """``/v1/domains``."""
