"""Diagnostics: useful, and without a single secret."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.const import CONF_HOST, CONF_PRINTERS

from .cloud_server import ACCOUNT, P1S, TOKEN, UID, X1C, FakeCloud, MqttEndpoint
from .helpers import wait_for


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The printers report, so their live state is in the diagnostics."""
    return broker_endpoint


def _firmware(serial: str, installed: str, latest: str) -> dict[str, Any]:
    """A device as the firmware version endpoint lists it."""
    return {
        "dev_id": serial,
        "version": installed,
        "firmware": [
            {
                "version": latest,
                "force_update": False,
                "url": f"https://upgrade.example.invalid/{serial}/{latest}.json.sig",
                "description": "Fixes",
            }
        ],
        "ams": [],
    }


@pytest.mark.usefixtures("printers")
async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    snapshot: SnapshotAssertion,
) -> None:
    """Entry, both cloud polls and each printer's live state; secrets redacted."""
    cloud.versions = [_firmware(X1C["dev_id"], "01.08.02.00", "01.09.00.00")]
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    hub = mock_config_entry.runtime_data.hub
    await wait_for(hass, lambda: all(link.available for link in hub.printers.values()))
    await wait_for(
        hass, lambda: all(link.state.firmware_version for link in hub.printers.values())
    )
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={CONF_PRINTERS: {X1C["dev_id"]: {CONF_HOST: "127.0.0.1:1"}}},
    )
    await hass.async_block_till_done()
    result = await get_diagnostics_for_config_entry(
        hass, hass_client, mock_config_entry
    )
    assert result == snapshot
    assert result["firmware"]["last_update_success"] is True
    assert set(result["printers"]) == {"printer_1", "printer_2"}
    assert result["printers"]["printer_1"]["state"]["full_report"] is True
    text = str(result)
    for secret in (
        TOKEN,
        UID,
        ACCOUNT,
        X1C["dev_id"],
        P1S["dev_id"],
        "12345678",
        "127.0.0.1:1",
        "upgrade.example.invalid",
    ):
        assert secret not in text
