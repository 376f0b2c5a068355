"""State views behind the controls: air duct, detector bits, AMS settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.bambu_cloud.bambu.enums import AirDuctMode
from custom_components.bambu_cloud.bambu.state import PrinterState

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "payloads"


def report(**fields: Any) -> dict[str, Any]:
    """A full report carrying only ``fields``."""
    return {"print": {"command": "push_status", "msg": 0, **fields}}


def state_of(**fields: Any) -> PrinterState:
    printer = PrinterState()
    printer.merge(report(**fields))
    return printer


@pytest.mark.parametrize(
    ("duct", "expected"),
    [
        ({"modeCur": 0}, AirDuctMode.COOLING),
        ({"modeCur": "1"}, AirDuctMode.HEATING),
        ({"modeCur": 2}, AirDuctMode.LASER),
        ({"modeCur": 7}, None),
        ({"modeCur": "cool"}, None),
        ({}, None),
        ("broken", None),
    ],
)
def test_air_duct_mode(duct: object, expected: AirDuctMode | None) -> None:
    """``device.airduct.modeCur`` names the mode; anything else is unknown."""
    assert state_of(device={"airduct": duct}).air_duct_mode is expected
    assert PrinterState().air_duct_mode is None


def test_detector_bits() -> None:
    """Support and on bits of tangle, clumping and air printing detection."""
    flags = state_of(home_flag=1 << 25 | 1 << 24 | 1 << 29).home_flags
    assert flags.nozzle_blob_detect_supported is True
    assert flags.nozzle_blob_detect is True
    assert flags.air_print_detect_supported is True
    assert flags.air_print_detect is False
    assert flags.filament_tangle_detect_supported is False
    # A negative home_flag is its 32-bit form: bit 29 set, 28 clear.
    negative = state_of(home_flag=-(1 << 31) + (1 << 29)).home_flags
    assert (negative.air_print_detect_supported, negative.air_print_detect) == (
        True,
        False,
    )
    empty = PrinterState().home_flags
    assert empty.nozzle_blob_detect_supported is None
    assert empty.air_print_detect is None


def test_ams_user_settings() -> None:
    """Read options from the AMS block, remain detection from home_flag."""
    settings = state_of(
        ams={"ams": [], "power_on_flag": False, "insert_flag": True},
        home_flag=0x80,
    ).ams_user_settings
    assert (settings.startup_read, settings.tray_read, settings.remain_detection) == (
        False,
        True,
        True,
    )
    assert settings.complete
    # Without an AMS block (or home_flag) the options are unknown.
    assert not state_of(home_flag=0x80).ams_user_settings.complete
    no_flag = state_of(ams={"power_on_flag": True, "insert_flag": True})
    assert no_flag.ams_user_settings.remain_detection is None
    assert not no_flag.ams_user_settings.complete


def test_ams_user_settings_follow_a_delta() -> None:
    """A delta changing one AMS flag changes the view (cache dropped)."""
    printer = state_of(ams={"power_on_flag": False, "insert_flag": True}, home_flag=0)
    assert printer.ams_user_settings.startup_read is False
    printer.merge({"print": {"msg": 1, "ams": {"power_on_flag": True}}})
    assert printer.ams_user_settings.startup_read is True
    assert printer.ams_user_settings.tray_read is True


def test_h2d_capture() -> None:
    """The real H2D report: heating duct, no detector announced."""
    path = PAYLOADS / "H2D.json"
    if not path.exists():
        pytest.skip(f"{path} not available (no ../shared checkout)")
    capture = json.loads(path.read_text())
    printer = PrinterState()
    printer.merge({"print": capture["push_all"]})
    assert printer.air_duct_mode is AirDuctMode.HEATING
    flags = printer.home_flags
    assert flags.filament_tangle_detect_supported is False
    assert flags.nozzle_blob_detect_supported is False
    assert flags.air_print_detect_supported is False
