"""Tests for the button platform: print actions and the refresh button."""

from __future__ import annotations

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import (
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import async_get_platforms
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.button import BambuRefreshButton
from custom_components.bambu_cloud.const import DOMAIN
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import H2D_SN, X1C_SN, MqttEndpoint
from .helpers import (
    call_service,
    entity_id_of,
    last_command,
    sequence_ids,
    state_of,
    wait_for,
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The buttons talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the button platform is set up."""
    return [Platform.BUTTON]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "h2d", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Button entities of an X1C, a P1S and an H2D match the snapshot."""
    # AMS buttons come with the report, dryer buttons once the module list
    # names the H2D's AMS 2 Pro and AMS HT.
    await wait_for(
        hass,
        lambda: (
            entity_registry.async_get_entity_id(
                BUTTON_DOMAIN, DOMAIN, f"{H2D_SN}_ams_128_stop_drying"
            )
            is not None
        ),
    )
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


async def test_print_buttons(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Pause, resume and stop: available per job state, sent as print actions."""
    x1c = live["x1c"]
    pause, resume, stop = (
        entity_id_of(hass, BUTTON_DOMAIN, X1C_SN, key)
        for key in ("pause", "resume", "stop")
    )

    def available() -> set[str]:
        return {
            entity_id
            for entity_id in (pause, resume, stop)
            if state_of(hass, entity_id) != STATE_UNAVAILABLE
        }

    assert available() == set()  # idle
    x1c.update({"gcode_state": "PREPARE"})
    await wait_for(hass, lambda: available() == {pause, stop})
    x1c.update({"gcode_state": "RUNNING"})
    await wait_for(hass, lambda: available() == {pause, stop})

    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, pause)
    assert (last_command(x1c)["command"], last_command(x1c)["param"]) == ("pause", "")
    await wait_for(hass, lambda: available() == {resume, stop})

    # Home Assistant skips unavailable entities: nothing is sent.
    sent = len(x1c.received)
    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, pause)
    assert len(x1c.received) == sent

    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, resume)
    assert last_command(x1c)["command"] == "resume"
    await wait_for(hass, lambda: available() == {pause, stop})

    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, stop)
    assert last_command(x1c)["command"] == "stop"
    await wait_for(hass, lambda: available() == set())
    assert x1c.state["gcode_state"] == "FAILED"
    ids = sequence_ids(x1c)
    assert ids == sorted(set(ids))


def _refresh_entity(hass: HomeAssistant, entity_id: str) -> BambuRefreshButton:
    for platform in async_get_platforms(hass, DOMAIN):
        if (entity := platform.entities.get(entity_id)) is not None:
            assert isinstance(entity, BambuRefreshButton)
            return entity
    raise AssertionError(entity_id)


async def test_refresh_button(
    hass: HomeAssistant, live: dict[str, VirtualPrinter], broker: MqttBroker
) -> None:
    """Refresh sends pushall, at most once per ten seconds."""
    x1c = live["x1c"]
    refresh = entity_id_of(hass, BUTTON_DOMAIN, X1C_SN, "refresh")
    entry = er.async_get(hass).async_get(refresh)
    assert entry is not None
    assert entry.entity_category == "diagnostic"

    def pushalls() -> int:
        return sum(1 for m in x1c.received if m.get("pushing", {}).get("command"))

    before = pushalls()
    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, refresh)
    await wait_for(hass, lambda: pushalls() == before + 1)
    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, refresh)
    await hass.async_block_till_done()
    assert pushalls() == before + 1

    # Not connected: the press fails (and does not count against the limit).
    entity = _refresh_entity(hass, refresh)
    entity._last_press = float("-inf")
    await broker.stop()
    await wait_for(hass, lambda: state_of(hass, refresh) == STATE_UNAVAILABLE)
    with pytest.raises(HomeAssistantError) as err:
        await entity.async_press()
    assert err.value.translation_key == "printer_not_connected"
    assert entity._last_press == float("-inf")
