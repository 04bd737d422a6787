"""Recipient phone numbers: parse, validate, normalise to E.164."""

from __future__ import annotations

import phonenumbers

from postwire_platform.errors import ApiError


def normalise_phone(raw: str, *, field: str = "to") -> str:
    """``raw`` as E.164, or 422 ``invalid_phone_number`` naming ``field``.

    The number must carry its country code (``+…``) and be a valid number for its region. The sandbox
    carrier's magic recipients (``+1500555000N``) are valid numbers, so test keys need no exception.
    """
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise _invalid(field, raw) from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(parsed):
        return e164
    raise _invalid(field, raw)


def _invalid(field: str, raw: str) -> ApiError:
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    return ApiError(422, "invalid_phone_number",
                    f"{shown!r} is not a valid phone number in international format (+<country code>…)",
                    field=field)
