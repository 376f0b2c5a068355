"""Fixture stack: mock_config_entry -> cloud server -> init_integration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.bambu_cloud  # noqa: F401 - must load before HA's loader
from custom_components.bambu_cloud.const import (
    CONF_ACCESS_TOKEN,
    CONF_REGION,
    DOMAIN,
)

from .cloud_server import TOKEN, UID, FakeCloud, running_cloud


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from custom_components."""


@pytest.fixture
def entry_data() -> dict[str, Any]:
    """The data of the test account's config entry."""
    return {CONF_REGION: "global", CONF_ACCESS_TOKEN: TOKEN}


@pytest.fixture
def mock_config_entry(entry_data: dict[str, Any]) -> MockConfigEntry:
    """A config entry of the test account."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Maker",
        unique_id=UID,
        data=entry_data,
        entry_id="01JBAMBUCLOUDTESTENTRY0001",
    )


@pytest.fixture
async def cloud(socket_enabled: None) -> AsyncIterator[FakeCloud]:
    """The fake Bambu Lab cloud, served on 127.0.0.1 (real sockets)."""
    async with running_cloud() as fake:
        yield fake


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> MockConfigEntry:
    """The integration set up against the fake cloud."""
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry
