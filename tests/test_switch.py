"""Tests for the switch platform: camera, AI monitoring and print options."""

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

from .cloud_server import H2D, P1S, X1C, MqttEndpoint
from .helpers import (
    call_service,
    entity_id_of,
    last_command,
    state_of,
    wait_for,
)

X1C_SN = X1C["dev_id"]
P1S_SN = P1S["dev_id"]
H2D_SN = H2D["dev_id"]


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The switches talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the switch platform is set up."""
    return [Platform.SWITCH]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "h2d", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Switch entities of an X1C, a P1S and an H2D match the snapshot."""
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
