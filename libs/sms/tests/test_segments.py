"""Segments: GSM-7 with its escapes, UCS-2 with surrogate pairs, checked against ``smsutil``."""

from __future__ import annotations

import random

import pytest
import smsutil

from postwire_sms.segments import analyse, concatenation_udh, decode, encode, wire_parts


@pytest.mark.parametrize(("text", "encoding", "count"), [
    ("", "GSM-7", 1),
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),          # 160 septets
    ("€" * 81, "GSM-7", 2),          # 162 septets
    ("a" * 159 + "^", "GSM-7", 2),   # the escape pair pushes it over 160
    ("Your code is 123456", "GSM-7", 1),
    ("é" * 70, "GSM-7", 1),          # é is in the basic table
    ("ж" * 70, "UCS-2", 1),
    ("ж" * 71, "UCS-2", 2),
    ("ж" * 134, "UCS-2", 2),
    ("ж" * 135, "UCS-2", 3),
    ("😀" * 35, "UCS-2", 1),          # 70 UTF-16 units
    ("😀" * 36, "UCS-2", 2),
    ("a" * 159 + "ж", "UCS-2", 3),   # one character outside GSM-7 switches everything
])
def test_counts(text: str, encoding: str, count: int) -> None:
    seg = analyse(text)
    assert (seg.encoding, seg.count) == (encoding, count)
    assert "".join(seg.parts) == text


def test_escape_pairs_are_never_split() -> None:
    text = "a" * 152 + "{" + "b" * 10
    seg = analyse(text)
    assert seg.parts[0] == "a" * 152 and seg.parts[1].startswith("{")
    first = encode(seg.parts[0], "GSM-7")
    assert len(first) == 152 and first[-1:] != b"\x1b"


def test_surrogate_pairs_are_never_split() -> None:
    text = "ж" * 66 + "😀" + "ж" * 10
    seg = analyse(text)
    assert seg.parts[0] == "ж" * 66 and seg.parts[1].startswith("😀")
    for part in seg.parts:
        encode(part, "UCS-2").decode("utf-16-be")  # strict: a lone surrogate would raise


def test_agrees_with_smsutil_on_random_texts() -> None:
    rng = random.Random(7)
    alphabet = "abcXYZ 019.,!?" + "^{}\\[~]|€\f" + "éøÅ" + "жщ" + "😀🎉"
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))
        if rng.random() < 0.5:
            text = "".join(c for c in text if c not in "жщ😀🎉")
        if not text:
            continue
        oracle = smsutil.split(text)
        ours = analyse(text)
        assert ours.count == len(oracle.parts), text
        assert ours.encoding == ("GSM-7" if oracle.encoding == "gsm0338" else "UCS-2")
        assert list(ours.parts) == [p.content for p in oracle.parts]


def test_wire_parts_carry_udh_and_round_trip() -> None:
    text = "Hello € " * 30
    coding, parts = wire_parts(text, reference=0x2A)
    assert coding == 0 and len(parts) == 2
    assert parts[0].short_message[:6] == concatenation_udh(0x2A, 2, 1) == b"\x05\x00\x03\x2a\x02\x01"
    assert parts[1].short_message[:6] == b"\x05\x00\x03\x2a\x02\x02"
    assert "".join(decode(p.short_message[6:], coding) for p in parts) == text
    coding, [single] = wire_parts("Привет", reference=1)
    assert coding == 8 and not single.udh and decode(single.short_message, 8) == "Привет"
