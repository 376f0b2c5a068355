"""Lenient readers of JSON values: the cloud and firmware mix types freely.

A number may arrive as a string ("15", "-53"), a flag as "enable" or 1; a
value of the wrong type reads as None instead of raising.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import Enum
from typing import Any, Final

TRUE_WORDS: Final = frozenset({"true", "enable", "enabled", "on", "1", "yes"})

FALSE_WORDS: Final = frozenset({"false", "disable", "disabled", "off", "0", "no"})


def as_int(value: object) -> int | None:
    """Int from an int, an integral float or a numeric string ("15" -> 15)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return as_int(as_float(value))
    return None


def as_float(value: object) -> float | None:
    """Finite float from a number or numeric string, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def as_str(value: object) -> str | None:
    """Non-empty stripped string, else None."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def as_bool(value: object) -> bool | None:
    """Bool from true/false, 0/1 or the enable/disable words firmware uses."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = (as_str(value) or "").lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def as_enum[E: Enum](kind: type[E], value: object) -> E | None:
    """The member with this value, None for one the enum lacks (or added later)."""
    try:
        return kind(value)
    except ValueError:
        return None


def as_hex(value: object) -> int | None:
    """Int from a hex string (``"7A58000"``) or a plain int."""
    if isinstance(value, str):
        try:
            return int(value.strip(), 16)
        except ValueError:
            return None
    return as_int(value) if isinstance(value, int) else None


def dicts(value: object) -> list[Mapping[str, Any]]:
    """The dict items of a list (anything else reads as empty)."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]
