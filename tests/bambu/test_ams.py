"""AMS facts and the dryer's state view (AMS 2 Pro, AMS HT)."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.bambu_cloud.bambu.ams import (
    AMS_2_PRO,
    AMS_HT,
    DRYING_LIMITS,
    DryingBlocker,
    DryingSettings,
    DryingState,
    FilamentDrying,
    can_dry,
    default_drying,
    filament_id,
    filament_type,
    generic_filament_id,
)
from custom_components.bambu_cloud.bambu.state import AmsDrying, PrinterState

VERSION = {
    "info": {
        "command": "get_version",
        "module": [
            {"name": "ota", "sw_ver": "01.02.00.00"},
            {"name": "n3f/0", "sw_ver": "00.00.06.49"},
            {"name": "ams/1", "sw_ver": "00.00.06.49"},
            {"name": "n3s/128", "sw_ver": "00.00.06.49"},
        ],
    }
}


def _state(units: list[dict[str, Any]], **fields: Any) -> PrinterState:
    state = PrinterState()
    state.merge(VERSION)
    state.merge(
        {"print": {"command": "push_status", "msg": 0, "ams": {"ams": units}, **fields}}
    )
    return state


def _info(state: int, phase: int = 0, other: int = 0x1001) -> str:
    return f"{other | state << 4 | phase << 22:X}"


def test_dryer_state_from_the_unit_report() -> None:
    """State bits 4-7, phase bits 22-23, settings and blockers per unit."""
    state = _state(
        [
            {
                "id": "0",
                "info": _info(2, 2),
                "dry_time": 300,
                "dry_setting": {
                    "dry_temperature": 55,
                    "dry_duration": 8,
                    "dry_filament": "PLA",
                },
                "dry_sf_reason": [],
            },
            {
                "id": "1",
                "info": _info(2),
                "dry_setting": {"dry_temperature": 50},
            },
            {
                "id": "128",
                "info": _info(3),
                "dry_setting": {"dry_temperature": -1, "dry_duration": -1},
                "dry_sf_reason": [8, 1, 8, 99, "x", 10],
            },
        ],
        fun2="20",
    )
    pro, classic, ht = state.ams_units
    assert (pro.kind, pro.can_dry, classic.can_dry, ht.can_dry) == (
        AMS_2_PRO,
        True,
        False,
        True,
    )
    assert pro.drying == AmsDrying(
        state=DryingState.DEHUMIDIFYING, temperature=55, hours=8, filament="PLA"
    )
    assert pro.drying_minutes_left == 300
    # An AMS without a heater reports no dryer, whatever its info bits say.
    assert classic.drying == AmsDrying()
    assert ht.drying == AmsDrying(
        state=DryingState.COOLING,
        blockers=(
            DryingBlocker.NEEDS_POWER_ADAPTER,
            DryingBlocker.INSUFFICIENT_POWER,
            DryingBlocker.UNLOAD_FILAMENT,
        ),
    )
    assert state.remote_drying is True


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (_info(0), DryingState.IDLE),
        (_info(1), DryingState.CHECKING),
        (_info(2), DryingState.DRYING),
        (_info(2, 1), DryingState.HEATING),
        (_info(2, 3), DryingState.DRYING),
        (_info(4, 1), DryingState.STOPPING),
        (_info(5), DryingState.ERROR),
        (_info(6), DryingState.OVERHEATED),
        (_info(7), DryingState.TESTING),
        (_info(9), None),
        ("zz", None),
        (-16, None),
        (None, None),
    ],
)
def test_dryer_state_codes(info: object, expected: DryingState | None) -> None:
    """Each wire code; an unknown one, or no info, is no state."""
    (unit,) = _state([{"id": "128", "info": info}]).ams_units
    assert unit.drying.state is expected


def test_dryer_state_activity() -> None:
    """A stop makes sense while the dryer checks, heats or is in trouble."""
    active = {state for state in DryingState if state.active}
    assert active == {
        DryingState.CHECKING,
        DryingState.DRYING,
        DryingState.HEATING,
        DryingState.DEHUMIDIFYING,
        DryingState.ERROR,
        DryingState.OVERHEATED,
    }


def test_remote_drying_flag() -> None:
    """fun2 bit 5, read from hex strings of any length; absent: unknown."""
    assert _state([]).remote_drying is None
    assert _state([], fun2="0").remote_drying is False
    assert _state([], fun2="1F").remote_drying is False
    assert _state([], fun2="1000000000000000000020").remote_drying is True
    assert _state([], fun2="nothex").remote_drying is None


def test_tray_drying_recommendation() -> None:
    """drying_temp / drying_time, or tray_temp / tray_time; 0 means none."""
    (unit,) = _state(
        [
            {
                "id": "0",
                "tray": [
                    {
                        "id": "0",
                        "tray_type": "PLA",
                        "drying_temp": "55",
                        "drying_time": "8",
                    },
                    {
                        "id": "1",
                        "tray_type": "PETG",
                        "tray_temp": "65",
                        "tray_time": "4",
                    },
                    {
                        "id": "2",
                        "tray_type": "ABS",
                        "drying_temp": "0",
                        "drying_time": "",
                    },
                ],
            }
        ]
    ).ams_units
    first, second, third = unit.trays
    assert (first.drying_temperature, first.drying_hours) == (55, 8)
    assert (second.drying_temperature, second.drying_hours) == (65, 4)
    assert (third.drying_temperature, third.drying_hours) == (None, None)


def test_default_drying() -> None:
    """Lowest temperature, longest time, a type only when all share it."""
    spools = [
        FilamentDrying(filament="PETG", temperature=65, hours=8),
        FilamentDrying(filament="PLA", temperature=55, hours=12),
        FilamentDrying(filament=None, temperature=None, hours=None),
    ]
    assert default_drying(AMS_2_PRO, spools) == DryingSettings(
        temperature=55, hours=12, filament=""
    )
    assert default_drying(
        AMS_HT, [FilamentDrying(filament="PA", temperature=80, hours=12)]
    ) == DryingSettings(temperature=80, hours=12, filament="PA")
    # Within the unit's range: the AMS 2 Pro tops out at 65 °C.
    assert default_drying(
        AMS_2_PRO, [FilamentDrying(filament="PA", temperature=80, hours=48)]
    ) == DryingSettings(temperature=65, hours=24, filament="PA")
    assert default_drying(AMS_HT, []) == DryingSettings(temperature=55, hours=8)
    assert default_drying("ams", []) == DryingSettings(temperature=55, hours=8)


def test_limits_and_kinds() -> None:
    """Only the AMS 2 Pro and AMS HT dry; each has its range."""
    assert can_dry(AMS_2_PRO)
    assert can_dry(AMS_HT)
    assert not can_dry("ams")
    assert not can_dry("ams_lite")
    assert DRYING_LIMITS[AMS_2_PRO].clamp(30, 0) == (45, 1)
    assert DRYING_LIMITS[AMS_HT].clamp(90, 30) == (85, 24)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" PLA ", "PLA"),
        ("PETG-CF", "PETG-CF"),
        ("Support W", "Support W"),
        ("PLA+", "PLA+"),
        ("", None),
        (" ", None),
        ("-PLA", None),
        ("PLA;DROP", None),
        ("X" * 21, None),
    ],
)
def test_filament_type(text: str, expected: str | None) -> None:
    """Types as trays name them; nothing else."""
    assert filament_type(text) == expected


def test_filament_ids() -> None:
    """Preset ids are short tokens; a known type has Bambu's generic one."""
    assert filament_id(" GFL99 ") == "GFL99"
    assert filament_id("P4d64437") == "P4d64437"
    assert filament_id("GF L99") is None
    assert filament_id("") is None
    assert filament_id("x" * 33) is None
    assert generic_filament_id("pla") == "GFL99"
    assert generic_filament_id("PETG") == "GFG99"
    assert generic_filament_id("ASA") == "GFB98"
    assert generic_filament_id("Unobtainium") == ""
