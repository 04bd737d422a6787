"""SMTP answers and what they mean for a message (RFC 5321 reply codes, RFC 3463 enhanced codes).

2yz: accepted. 4yz: try again later (then a soft bounce). 5yz: a hard bounce, except X.2.2 (mailbox
full), which is temporary in practice. A suppression follows only when the address itself is bad
(5.1.x), never for a policy block (5.7.1) or content problem: the same address may work tomorrow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["accepted", "transient", "permanent"]

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")

SUPPRESSING: frozenset[str] = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10"})
"""Enhanced codes that say the address cannot exist: bad mailbox, bad domain, bad syntax, moved,
null MX."""


@dataclass(frozen=True)
class SmtpAnswer:
    """One reply of a server (or our own verdict when there was none, e.g. a connection failure)."""

    code: int
    text: str
    stage: str = "data"
    """Where it came: connect, ehlo, mail, rcpt, data."""

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 status (``5.1.1``) at the start of the text, if any."""
        match = _ENHANCED.search(self.text[:40])
        return ".".join(match.groups()) if match else None

    @property
    def verdict(self) -> Verdict:
        if 200 <= self.code < 300:
            return "accepted"
        if 400 <= self.code < 500:
            return "transient"
        enhanced = self.enhanced
        if enhanced is not None and enhanced.split(".")[1:] == ["2", "2"]:
            return "transient"  # mailbox full: treated as temporary (a soft bounce if it lasts)
        return "permanent"

    @property
    def suppresses(self) -> bool:
        """True when a permanent failure says the address is bad (not a policy block)."""
        return self.verdict == "permanent" and self.enhanced in SUPPRESSING

    def line(self) -> str:
        """``550 5.1.1 no such user`` as the server said it."""
        return f"{self.code} {self.text}".strip()

    def as_detail(self) -> dict[str, object]:
        return {"smtp_code": self.code, "enhanced_code": self.enhanced, "smtp_response": self.text,
                "smtp_stage": self.stage}


class DeliveryError(Exception):
    """Delivery did not succeed; ``answer`` says what the server (or the network) said."""

    def __init__(self, answer: SmtpAnswer) -> None:
        super().__init__(answer.line())
        self.answer = answer

    @property
    def transient(self) -> bool:
        return self.answer.verdict != "permanent"


def network_failure(reason: str, stage: str = "connect") -> DeliveryError:
    """A transient failure without a server answer (unreachable, timed out, disconnected)."""
    return DeliveryError(SmtpAnswer(421, f"4.4.1 {reason}", stage))
