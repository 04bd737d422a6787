"""Open and click tracking: a signed pixel and signed redirect links, pointing at provider-ingest.

Tokens are ``postwire_platform.signed_tokens`` (HMAC): ``{"k": "o", "m": <message id>}`` for the pixel,
``{"k": "c", "m": <message id>, "u": <target>}`` for a link; provider-ingest verifies them with the same
secret and redirects only to the URL the token carries. Only ``http(s)`` links are rewritten.
"""

from __future__ import annotations

import html
import re

from postwire_platform import signed_tokens

_LINK = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def open_url(base_url: str, secret: str, message_id: str) -> str:
    token = signed_tokens.sign(secret, {"k": "o", "m": message_id})
    return f"{base_url.rstrip('/')}/v1/track/open/{token}.gif"


def click_url(base_url: str, secret: str, message_id: str, target: str) -> str:
    token = signed_tokens.sign(secret, {"k": "c", "m": message_id, "u": target})
    return f"{base_url.rstrip('/')}/v1/track/click/{token}"


def rewrite_links(body: str, base_url: str, secret: str, message_id: str) -> str:
    """Every ``<a href="http(s)://…">`` in ``body`` through the click redirect."""
    def swap(match: re.Match[str]) -> str:
        target = html.unescape(match.group(3)).strip()
        if not target.lower().startswith(("http://", "https://")):
            return match.group(0)
        tracked = click_url(base_url, secret, message_id, target)
        return f"{match.group(1)}{match.group(2)}{html.escape(tracked)}{match.group(2)}"
    return _LINK.sub(swap, body)


def add_pixel(body: str, pixel_url: str) -> str:
    """``body`` with a 1×1 image at the end of ``<body>`` (or appended)."""
    image = (f'<img src="{html.escape(pixel_url)}" width="1" height="1" alt="" '
             'style="display:block;border:0;width:1px;height:1px" />')
    ends = list(_BODY_END.finditer(body))
    if not ends:
        return body + image
    at = ends[-1].start()
    return body[:at] + image + body[at:]
