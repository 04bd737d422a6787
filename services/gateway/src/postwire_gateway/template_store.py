"""Templates with versions, shared by every channel, and their rendering at send time.

``templates`` {_id "tpl_…", tenant_id, name, channel, description, published_version (int|null),
latest_version, publish_history [versions published before, oldest first], created_at, updated_at};
``template_versions`` {_id "<template id>:<n>", template_id, tenant_id, version, subject, html, text,
note, created_at}: immutable once written, so a version is cached without expiry.

Email renders subject and text as text and HTML autoescaped, inlines the HTML's CSS and derives the text
part from it when the version has none. SMS and WhatsApp versions hold ``text`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from postwire_platform.cache import TtlCache
from postwire_platform.errors import ApiError
from postwire_platform.mongo import TEMPLATE_VERSIONS, TEMPLATES, Document
from postwire_platform.service import Runtime
from postwire_templating import (
    MissingVariable,
    RenderError,
    check_syntax,
    html_to_text,
    inline_css,
    render_html,
    render_text,
)

from .availability import mongo_guard

CHANNELS = ("email", "sms", "whatsapp")


@dataclass(frozen=True)
class Rendered:
    """A template version rendered with a send's variables."""

    template_id: str
    version: int
    subject: str | None
    html: str | None
    text: str | None


def check_content(channel: str, subject: str | None, html: str | None, text: str | None) -> None:
    """422 unless the parts fit the channel and each is a valid template (naming the bad part)."""
    if channel == "email":
        if not subject:
            raise ApiError(422, "validation_error", "an email template needs a subject",
                           field="subject")
        if html is None and text is None:
            raise ApiError(422, "validation_error", "an email template needs html or text",
                           field="html")
    else:
        if subject is not None or html is not None:
            field = "subject" if subject is not None else "html"
            raise ApiError(422, "validation_error", f"a {channel} template has text only",
                           field=field)
        if not text:
            raise ApiError(422, "validation_error", f"a {channel} template needs text", field="text")
    for field, source, as_html in (("subject", subject, False), ("html", html, True),
                                   ("text", text, False)):
        if source is not None:
            try:
                check_syntax(source, html=as_html)
            except RenderError as exc:
                raise ApiError(422, "invalid_template", f"{field}: {exc}", field=field) from None


def render_version(version: Document, channel: str, variables: dict[str, Any]) -> Rendered:
    """Render ``version`` with ``variables``; 422 naming a missing variable, never half-rendered."""
    try:
        subject = render_text(version["subject"], variables) if version.get("subject") else None
        html = render_html(version["html"], variables) if version.get("html") is not None else None
        text = render_text(version["text"], variables) if version.get("text") is not None else None
    except MissingVariable as exc:
        raise ApiError(422, "missing_variable",
                       f"variables: the template needs {exc.name!r}, which was not given ({exc})",
                       field="variables") from None
    except RenderError as exc:
        raise ApiError(422, "template_render_error", f"variables: {exc}", field="variables") from None
    if subject is not None:
        subject = " ".join(subject.split())  # a subject is one line, whatever the template did
    if html is not None and channel == "email":
        try:
            html = inline_css(html)
        except ValueError as exc:
            raise ApiError(422, "template_render_error", str(exc), field="templateId") from None
        if text is None:
            text = html_to_text(html)
    return Rendered(template_id=version["template_id"], version=int(version["version"]),
                    subject=subject, html=html, text=text)


class TemplateStore:
    """Finds a send's template version (cached: versions never change)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._versions: TtlCache[str, Document] = TtlCache(3600.0, max_entries=2000)

    async def for_send(self, tenant_id: str, channel: str, template_id: str,
                       version: int | None, variables: dict[str, Any]) -> Rendered:
        """The rendered version a send names (its published one when ``version`` is None)."""
        db = self._runtime.db
        async with mongo_guard("reading a template"):
            template = await db[TEMPLATES].find_one({"_id": template_id, "tenant_id": tenant_id})
        if template is None:
            raise ApiError(422, "template_not_found", f"no template with id {template_id!r}",
                           field="templateId")
        if template.get("channel") != channel:
            raise ApiError(422, "template_channel_mismatch",
                           f"template {template_id!r} is a {template.get('channel')} template",
                           field="templateId")
        number = version if version is not None else template.get("published_version")
        if number is None:
            raise ApiError(422, "template_not_published",
                           f"template {template_id!r} has no published version; name a version "
                           "or publish one", field="templateId")
        doc = await self.version(template_id, int(number))
        if doc is None:
            raise ApiError(422, "template_version_not_found",
                           f"template {template_id!r} has no version {number}",
                           field="templateVersion")
        return render_version(doc, channel, variables)

    async def version(self, template_id: str, number: int) -> Document | None:
        key = f"{template_id}:{number}"
        cached = self._versions.get(key)
        if cached is not None:
            return cached
        async with mongo_guard("reading a template version"):
            doc = await self._runtime.db[TEMPLATE_VERSIONS].find_one({"_id": key})
        if doc is not None:
            self._versions.put(key, doc)
        return doc
