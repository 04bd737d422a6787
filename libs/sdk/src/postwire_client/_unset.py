"""A marker for "leave this field as it is" in partial updates, where ``None`` means "clear it"."""

from __future__ import annotations

import enum
from typing import Any, Final, Literal


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
Unset = Literal[_Unset.UNSET]


def changes(**fields: Any) -> dict[str, Any]:
    """The fields that are not ``UNSET`` (``None`` kept: it clears the value on the server)."""
    return {name: value for name, value in fields.items() if value is not UNSET}
