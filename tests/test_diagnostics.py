"""Diagnostics: useful, and without a single secret."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.const import CONF_HOST, CONF_PRINTERS

from .cloud_server import ACCOUNT, P1S, TOKEN, UID, X1C, FakeCloud


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    snapshot: SnapshotAssertion,
) -> None:
    """Secrets, serials and the account are redacted."""
    hass.config_entries.async_update_entry(
        init_integration,
        options={CONF_PRINTERS: {X1C["dev_id"]: {CONF_HOST: "127.0.0.1:1"}}},
    )
    await hass.async_block_till_done()
    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert result == snapshot
    text = str(result)
    for secret in (
        TOKEN,
        UID,
        ACCOUNT,
        X1C["dev_id"],
        P1S["dev_id"],
        "12345678",
        "127.0.0.1:1",
    ):
        assert secret not in text
