"""Tests for the number platform: nozzle, bed and chamber targets."""

from __future__ import annotations

import pytest
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.const import (
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.bambu import const as bambu_const
from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.number import TARGETS
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import H2D_SN, X1C_SN, MqttEndpoint
from .helpers import (
    call_service,
    entity_id_of,
    last_command,
    state_of,
    wait_for,
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The numbers talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the number platform is set up."""
    return [Platform.NUMBER]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "h2d", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Number entities of an X1C, a P1S and an H2D match the snapshot."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


async def test_target_temperatures(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Targets go out as M104/M140 and come back in the report."""
    x1c = live["x1c"]
    nozzle = entity_id_of(hass, NUMBER_DOMAIN, X1C_SN, "nozzle_target_temperature")
    bed = entity_id_of(hass, NUMBER_DOMAIN, X1C_SN, "bed_target_temperature")
    state = hass.states.get(nozzle)
    assert state is not None
    assert (state.attributes["min"], state.attributes["max"]) == (0, 300)
    assert state.attributes["mode"] == "box"
    assert state.attributes["unit_of_measurement"] == "°C"
    bed_state = hass.states.get(bed)
    assert bed_state is not None
    assert bed_state.attributes["max"] == 110

    await call_service(
        hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, nozzle, **{ATTR_VALUE: 220}
    )
    assert (last_command(x1c)["command"], last_command(x1c)["param"]) == (
        "gcode_line",
        "M104 S220\n",
    )
    await wait_for(hass, lambda: state_of(hass, nozzle) == "220.0")
    await call_service(hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, bed, **{ATTR_VALUE: 60})
    assert last_command(x1c)["param"] == "M140 S60\n"
    await wait_for(hass, lambda: state_of(hass, bed) == "60.0")

    with pytest.raises(ServiceValidationError):
        await call_service(
            hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, bed, **{ATTR_VALUE: 111}
        )
    assert not er.async_get(hass).async_get_entity_id(
        NUMBER_DOMAIN, DOMAIN, f"{X1C_SN}_chamber_target_temperature"
    )


async def test_chamber_target(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    live: dict[str, VirtualPrinter],
) -> None:
    """The H2D switches its air duct to heating above 40 °C."""
    chamber = entity_id_of(hass, NUMBER_DOMAIN, H2D_SN, "chamber_target_temperature")
    state = hass.states.get(chamber)
    assert state is not None
    assert state.attributes["max"] == 65
    await call_service(
        hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, chamber, **{ATTR_VALUE: 50}
    )
    assert last_command(h2d)["param"] == "M145 P1\nM141 S50\n"
    await wait_for(hass, lambda: state_of(hass, chamber) == "50.0")
    await call_service(
        hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, chamber, **{ATTR_VALUE: 35}
    )
    assert last_command(h2d)["param"] == "M141 S35\nM145 P0\n"
    await wait_for(hass, lambda: state_of(hass, chamber) == "35.0")


def test_chamber_command_per_model() -> None:
    """X1E: plain M141; P2S/H2/X2D (the model's air duct): duct mode around M141."""
    chamber = next(d for d in TARGETS if d.key == "chamber_target_temperature")
    x1e = bambu_const.lookup_model(product_name="X1E")
    p2s = bambu_const.lookup_model(product_name="P2S")
    assert not x1e.air_duct
    assert p2s.air_duct
    assert chamber.command_fn(x1e, 55)["print"]["param"] == "M141 S55\n"
    assert chamber.command_fn(p2s, 41)["print"]["param"] == "M145 P1\nM141 S41\n"
    assert chamber.command_fn(p2s, 40)["print"]["param"] == "M141 S40\nM145 P0\n"
    heaters = [model for model in bambu_const.MODELS if model.chamber_heater]
    assert {m.name for m in heaters if not m.air_duct} == {"X1E"}
