"""Tests for the sensor platform: cloud status, live printer values and AMS units."""

from __future__ import annotations

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from .cloud_server import FakeCloud, MqttEndpoint
from .helpers import state_of, wait_for


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """Sensors are snapshotted with the printers reporting."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the sensor platform is set up."""
    return [Platform.SENSOR]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Sensors of an X1C and a P1S, their registry entries and states match."""
    # AMS entities are added once a report shows the units.
    await wait_for(
        hass, lambda: state_of(hass, "sensor.garage_p1s_ams_1_humidity") is not None
    )
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


async def test_unknown_cloud_status(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_bambu_cloud: FakeCloud,
) -> None:
    """A print status the cloud invents later reads as unknown."""
    devices = mock_bambu_cloud.devices
    mock_bambu_cloud.devices = [{**devices[0], "print_status": "SOMETHING_NEW"}]
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    state = hass.states.get("sensor.workshop_x1c_cloud_print_status")
    assert state is not None
    assert state.state == "unknown"
