"""Tests for the select platform: print speed, air duct mode, buzzer."""

from __future__ import annotations

import pytest
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.const import (
    Platform,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.bambu.commands import buzzer, set_air_duct
from custom_components.bambu_cloud.bambu.enums import AirDuctMode, BuzzerMode
from custom_components.bambu_cloud.bambu.hub import CommandError
from custom_components.bambu_cloud.const import DOMAIN
from tools.virtual_printer.printer import UNSUPPORTED_REASON, VirtualPrinter

from .cloud_server import (
    H2D_SN,
    P1S_SN,
    P2S_SN,
    X1C_SN,
    MqttEndpoint,
)
from .helpers import (
    call_service,
    entity_id_of,
    last_command,
    setup_integration,
    state_of,
    wait_for,
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The selects talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the select platform is set up."""
    return [Platform.SELECT]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "h2d", "p2s", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Select entities of an X1C, a P1S, an H2D and a P2S match the snapshot."""
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


async def test_air_duct_mode(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    p2s: VirtualPrinter,
    live: dict[str, VirtualPrinter],
) -> None:
    """set_airduct goes out with the mode id; the report's modeCur follows."""
    registry = er.async_get(hass)
    for serial in (X1C_SN, P1S_SN):
        key = f"{serial}_air_duct_mode"
        assert not registry.async_get_entity_id(SELECT_DOMAIN, DOMAIN, key)
    for printer, serial in ((h2d, H2D_SN), (p2s, P2S_SN)):
        duct = entity_id_of(hass, SELECT_DOMAIN, serial, "air_duct_mode")
        await wait_for(hass, lambda duct=duct: state_of(hass, duct) == "cooling")
        await call_service(
            hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, duct, option="heating"
        )
        command = last_command(printer)
        assert (command["command"], command["modeId"], command["submode"]) == (
            "set_airduct",
            1,
            -1,
        )
        assert printer.state["device"]["airduct"]["modeCur"] == 1
        await wait_for(hass, lambda duct=duct: state_of(hass, duct) == "heating")
    # A mode the select does not offer (laser) shows as unknown.
    h2d.update({"device": {"airduct": {"modeCur": 2}}})
    duct = entity_id_of(hass, SELECT_DOMAIN, H2D_SN, "air_duct_mode")
    await wait_for(hass, lambda: state_of(hass, duct) == "unknown")


async def test_buzzer(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    p2s: VirtualPrinter,
    live: dict[str, VirtualPrinter],
) -> None:
    """The H2D buzzer shows the mode sent last; other models have none."""
    registry = er.async_get(hass)
    for serial in (X1C_SN, P1S_SN, P2S_SN):
        key = f"{serial}_buzzer"
        assert not registry.async_get_entity_id(SELECT_DOMAIN, DOMAIN, key)
    bell = entity_id_of(hass, SELECT_DOMAIN, H2D_SN, "buzzer")
    assert state_of(hass, bell) == "unknown"
    await call_service(hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, bell, option="beep")
    command = last_command(h2d)
    assert (command["command"], command["mode"], command["reason"]) == (
        "buzzer_ctrl",
        2,
        "",
    )
    assert state_of(hass, bell) == "beep"


async def test_buzzer_refused(
    hass: HomeAssistant, p2s: VirtualPrinter, live: dict[str, VirtualPrinter]
) -> None:
    """Firmware without a buzzer or an air duct refuses the command.

    The state stays as it was: a refused mode is not shown.
    """
    hub = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.hub
    with pytest.raises(CommandError) as err:
        await hub.async_command(P2S_SN, buzzer(BuzzerMode.ALARM))
    assert err.value.reason == UNSUPPORTED_REASON
    with pytest.raises(CommandError) as err:
        await hub.async_command(X1C_SN, set_air_duct(AirDuctMode.HEATING))
    assert err.value.reason == UNSUPPORTED_REASON


async def test_buzzer_refusal_keeps_the_option(
    hass: HomeAssistant, h2d: VirtualPrinter, live: dict[str, VirtualPrinter]
) -> None:
    """A refused buzzer command raises and leaves the shown mode unchanged."""
    bell = entity_id_of(hass, SELECT_DOMAIN, H2D_SN, "buzzer")
    h2d.signature_required = True
    with pytest.raises(HomeAssistantError):
        await call_service(
            hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, bell, option="alarm"
        )
    assert state_of(hass, bell) == "unknown"


@pytest.mark.usefixtures("printers")
async def test_buzzer_restored(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    mock_config_entry: MockConfigEntry,
) -> None:
    """After a restart the buzzer shows the mode sent before it."""
    mock_restore_cache(
        hass,
        (
            State("select.studio_h2d_buzzer", "alarm"),
            State("select.studio_h2d_air_duct_mode", "heating"),
        ),
    )
    await setup_integration(hass, mock_config_entry)
    assert state_of(hass, "select.studio_h2d_buzzer") == "alarm"
    # The air duct shows what the printer reports, not a restored state.
    assert state_of(hass, "select.studio_h2d_air_duct_mode") == "cooling"
