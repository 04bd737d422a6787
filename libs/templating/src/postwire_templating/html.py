"""HTML for mail clients: CSS inlined into ``style`` attributes, and a plain-text part derived from it."""

from __future__ import annotations

import css_inline
from inscriptis import get_text
from inscriptis.model.config import ParserConfig

_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=False)
_TEXT_CONFIG = ParserConfig(display_links=True, display_images=False)


def inline_css(html: str) -> str:
    """``html`` with its ``<style>`` rules moved into ``style`` attributes (remote sheets not fetched).

    Raises ``ValueError`` when the CSS cannot be processed.
    """
    try:
        return _INLINER.inline(html)
    except css_inline.InlineError as exc:
        raise ValueError(f"the CSS could not be inlined: {exc}") from None


def html_to_text(html: str) -> str:
    """A readable text rendering of ``html``: paragraphs, lists, and links shown with their URL."""
    text: str = get_text(html, _TEXT_CONFIG)
    return text.strip() + "\n"
