"""Postwire's template engine, shared by every channel's templates (email, SMS, WhatsApp text).

Jinja2 in its immutable sandbox with strict undefined variables: a template can never reach Python
internals, a variable it needs and was not given fails the render with that variable's name (never a
half-rendered message), and HTML output is autoescaped. Email HTML gets its CSS inlined (css-inline) and
a text part can be derived from it (inscriptis).
"""

from __future__ import annotations

from .engine import (
    MissingVariable,
    RenderError,
    TemplateSyntaxProblem,
    check_syntax,
    render_html,
    render_text,
)
from .html import html_to_text, inline_css

__all__ = [
    "MissingVariable",
    "RenderError",
    "TemplateSyntaxProblem",
    "check_syntax",
    "html_to_text",
    "inline_css",
    "render_html",
    "render_text",
]
