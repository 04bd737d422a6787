"""Opt-out and opt-in keywords of inbound messages.

Only a message that is exactly one keyword counts ("STOP PLEASE" does not): trim, upper-case, strip
punctuation, then compare (protocols.md §2). The lists are configurable (``WHATSAPP_OPT_OUT_KEYWORDS``,
``WHATSAPP_OPT_IN_KEYWORDS`` in provider-ingest).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Literal

OPT_OUT: frozenset[str] = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN: frozenset[str] = frozenset({"START", "YES", "UNSTOP"})

Keyword = Literal["opt_out", "opt_in"]


def normalise(text: str) -> str:
    """Upper-cased ``text`` without punctuation, symbols (emoji included) or surrounding space."""
    kept = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or not unicodedata.category(ch).startswith(("P", "S", "C")))
    return kept.strip().upper()


def classify(text: str | None, *, opt_out: Iterable[str] = OPT_OUT,
             opt_in: Iterable[str] = OPT_IN) -> tuple[Keyword, str] | None:
    """``("opt_out", "STOP")``, ``("opt_in", "START")`` or None when ``text`` is not one keyword."""
    if not text:
        return None
    word = normalise(text)
    if not word or " " in word:
        return None
    if word in {k.upper() for k in opt_out}:
        return "opt_out", word
    if word in {k.upper() for k in opt_in}:
        return "opt_in", word
    return None
