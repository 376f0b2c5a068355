"""How the library's protocol enums show as Home Assistant enum states.

The library names protocol values (``bambu/enums.py``); Home Assistant's enum
sensors and selects need lower-case snake_case options, which double as
translation keys. A member's option is its lower-cased name, so the wire
value (``"RUNNING"``, ``2``) never leaks into entity states.
"""

from __future__ import annotations

from enum import Enum


def enum_option(member: Enum | None) -> str | None:
    """The state a member shows as, None for none."""
    return None if member is None else member.name.lower()


def enum_options(kind: type[Enum]) -> list[str]:
    """Every state of an enum sensor or select, in member order."""
    return [member.name.lower() for member in kind]


def enum_member[E: Enum](kind: type[E], option: str) -> E:
    """The member a select option names (options come from ``enum_options``)."""
    return kind[option.upper()]
