"""Rendering: Jinja2's immutable sandbox, strict undefined variables, bounded output.

A template is compiled once per source text (an LRU cache), so a busy template costs one parse. Errors
are raised as ``RenderError`` subclasses whose messages can be shown to the API caller as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NoReturn

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 2_000_000
"""A render that produces more than this is refused (a loop that would blow up the message)."""


class RenderError(ValueError):
    """A template could not be rendered with the variables given; the message says why."""


class MissingVariable(RenderError):
    """The template needs a variable that was not given (``name`` is its name)."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name = name


class TemplateSyntaxProblem(RenderError):
    """The template text is not a valid template (``line`` is where, 1-based, when known)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class _Undefined(StrictUndefined):
    """StrictUndefined that names the missing variable in a ``MissingVariable``."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if not issubclass(self._undefined_exception, UndefinedError):  # the sandbox said no
            raise RenderError(f"the template tried something unsafe: {self._undefined_message}")
        raise MissingVariable(self._undefined_name or "?", self._undefined_message)

    # Every use of an undefined value (printing, testing, iterating, comparing) goes through the hook.
    __str__ = __iter__ = __len__ = __bool__ = __eq__ = __ne__ = __hash__ = (
        _fail_with_undefined_error)
    __contains__ = __getitem__ = __call__ = __getattr__ = (
        _fail_with_undefined_error)


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=_Undefined, autoescape=autoescape,
                                         keep_trailing_newline=True, auto_reload=False)


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Template:
    env = _HTML if html else _TEXT
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateSyntaxProblem(exc.message or "invalid template", exc.lineno) from None


def check_syntax(source: str, *, html: bool = False) -> None:
    """Raise ``TemplateSyntaxProblem`` unless ``source`` is a valid template."""
    _compile(source, html)


def _render(source: str, variables: Mapping[str, Any], html: bool) -> str:
    template = _compile(source, html)
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(dict(variables)):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderError(f"the rendered output exceeds {MAX_OUTPUT_CHARS} characters")
            parts.append(chunk)
    except RenderError:
        raise
    except SecurityError as exc:
        raise RenderError(f"the template tried something unsafe: {exc}") from None
    except TemplateError as exc:
        raise RenderError(f"the template failed: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, OverflowError) as exc:
        raise RenderError(f"the template failed: {type(exc).__name__}: {exc}") from None
    return "".join(parts)


def render_text(source: str, variables: Mapping[str, Any]) -> str:
    """Render a text template (subject, text part, SMS/WhatsApp body): nothing is escaped."""
    return _render(source, variables, html=False)


def render_html(source: str, variables: Mapping[str, Any]) -> str:
    """Render an HTML template: variables are HTML-escaped unless marked ``|safe``."""
    return _render(source, variables, html=True)
