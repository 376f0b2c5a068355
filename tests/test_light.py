"""Tests for the light platform: chamber and work lights of the printers."""

from __future__ import annotations

import pytest
from homeassistant.components.light import DOMAIN as LIGHT_DOMAIN
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

from .cloud_server import H2D_SN, P1S_SN, X1C_SN, MqttEndpoint
from .helpers import (
    call_service,
    entity_id_of,
    last_command,
    sequence_ids,
    state_of,
    wait_for,
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The lights talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the light platform is set up."""
    return [Platform.LIGHT]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "h2d", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Light entities of an X1C, a P1S and an H2D match the snapshot."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


async def test_lights(hass: HomeAssistant, live: dict[str, VirtualPrinter]) -> None:
    """ledctrl reaches the printer; the light follows the printer's report."""
    x1c, p1s = live["x1c"], live["p1s"]
    chamber = entity_id_of(hass, LIGHT_DOMAIN, X1C_SN, "chamber_light")
    work = entity_id_of(hass, LIGHT_DOMAIN, X1C_SN, "work_light")
    assert state_of(hass, chamber) == STATE_ON
    assert state_of(hass, work) == STATE_OFF

    await call_service(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, chamber)
    assert last_command(x1c) == {
        "command": "ledctrl",
        "led_node": "chamber_light",
        "led_mode": "off",
        "led_on_time": 500,
        "led_off_time": 500,
        "loop_times": 0,
        "interval_time": 0,
        "sequence_id": last_command(x1c)["sequence_id"],
    }
    await wait_for(hass, lambda: state_of(hass, chamber) == STATE_OFF)

    await call_service(hass, LIGHT_DOMAIN, SERVICE_TURN_ON, work)
    assert (last_command(x1c)["led_node"], last_command(x1c)["led_mode"]) == (
        "work_light",
        "on",
    )
    await wait_for(hass, lambda: state_of(hass, work) == STATE_ON)
    ids = sequence_ids(x1c)
    assert ids == sorted(set(ids)), "sequence ids must increase"

    # The P1S reports deltas and has neither a work light nor a second lamp.
    p1s_light = entity_id_of(hass, LIGHT_DOMAIN, P1S_SN, "chamber_light")
    await call_service(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, p1s_light)
    assert (last_command(p1s)["led_node"], last_command(p1s)["led_mode"]) == (
        "chamber_light",
        "off",
    )
    await wait_for(hass, lambda: state_of(hass, p1s_light) == STATE_OFF)
    registry = er.async_get(hass)
    for key in ("work_light", "chamber_light2"):
        assert not registry.async_get_entity_id(LIGHT_DOMAIN, DOMAIN, f"{P1S_SN}_{key}")

    # The printer reporting a change by itself updates the light.
    x1c.update({"lights_report": [{"node": "chamber_light", "mode": "flashing"}]})
    await wait_for(hass, lambda: state_of(hass, chamber) == STATE_OFF)
    x1c.update({"lights_report": [{"node": "chamber_light", "mode": "on"}]})
    await wait_for(hass, lambda: state_of(hass, chamber) == STATE_ON)
    x1c.update({"lights_report": []})
    await wait_for(hass, lambda: state_of(hass, work) == "unknown")


async def test_second_chamber_light(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    live: dict[str, VirtualPrinter],
) -> None:
    """The H2D's second lamp is its own node."""
    light = entity_id_of(hass, LIGHT_DOMAIN, H2D_SN, "chamber_light2")
    assert state_of(hass, light) == STATE_ON
    await call_service(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    assert (last_command(h2d)["led_node"], last_command(h2d)["led_mode"]) == (
        "chamber_light2",
        "off",
    )
    await wait_for(hass, lambda: state_of(hass, light) == STATE_OFF)
