"""Tests for the send_gcode action."""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
)
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.services import MAX_GCODE_LENGTH
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import P1S_SN, X1C, X1C_SN, MqttEndpoint
from .helpers import (
    device_id_of,
    entity_id_of,
    last_command,
    sequence_ids,
    state_of,
    wait_for,
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The action talks to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """The control platforms are set up (the number shows sent targets)."""
    return [
        Platform.BUTTON,
        Platform.LIGHT,
        Platform.NUMBER,
        Platform.SELECT,
        Platform.SWITCH,
    ]


async def _send_gcode(hass: HomeAssistant, device_id: str, gcode: Any) -> None:
    await hass.services.async_call(
        DOMAIN,
        "send_gcode",
        {"device_id": device_id, "gcode": gcode},
        blocking=True,
    )


async def test_send_gcode(hass: HomeAssistant, live: dict[str, VirtualPrinter]) -> None:
    """G-code lines reach the printer as one gcode_line command."""
    x1c = live["x1c"]
    device_id = device_id_of(hass, X1C_SN)
    await _send_gcode(hass, device_id, "  M104 S205\r\nM140 S55  \n")
    assert (last_command(x1c)["command"], last_command(x1c)["param"]) == (
        "gcode_line",
        "M104 S205\nM140 S55\n",
    )
    assert x1c.state["nozzle_target_temper"] == 205.0
    nozzle = entity_id_of(hass, NUMBER_DOMAIN, X1C_SN, "nozzle_target_temperature")
    await wait_for(hass, lambda: state_of(hass, nozzle) == "205.0")
    ids = sequence_ids(x1c)
    assert ids == sorted(set(ids))


async def test_send_gcode_is_admin_only(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    hass_read_only_user: MockUser,
    hass_admin_user: MockUser,
) -> None:
    """Raw G-code can heat or move the printer: only administrators send it."""
    x1c = live["x1c"]
    data = {"device_id": device_id_of(hass, X1C_SN), "gcode": "M104 S205"}
    sent = len(x1c.received)
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "send_gcode",
            data,
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert len(x1c.received) == sent
    await hass.services.async_call(
        DOMAIN,
        "send_gcode",
        data,
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    assert (last_command(x1c)["command"], last_command(x1c)["param"]) == (
        "gcode_line",
        "M104 S205\n",
    )


@pytest.mark.parametrize(
    "gcode",
    ["", "   \n  ", "G1 X1\n" * (MAX_GCODE_LENGTH // 6 + 1), None],
    ids=["empty", "blank", "too_long", "none"],
)
async def test_send_gcode_bad_input(
    hass: HomeAssistant, live: dict[str, VirtualPrinter], gcode: Any
) -> None:
    """Bad G-code is refused before anything is sent."""
    sent = len(live["x1c"].received)
    with pytest.raises(vol.Invalid):
        await _send_gcode(hass, device_id_of(hass, X1C_SN), gcode)
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN, "send_gcode", {"gcode": "G28"}, blocking=True
        )
    assert len(live["x1c"].received) == sent


async def test_send_gcode_wrong_device(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Unknown devices, non-printers and unloaded entries are refused."""
    with pytest.raises(ServiceValidationError) as err:
        await _send_gcode(hass, "no-such-device", "G28")
    assert err.value.translation_key == "device_not_found"
    assert err.value.translation_placeholders == {"device_id": "no-such-device"}

    account = device_registry.async_get_device(
        identifiers={(DOMAIN, f"account_{mock_config_entry.unique_id}")}
    )
    assert account is not None
    with pytest.raises(ServiceValidationError) as err:
        await _send_gcode(hass, account.id, "G28")
    assert err.value.translation_key == "not_a_printer"

    other_entry = MockConfigEntry(domain="other")
    other_entry.add_to_hass(hass)
    other = device_registry.async_get_or_create(
        config_entry_id=other_entry.entry_id, identifiers={("other", "x")}, name="Lamp"
    )
    with pytest.raises(ServiceValidationError) as err:
        await _send_gcode(hass, other.id, "G28")
    assert err.value.translation_key == "not_a_printer"
    assert err.value.translation_placeholders == {"device": "Lamp"}

    # A printer device whose printer is no longer bound to the account.
    stale = device_registry.async_get_or_create(
        config_entry_id=mock_config_entry.entry_id,
        identifiers={(DOMAIN, "00M000000000009")},
    )
    with pytest.raises(ServiceValidationError) as err:
        await _send_gcode(hass, stale.id, "G28")
    assert err.value.translation_key == "not_a_printer"

    device_id = device_id_of(hass, X1C_SN)
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.NOT_LOADED
    with pytest.raises(ServiceValidationError) as err:
        await _send_gcode(hass, device_id, "G28")
    assert err.value.translation_key == "entry_not_loaded"
    assert err.value.translation_placeholders == {"device": X1C["name"]}


async def test_send_gcode_rejected(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    issue_registry: ir.IssueRegistry,
) -> None:
    """The action maps a signature refusal like the entities do."""
    live["p1s"].signature_required = True
    with pytest.raises(HomeAssistantError) as err:
        await _send_gcode(hass, device_id_of(hass, P1S_SN), "G28")
    assert err.value.translation_key == "signature_required"
    assert issue_registry.async_get_issue(DOMAIN, f"signature_{P1S_SN}") is not None
