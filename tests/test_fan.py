"""Tests for the fan platform: part cooling, aux, chamber, secondary aux."""

from __future__ import annotations

import pytest
from homeassistant.components.fan import (
    ATTR_PERCENTAGE,
    ATTR_PERCENTAGE_STEP,
    SERVICE_SET_PERCENTAGE,
)
from homeassistant.components.fan import DOMAIN as FAN_DOMAIN
from homeassistant.const import (
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.const import DOMAIN
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import (
    H2D_SN,
    P1S_SN,
    P2S_SN,
    X1C_SN,
    MqttEndpoint,
)
from .helpers import call_service, entity_id_of, last_command, state_of, wait_for


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The fans talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the fan platform is set up."""
    return [Platform.FAN]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "h2d", "p2s", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Fan entities of an X1C, a P1S, an H2D and a P2S match the snapshot."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


@pytest.mark.usefixtures("h2d", "p2s", "live")
async def test_fans_per_model(hass: HomeAssistant) -> None:
    """Every model has part cooling; only the P2S the secondary aux fan."""
    registry = er.async_get(hass)
    for serial in (X1C_SN, P1S_SN, H2D_SN, P2S_SN):
        for key in ("part_cooling_fan", "aux_fan", "chamber_fan"):
            assert registry.async_get_entity_id(FAN_DOMAIN, DOMAIN, f"{serial}_{key}")
        has_secondary = registry.async_get_entity_id(
            FAN_DOMAIN, DOMAIN, f"{serial}_secondary_aux_fan"
        )
        assert bool(has_secondary) is (serial == P2S_SN)
    fan = entity_id_of(hass, FAN_DOMAIN, X1C_SN, "part_cooling_fan")
    state = hass.states.get(fan)
    assert state is not None
    assert state.attributes[ATTR_PERCENTAGE_STEP] == 10


@pytest.mark.parametrize(
    ("key", "index", "field"),
    [
        ("part_cooling_fan", 1, "cooling_fan_speed"),
        ("aux_fan", 2, "big_fan1_speed"),
        ("chamber_fan", 3, "big_fan2_speed"),
    ],
)
async def test_set_speed(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    key: str,
    index: int,
    field: str,
) -> None:
    """M106 goes out with the PWM value; the printer's report sets the speed."""
    for name, serial in (("x1c", X1C_SN), ("p1s", P1S_SN)):
        printer = live[name]
        fan = entity_id_of(hass, FAN_DOMAIN, serial, key)
        assert state_of(hass, fan) == STATE_OFF
        await call_service(
            hass, FAN_DOMAIN, SERVICE_SET_PERCENTAGE, fan, **{ATTR_PERCENTAGE: 60}
        )
        command = last_command(printer)
        assert command["command"] == "gcode_line"
        assert command["param"] == f"M106 P{index} S153\n"
        assert printer.state[field] == "9"
        await wait_for(
            hass,
            lambda fan=fan: (
                (state := hass.states.get(fan)) is not None
                and state.attributes[ATTR_PERCENTAGE] == 60
            ),
        )
        assert state_of(hass, fan) == STATE_ON
        await call_service(hass, FAN_DOMAIN, SERVICE_TURN_OFF, fan)
        assert last_command(printer)["param"] == f"M106 P{index} S0\n"
        await wait_for(hass, lambda fan=fan: state_of(hass, fan) == STATE_OFF)


async def test_turn_on(hass: HomeAssistant, live: dict[str, VirtualPrinter]) -> None:
    """Turning on runs at full speed first, then at the last running speed."""
    x1c = live["x1c"]
    fan = entity_id_of(hass, FAN_DOMAIN, X1C_SN, "part_cooling_fan")
    await call_service(hass, FAN_DOMAIN, SERVICE_TURN_ON, fan)
    assert last_command(x1c)["param"] == "M106 P1 S255\n"
    await wait_for(hass, lambda: state_of(hass, fan) == STATE_ON)
    await call_service(hass, FAN_DOMAIN, SERVICE_TURN_ON, fan, percentage=60)
    assert last_command(x1c)["param"] == "M106 P1 S153\n"
    await wait_for(hass, lambda: hass.states.get(fan).attributes[ATTR_PERCENTAGE] == 60)
    await call_service(hass, FAN_DOMAIN, SERVICE_TURN_OFF, fan)
    await wait_for(hass, lambda: state_of(hass, fan) == STATE_OFF)
    await call_service(hass, FAN_DOMAIN, SERVICE_TURN_ON, fan)
    assert last_command(x1c)["param"] == "M106 P1 S153\n"
    await wait_for(hass, lambda: state_of(hass, fan) == STATE_ON)


async def test_secondary_aux_fan(
    hass: HomeAssistant, p2s: VirtualPrinter, live: dict[str, VirtualPrinter]
) -> None:
    """The P2S secondary aux fan is M106 P10, reported in the air duct (%)."""
    fan = entity_id_of(hass, FAN_DOMAIN, P2S_SN, "secondary_aux_fan")
    await wait_for(hass, lambda: state_of(hass, fan) == STATE_OFF)
    await call_service(
        hass, FAN_DOMAIN, SERVICE_SET_PERCENTAGE, fan, **{ATTR_PERCENTAGE: 40}
    )
    assert last_command(p2s)["param"] == "M106 P10 S102\n"
    parts = p2s.state["device"]["airduct"]["parts"]
    assert next(part for part in parts if part["id"] == 160)["state"] == 40
    await wait_for(hass, lambda: hass.states.get(fan).attributes[ATTR_PERCENTAGE] == 40)


async def test_unknown_speed_and_signing(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """No reported speed is unknown; signing firmware makes fans unavailable."""
    x1c = live["x1c"]
    fan = entity_id_of(hass, FAN_DOMAIN, X1C_SN, "aux_fan")
    x1c.state.pop("big_fan1_speed")
    x1c.publish_full()
    await wait_for(hass, lambda: state_of(hass, fan) == STATE_UNKNOWN)
    # G-code needs Developer Mode on authorization firmware, even when signed.
    x1c.signature_required = True
    x1c.publish_full()
    await wait_for(hass, lambda: state_of(hass, fan) == STATE_UNAVAILABLE)
