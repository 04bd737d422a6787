"""Inbound keywords: STOP and friends opt out, START and friends opt back in, HELP asks for help.

Only a message that is exactly one keyword counts ("STOP PLEASE" does not): trim, upper-case, strip
punctuation, then compare. The lists are configurable per sender (``Keywords.for_sender``).
"""

from __future__ import annotations

import unicodedata
from typing import Literal

import msgspec

Intent = Literal["opt_out", "opt_in", "help"]

OPT_OUT: tuple[str, ...] = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                            "OPTOUT")
OPT_IN: tuple[str, ...] = ("START", "YES", "UNSTOP")
HELP: tuple[str, ...] = ("HELP", "INFO")


def normalise(text: str) -> str:
    """Trimmed, upper-cased, without punctuation or symbols (``" Stop! "`` → ``"STOP"``)."""
    kept = "".join(c for c in unicodedata.normalize("NFKC", text)
                   if not unicodedata.category(c).startswith(("P", "S", "C")) or c.isspace())
    return kept.strip().upper()


class KeywordList(msgspec.Struct, frozen=True, kw_only=True):
    """The words of one sender (or the default)."""

    opt_out: list[str] = msgspec.field(default_factory=lambda: list(OPT_OUT))
    opt_in: list[str] = msgspec.field(default_factory=lambda: list(OPT_IN))
    help: list[str] = msgspec.field(default_factory=lambda: list(HELP))

    def intent(self, text: str) -> Intent | None:
        """What an inbound ``text`` asks for, or None when it is not exactly one keyword."""
        word = normalise(text)
        if not word or any(c.isspace() for c in word):
            return None
        if word in {normalise(w) for w in self.opt_out}:
            return "opt_out"
        if word in {normalise(w) for w in self.opt_in}:
            return "opt_in"
        if word in {normalise(w) for w in self.help}:
            return "help"
        return None


class Keywords(msgspec.Struct, frozen=True, kw_only=True):
    """Default lists plus per-sender overrides (``SMS_KEYWORDS`` JSON:
    ``{"default": {...}, "senders": {"Postwire": {"opt_out": [...], ...}}}``)."""

    default: KeywordList = msgspec.field(default_factory=KeywordList)
    senders: dict[str, KeywordList] = {}

    def for_sender(self, sender: str | None) -> KeywordList:
        """The lists of ``sender`` (matched case-insensitively, ``+`` ignored), else the default."""
        if sender:
            wanted = sender.lstrip("+").lower()
            for name, words in self.senders.items():
                if name.lstrip("+").lower() == wanted:
                    return words
        return self.default

    def intent(self, text: str, sender: str | None = None) -> Intent | None:
        """``for_sender(sender).intent(text)``."""
        return self.for_sender(sender).intent(text)
