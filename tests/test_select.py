"""Tests for the select platform: the print speed."""

from __future__ import annotations

import pytest
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.const import (
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import P1S, X1C, MqttEndpoint
from .helpers import (
    call_service,
    entity_id_of,
    last_command,
    state_of,
    wait_for,
)

X1C_SN = X1C["dev_id"]
P1S_SN = P1S["dev_id"]


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The selects talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the select platform is set up."""
    return [Platform.SELECT]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "h2d", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Select entities of an X1C, a P1S and an H2D match the snapshot."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


async def test_speed_select(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """The speed level goes out as a string 1..4; the report sets the option."""
    for name, serial in (("x1c", X1C_SN), ("p1s", P1S_SN)):
        printer = live[name]
        speed = entity_id_of(hass, SELECT_DOMAIN, serial, "print_speed")
        assert state_of(hass, speed) == "standard"
        await call_service(
            hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, speed, option="sport"
        )
        assert (last_command(printer)["command"], last_command(printer)["param"]) == (
            "print_speed",
            "3",
        )
        await wait_for(hass, lambda speed=speed: state_of(hass, speed) == "sport")
        await call_service(
            hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, speed, **{ATTR_OPTION: "silent"}
        )
        assert last_command(printer)["param"] == "1"
        await wait_for(hass, lambda speed=speed: state_of(hass, speed) == "silent")
