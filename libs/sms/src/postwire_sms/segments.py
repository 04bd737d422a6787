"""Encoding and segments of an SMS text (3GPP TS 23.038 GSM-7 and UCS-2).

GSM-7: 160 septets in one part, 153 per part when split (the 6-octet concatenation UDH takes 7 septets);
the characters of the extension table (``^ { } \\ [ ~ ] |`` ``€`` and form feed) cost two septets (escape
plus character). Any character outside GSM-7 switches the whole text to UCS-2: 70 UTF-16 units in one
part, 67 per part; characters above U+FFFF take two units. A part never ends between an escape and its
character nor between the two halves of a surrogate pair: iterating code points keeps each whole.

The GSM-7 tables come from the ``gsm0338`` codec, so the count and the bytes on the wire agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gsm0338 import Codec

Encoding = Literal["GSM-7", "UCS-2"]

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

DATA_CODING: dict[Encoding, int] = {"GSM-7": 0x00, "UCS-2": 0x08}
"""SMPP ``data_coding``: 0 (SMSC default alphabet, GSM-7 unpacked) or 8 (UCS-2, big-endian)."""

_CODEC = Codec()
_ESCAPE = "\x1b"


def _gsm_cost(char: str) -> int:
    """Septets ``char`` takes in GSM-7 (1 or 2), or 0 when it has no GSM-7 form."""
    if char == _ESCAPE:
        return 0
    try:
        return len(_CODEC.encode(char)[0])
    except UnicodeEncodeError:
        return 0


_GSM_COSTS: dict[str, int] = {}


def gsm_cost(char: str) -> int:
    """Cached ``_gsm_cost``: texts repeat the same few characters."""
    cost = _GSM_COSTS.get(char)
    if cost is None:
        cost = _GSM_COSTS[char] = _gsm_cost(char)
    return cost


def _ucs2_cost(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


@dataclass(frozen=True)
class Segments:
    """How a text travels: its encoding, the number of parts, and the parts' texts."""

    encoding: Encoding
    count: int
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text."""
    parts: tuple[str, ...]


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character has a GSM-7 form, else UCS-2."""
    return "GSM-7" if all(gsm_cost(c) for c in text) else "UCS-2"


def analyse(text: str) -> Segments:
    """Encoding, segment count and the split parts of ``text`` (an empty text is one empty part)."""
    encoding = encoding_of(text)
    if encoding == "GSM-7":
        cost, single, multi = gsm_cost, GSM_SINGLE, GSM_MULTI
    else:
        cost, single, multi = _ucs2_cost, UCS2_SINGLE, UCS2_MULTI
    costs = [cost(c) for c in text]
    units = sum(costs)
    if units <= single:
        return Segments(encoding=encoding, count=1, units=units, parts=(text,))
    parts: list[str] = []
    start = used = 0
    for index, c in enumerate(costs):
        if used + c > multi:
            parts.append(text[start:index])
            start, used = index, 0
        used += c
    parts.append(text[start:])
    return Segments(encoding=encoding, count=len(parts), units=units, parts=tuple(parts))


def encode(text: str, encoding: Encoding) -> bytes:
    """The octets of ``text``: GSM-7 unpacked (one septet per octet, escapes included) or UTF-16-BE."""
    if encoding == "GSM-7":
        return bytes(_CODEC.encode(text)[0])
    return text.encode("utf-16-be")


def decode(data: bytes, data_coding: int) -> str:
    """Text of a received short message: UCS-2 for data_coding 8, Latin-1 for 3, else GSM-7 (lenient)."""
    if data_coding == 0x08:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == 0x03:
        return data.decode("latin-1")
    try:
        return str(_CODEC.decode(data, "replace")[0])
    except (UnicodeDecodeError, KeyError):
        return data.decode("latin-1")


def concatenation_udh(reference: int, total: int, sequence: int) -> bytes:
    """The 6-octet User Data Header of part ``sequence`` (from 1) of ``total``, 8-bit reference."""
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, sequence))


@dataclass(frozen=True)
class WirePart:
    """One ``submit_sm`` worth of a message: its short_message octets and whether it carries a UDH."""

    short_message: bytes
    udh: bool


def wire_parts(text: str, reference: int) -> tuple[int, list[WirePart]]:
    """``data_coding`` and the short_message of every part; each part of a multipart message starts
    with the concatenation UDH (the caller sets ``esm_class`` bit 0x40 on those)."""
    seg = analyse(text)
    coding = DATA_CODING[seg.encoding]
    if seg.count == 1:
        return coding, [WirePart(encode(text, seg.encoding), udh=False)]
    return coding, [
        WirePart(concatenation_udh(reference, seg.count, n) + encode(part, seg.encoding), udh=True)
        for n, part in enumerate(seg.parts, start=1)
    ]
