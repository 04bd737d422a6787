"""WhatsApp ids: how Postwire spells a contact.

A ``wa_id`` is the contact's E.164 number without the ``+`` (``+15551234567`` → ``15551234567``). The
gateway stores recipients as E.164; the Graph API ``to``, the opt-out ``address`` and the conversation key
are the wa_id. (Meta may answer a send with a different ``wa_id`` for a few countries, e.g. Brazil's
ninth digit; opt-outs are recorded under the id the contact wrote from.)
"""

from __future__ import annotations

import re

_WA_ID = re.compile(r"^[1-9][0-9]{6,14}$")


def wa_id(number: str) -> str:
    """``number`` (E.164, or already a wa_id) as a wa_id: digits only, no ``+``, spaces or dashes."""
    return "".join(ch for ch in number if ch.isdigit())


def is_wa_id(value: str) -> bool:
    """True for 7 to 15 digits not starting with 0 (an E.164 number without its ``+``)."""
    return bool(_WA_ID.match(value))


def e164(wa: str) -> str:
    """The E.164 form of a wa_id."""
    return "+" + wa_id(wa)
