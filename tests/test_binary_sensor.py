"""Tests for the binary sensor platform: online, door, filament, SD card and errors."""

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

from .cloud_server import MqttEndpoint


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """Binary sensors are snapshotted with the printers reporting."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the binary sensor platform is set up."""
    return [Platform.BINARY_SENSOR]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Binary sensors of an X1C and a P1S, registry entries and states match."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)
