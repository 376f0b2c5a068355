"""Facts about AMS units and filament that do not come from a report.

Which units can dry and in what range, the dryer's states and the reasons it
gives for refusing to start (the numbers in the unit's report, PROTOCOL.md
2.5), Bambu Lab's generic filament presets, and the default drying settings
a unit starts with when nobody chose any. Report field names stay in
``state.py``; command payloads in ``commands.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

# Unit kinds as ``state.AmsUnit.kind`` names them (from get_version modules).
AMS_2_PRO: Final = "ams_2_pro"
AMS_HT: Final = "ams_ht"


class DryingState(StrEnum):
    """What a unit's dryer is doing (bits 4-7 of the unit's ``info``).

    ``DRYING`` splits into ``HEATING`` and ``DEHUMIDIFYING`` when the unit
    reports its sub-state (bits 22-23); ``OVERHEATED`` is the firmware's
    "cannot stop, heater out of control" safety state.
    """

    IDLE = "idle"
    CHECKING = "checking"
    DRYING = "drying"
    HEATING = "heating"
    DEHUMIDIFYING = "dehumidifying"
    COOLING = "cooling"
    STOPPING = "stopping"
    ERROR = "error"
    OVERHEATED = "overheated"
    TESTING = "testing"

    @property
    def active(self) -> bool:
        """Whether the dryer runs (a stop command makes sense)."""
        return self in _ACTIVE_DRYING


_ACTIVE_DRYING: Final = frozenset(
    {
        DryingState.CHECKING,
        DryingState.DRYING,
        DryingState.HEATING,
        DryingState.DEHUMIDIFYING,
        DryingState.ERROR,
        DryingState.OVERHEATED,
    }
)

# Wire codes 0-7 of the dryer state, in order.
DRYING_STATE_CODES: Final = (
    DryingState.IDLE,
    DryingState.CHECKING,
    DryingState.DRYING,
    DryingState.COOLING,
    DryingState.STOPPING,
    DryingState.ERROR,
    DryingState.OVERHEATED,
    DryingState.TESTING,
)
# Sub-state codes while drying: 1 heating, 2 dehumidifying (0: not said).
DRYING_PHASE_CODES: Final = {1: DryingState.HEATING, 2: DryingState.DEHUMIDIFYING}


class DryingBlocker(StrEnum):
    """Why a unit cannot start drying now (its ``dry_sf_reason`` codes)."""

    PRINTING = "printing"
    INSUFFICIENT_POWER = "insufficient_power"
    AMS_BUSY = "ams_busy"
    FILAMENT_AT_OUTLET = "filament_at_outlet"
    STARTING = "starting"
    LASER_MODE = "laser_mode"
    ALREADY_DRYING = "already_drying"
    UPDATING = "updating"
    NEEDS_POWER_ADAPTER = "needs_power_adapter"
    UNLOAD_FILAMENT = "unload_filament"


DRYING_BLOCKER_CODES: Final = {
    0: DryingBlocker.PRINTING,
    1: DryingBlocker.INSUFFICIENT_POWER,
    2: DryingBlocker.AMS_BUSY,
    3: DryingBlocker.FILAMENT_AT_OUTLET,
    4: DryingBlocker.STARTING,
    5: DryingBlocker.LASER_MODE,
    6: DryingBlocker.ALREADY_DRYING,
    7: DryingBlocker.UPDATING,
    8: DryingBlocker.NEEDS_POWER_ADAPTER,
    10: DryingBlocker.UNLOAD_FILAMENT,
}


# The longest drying run the AMS 2 Pro and AMS HT accept.
MAX_DRYING_HOURS: Final = 24


@dataclass(frozen=True, slots=True, kw_only=True)
class DryingLimits:
    """The temperatures (°C) and durations (hours) a dryer accepts."""

    min_temperature: int
    max_temperature: int
    min_hours: int = 1
    max_hours: int = MAX_DRYING_HOURS

    def clamp(self, temperature: int, hours: int) -> tuple[int, int]:
        """Temperature and hours moved into the unit's range."""
        return (
            min(max(temperature, self.min_temperature), self.max_temperature),
            min(max(hours, self.min_hours), self.max_hours),
        )


# Bambu Lab's published ranges: the AMS 2 Pro heats to 65 °C, the AMS HT to
# 85 °C. Other units (AMS, AMS lite) have no heater.
DRYING_LIMITS: Final = {
    AMS_2_PRO: DryingLimits(min_temperature=45, max_temperature=65),
    AMS_HT: DryingLimits(min_temperature=45, max_temperature=85),
}
# Without any filament's recommendation: warm enough to help, cool enough
# for PLA, the filament that softens first.
DEFAULT_DRYING_TEMPERATURE: Final = 55
DEFAULT_DRYING_HOURS: Final = 8
# The temperature the unit cools down to before it calls drying done.
DRYING_COOLING_TEMPERATURE: Final = 45


def can_dry(kind: str) -> bool:
    """Whether a unit kind has a heater (AMS 2 Pro, AMS HT)."""
    return kind in DRYING_LIMITS


@dataclass(frozen=True, slots=True, kw_only=True)
class DryingSettings:
    """A drying run: temperature (°C), duration (hours), filament type."""

    temperature: int
    hours: int
    filament: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FilamentDrying:
    """One loaded filament's drying recommendation from its tray."""

    filament: str | None
    temperature: int | None
    hours: int | None


def default_drying(kind: str, loaded: Iterable[FilamentDrying]) -> DryingSettings:
    """Settings for drying a unit as it is, for a one-press start.

    With several filaments, the lowest recommended temperature keeps every
    spool in shape and the longest recommended time dries the wettest; the
    filament type is named only when all spools share it. Without any
    recommendation: 55 °C for 8 hours. Always within the unit's range.
    """
    limits = DRYING_LIMITS.get(kind, DRYING_LIMITS[AMS_2_PRO])
    temperatures = [f.temperature for f in loaded if f.temperature]
    hours = [f.hours for f in loaded if f.hours]
    types = {f.filament for f in loaded if f.filament}
    temperature, duration = limits.clamp(
        min(temperatures, default=DEFAULT_DRYING_TEMPERATURE),
        max(hours, default=DEFAULT_DRYING_HOURS),
    )
    filament = next(iter(types)) if len(types) == 1 else ""
    return DryingSettings(temperature=temperature, hours=duration, filament=filament)


# Bambu Lab's generic presets (``tray_info_idx``) per filament type: a spool
# set by type alone gets the matching generic profile in the slicer.
GENERIC_FILAMENT_IDS: Final = {
    "PLA": "GFL99",
    "PLA-CF": "GFL98",
    "PETG": "GFG99",
    "PETG-CF": "GFG98",
    "ABS": "GFB99",
    "ASA": "GFB98",
    "TPU": "GFU99",
    "PA": "GFN99",
    "PA-CF": "GFN98",
    "PC": "GFC99",
    "PVA": "GFS99",
    "HIPS": "GFS98",
}

MAX_FILAMENT_TYPE_LENGTH: Final = 20
# Types such as "PLA", "PETG-CF", "PA6-GF", "Support W", "PLA+".
_FILAMENT_TYPE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 +._/-]*")
# Preset ids: Bambu's "GFL99", user presets such as "P4d64437".
_FILAMENT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


def filament_type(value: str) -> str | None:
    """A filament type as trays report it (trimmed), None if not one."""
    text = value.strip()
    if len(text) > MAX_FILAMENT_TYPE_LENGTH or not _FILAMENT_TYPE.fullmatch(text):
        return None
    return text


def filament_id(value: str) -> str | None:
    """A preset id (``tray_info_idx``), None if not one."""
    text = value.strip()
    return text if _FILAMENT_ID.fullmatch(text) else None


def generic_filament_id(kind: str) -> str:
    """Bambu's generic preset for a type; empty when there is none."""
    return GENERIC_FILAMENT_IDS.get(kind.upper(), "")
