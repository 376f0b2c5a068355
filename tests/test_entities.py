"""Snapshots of every entity, with live printers on the cloud broker."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import FakeCloud, MqttEndpoint
from .helpers import state_of, wait_for


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """Entities are snapshotted with the printers reporting."""
    return broker_endpoint


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.EVENT,
        Platform.SENSOR,
        Platform.UPDATE,
    ],
)
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    printers: dict[str, VirtualPrinter],
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """Entities, their registry entries and states match the snapshot."""
    mock_config_entry.add_to_hass(hass)
    with patch("custom_components.bambu_cloud.PLATFORMS", [platform]):
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        # Every printer reports (so its live entities are available) ...
        await wait_for(
            hass,
            lambda: all(
                link.available
                for link in mock_config_entry.runtime_data.hub.printers.values()
            ),
        )
        if platform is Platform.SENSOR:
            # ... and AMS entities are added once a report shows the units.
            await wait_for(
                hass,
                lambda: state_of(hass, "sensor.garage_p1s_ams_1_humidity") is not None,
            )
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


async def test_unknown_cloud_status(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """A print status the cloud invents later reads as unknown."""
    cloud.devices = [{**cloud.devices[0], "print_status": "SOMETHING_NEW"}]
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    state = hass.states.get("sensor.workshop_x1c_cloud_print_status")
    assert state is not None
    assert state.state == "unknown"
