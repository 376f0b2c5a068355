"""Repair issues follow the printers and go away with the entry."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.const import DOMAIN
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import X1C, MqttEndpoint
from .helpers import wait_for

SIGNATURE_ISSUE = f"signature_{X1C['dev_id']}"


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The printers report over the cloud broker."""
    return broker_endpoint


@pytest.mark.usefixtures("cloud")
async def test_signature_issue_follows_the_printer(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Raised while the firmware wants signatures, cleared when it stops."""
    x1c = printers["x1c"]
    x1c.signature_required = True
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(
        hass,
        lambda: issue_registry.async_get_issue(DOMAIN, SIGNATURE_ISSUE) is not None,
    )
    issue = issue_registry.async_get_issue(DOMAIN, SIGNATURE_ISSUE)
    assert issue is not None
    assert issue.translation_placeholders == {"printer": X1C["name"]}

    x1c.signature_required = False
    x1c.update({"fun": x1c.state["fun"]})
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, SIGNATURE_ISSUE) is None
    )


@pytest.mark.usefixtures("cloud")
async def test_entry_removal_clears_printer_issues(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Deleting the entry deletes the issues it raised for its printers."""
    printers["x1c"].signature_required = True
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(
        hass,
        lambda: issue_registry.async_get_issue(DOMAIN, SIGNATURE_ISSUE) is not None,
    )
    ir.async_create_issue(
        hass,
        "other_domain",
        SIGNATURE_ISSUE,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="x",
    )
    await hass.config_entries.async_remove(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, SIGNATURE_ISSUE) is None
    assert issue_registry.async_get_issue("other_domain", SIGNATURE_ISSUE) is not None
