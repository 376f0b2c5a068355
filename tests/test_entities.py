"""Snapshots of every entity the cloud data creates."""

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

from .cloud_server import FakeCloud


@pytest.mark.parametrize("platform", [Platform.BINARY_SENSOR, Platform.SENSOR])
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """Entities, their registry entries and states match the snapshot."""
    mock_config_entry.add_to_hass(hass)
    with patch("custom_components.bambu_cloud.PLATFORMS", [platform]):
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
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
