"""Tests for the switch platform: camera, AI monitoring, print and AMS options."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.const import DOMAIN
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import (
    H2D_SN,
    P1S_SN,
    P2S_SN,
    X1C_SN,
    MqttEndpoint,
)
from .helpers import (
    call_service,
    entity_id_of,
    last_command,
    state_of,
    wait_for,
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The switches talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the switch platform is set up."""
    return [Platform.SWITCH]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "h2d", "p2s", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Switch entities of an X1C, a P1S, an H2D and a P2S match the snapshot."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


@pytest.mark.parametrize(
    ("key", "initial", "kind", "expected"),
    [
        (
            "timelapse",
            STATE_OFF,
            "camera",
            {"command": "ipcam_timelapse", "control": "enable"},
        ),
        (
            "camera_recording",
            STATE_ON,
            "camera",
            {"command": "ipcam_record_set", "control": "disable"},
        ),
        (
            "spaghetti_detection",
            STATE_ON,
            "xcam",
            {
                "command": "xcam_control_set",
                "module_name": "spaghetti_detector",
                "control": False,
                "print_halt": True,
            },
        ),
        (
            "first_layer_inspection",
            STATE_ON,
            "xcam",
            {
                "command": "xcam_control_set",
                "module_name": "first_layer_inspector",
                "control": False,
                "print_halt": True,
            },
        ),
        (
            "buildplate_marker_detection",
            STATE_ON,
            "xcam",
            {
                "command": "xcam_control_set",
                "module_name": "buildplate_marker_detector",
                "control": False,
                "print_halt": True,
            },
        ),
        (
            "print_monitoring",
            STATE_ON,
            "xcam",
            {
                "command": "xcam_control_set",
                "module_name": "printing_monitor",
                "control": False,
                "print_halt": True,
            },
        ),
        (
            "auto_recovery",
            STATE_OFF,
            "print",
            {"command": "print_option", "auto_recovery": True},
        ),
    ],
)
async def test_switches(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    key: str,
    initial: str,
    kind: str,
    expected: dict[str, Any],
) -> None:
    """Each switch sends its command and follows the printer's report."""
    x1c = live["x1c"]
    switch = entity_id_of(hass, SWITCH_DOMAIN, X1C_SN, key)
    entry = er.async_get(hass).async_get(switch)
    assert entry is not None
    assert entry.entity_category == "config"
    assert state_of(hass, switch) == initial
    service = SERVICE_TURN_OFF if initial == STATE_ON else SERVICE_TURN_ON
    await call_service(hass, SWITCH_DOMAIN, service, switch)
    message = x1c.received[-1]
    assert kind in message
    inner = {k: v for k, v in message[kind].items() if k != "sequence_id"}
    assert inner == expected
    flipped = STATE_OFF if initial == STATE_ON else STATE_ON
    await wait_for(hass, lambda: state_of(hass, switch) == flipped)
    # ...and back.
    back = SERVICE_TURN_ON if initial == STATE_ON else SERVICE_TURN_OFF
    await call_service(hass, SWITCH_DOMAIN, back, switch)
    await wait_for(hass, lambda: state_of(hass, switch) == initial)


async def test_prompt_sound(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    live: dict[str, VirtualPrinter],
) -> None:
    """Prompt sound exists on the H2D, not on X1C or P1S; first layer only on X1."""
    registry = er.async_get(hass)
    for serial in (X1C_SN, P1S_SN):
        assert not registry.async_get_entity_id(
            SWITCH_DOMAIN, DOMAIN, f"{serial}_prompt_sound"
        )
    for serial in (P1S_SN, H2D_SN):
        assert not registry.async_get_entity_id(
            SWITCH_DOMAIN, DOMAIN, f"{serial}_first_layer_inspection"
        )
    sound = entity_id_of(hass, SWITCH_DOMAIN, H2D_SN, "prompt_sound")
    assert state_of(hass, sound) == STATE_OFF
    await call_service(hass, SWITCH_DOMAIN, SERVICE_TURN_ON, sound)
    assert last_command(h2d) == {
        "command": "print_option",
        "sound_enable": True,
        "sequence_id": last_command(h2d)["sequence_id"],
    }
    await wait_for(hass, lambda: state_of(hass, sound) == STATE_ON)


DETECTORS = (
    "filament_tangle_detection",
    "nozzle_blob_detection",
    "air_print_detection",
)


async def test_detectors_where_announced(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    p2s: VirtualPrinter,
    live: dict[str, VirtualPrinter],
) -> None:
    """Detector switches exist where home_flag announces them (support bits)."""
    registry = er.async_get(hass)

    def exists(serial: str, key: str) -> bool:
        entity_id = registry.async_get_entity_id(
            SWITCH_DOMAIN, DOMAIN, f"{serial}_{key}"
        )
        return entity_id is not None

    await wait_for(hass, lambda: exists(P2S_SN, "air_print_detection"))
    for key in DETECTORS:
        assert exists(P2S_SN, key)
        assert not exists(X1C_SN, key)
        assert not exists(P1S_SN, key)
        # Like the H2D capture: its home_flag announces none of them.
        assert not exists(H2D_SN, key)
    # A firmware update announcing tangle detection adds the switch.
    x1c = live["x1c"]
    x1c.update({"home_flag": x1c.state["home_flag"] | 1 << 19})
    await wait_for(hass, lambda: exists(X1C_SN, "filament_tangle_detection"))
    tangle = entity_id_of(hass, SWITCH_DOMAIN, X1C_SN, "filament_tangle_detection")
    assert state_of(hass, tangle) == STATE_OFF
    # ...and the later ones still come once announced.
    x1c.update({"home_flag": x1c.state["home_flag"] | 1 << 25 | 1 << 29})
    await wait_for(hass, lambda: exists(X1C_SN, "air_print_detection"))
    assert exists(X1C_SN, "nozzle_blob_detection")


@pytest.mark.parametrize(
    ("key", "option", "bit"),
    [
        ("filament_tangle_detection", "filament_tangle_detect", 1 << 20),
        ("nozzle_blob_detection", "nozzle_blob_detect", 1 << 24),
        ("air_print_detection", "air_print_detect", 1 << 28),
    ],
)
async def test_detector_switches(
    hass: HomeAssistant,
    p2s: VirtualPrinter,
    live: dict[str, VirtualPrinter],
    key: str,
    option: str,
    bit: int,
) -> None:
    """Each detector is a print_option; its home_flag bit is the state."""
    await wait_for(
        hass,
        lambda: (
            er.async_get(hass).async_get_entity_id(
                SWITCH_DOMAIN, DOMAIN, f"{P2S_SN}_{key}"
            )
            is not None
        ),
    )
    switch = entity_id_of(hass, SWITCH_DOMAIN, P2S_SN, key)
    entry = er.async_get(hass).async_get(switch)
    assert entry is not None
    assert entry.entity_category == "config"
    assert state_of(hass, switch) == STATE_OFF
    await call_service(hass, SWITCH_DOMAIN, SERVICE_TURN_ON, switch)
    command = last_command(p2s)
    assert command == {
        "command": "print_option",
        option: True,
        "sequence_id": command["sequence_id"],
    }
    assert p2s.state["home_flag"] & bit
    await wait_for(hass, lambda: state_of(hass, switch) == STATE_ON)
    await call_service(hass, SWITCH_DOMAIN, SERVICE_TURN_OFF, switch)
    await wait_for(hass, lambda: state_of(hass, switch) == STATE_OFF)


@pytest.mark.parametrize(
    ("key", "initial", "expected"),
    [
        ("ams_startup_read", STATE_OFF, (True, True, True)),
        ("ams_tray_read", STATE_ON, (False, False, True)),
        ("ams_remain_detection", STATE_ON, (False, True, False)),
    ],
)
async def test_ams_settings(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    key: str,
    initial: str,
    expected: tuple[bool, bool, bool],
) -> None:
    """One AMS option changes; the others go out as the printer reported them."""
    for name, serial in (("x1c", X1C_SN), ("p1s", P1S_SN)):
        printer = live[name]
        switch = entity_id_of(hass, SWITCH_DOMAIN, serial, key)
        assert state_of(hass, switch) == initial
        service = SERVICE_TURN_OFF if initial == STATE_ON else SERVICE_TURN_ON
        await call_service(hass, SWITCH_DOMAIN, service, switch)
        command = last_command(printer)
        assert command["command"] == "ams_user_setting"
        assert command["ams_id"] == -1
        sent = (
            command["startup_read_option"],
            command["tray_read_option"],
            command["calibrate_remain_flag"],
        )
        assert sent == expected
    flipped = STATE_OFF if initial == STATE_ON else STATE_ON
    for serial in (X1C_SN, P1S_SN):
        switch = entity_id_of(hass, SWITCH_DOMAIN, serial, key)
        await wait_for(hass, lambda switch=switch: state_of(hass, switch) == flipped)


async def test_ams_auto_refill(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """AMS auto refill is print_option auto_switch_filament (home_flag bit 10)."""
    x1c = live["x1c"]
    refill = entity_id_of(hass, SWITCH_DOMAIN, X1C_SN, "ams_auto_refill")
    assert state_of(hass, refill) == STATE_ON
    await call_service(hass, SWITCH_DOMAIN, SERVICE_TURN_OFF, refill)
    command = last_command(x1c)
    assert (command["command"], command["auto_switch_filament"]) == (
        "print_option",
        False,
    )
    await wait_for(hass, lambda: state_of(hass, refill) == STATE_OFF)
