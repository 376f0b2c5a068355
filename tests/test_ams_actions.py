"""AMS actions and buttons against virtual printers on the test broker.

set_filament, start_drying / stop_drying, and the load, unload, RFID and
drying buttons: the exact payload the printer received, the entity states
its report leads to, refusals and validation errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import async_get_platforms
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.ams_control import (
    DRYING_BLOCKED,
    nozzle_temperature,
)
from custom_components.bambu_cloud.bambu.ams import DryingBlocker
from custom_components.bambu_cloud.bambu.state import Tray
from custom_components.bambu_cloud.button import BambuAmsButton
from custom_components.bambu_cloud.const import DOMAIN
from tools.virtual_printer.printer import (
    CANNOT_DRY_REASON,
    NO_REMOTE_DRYING_REASON,
    VirtualPrinter,
)

from .app_certs import rsa_cert, signing_entry_data
from .cloud_server import H2D_SN, P1S_SN, X1C_SN, MqttEndpoint
from .helpers import (
    call_service,
    device_id_of,
    last_command,
    setup_integration,
    state_of,
    wait_for,
)
from .tools.test_printer import Harness


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The printers report on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Slots and dryers are sensors, the controls buttons."""
    return [Platform.BUTTON, Platform.SENSOR]


def _entity(hass: HomeAssistant, domain: str, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    return entity_id


async def _wait_entity(hass: HomeAssistant, domain: str, unique_id: str) -> str:
    registry = er.async_get(hass)
    await wait_for(
        hass,
        lambda: registry.async_get_entity_id(domain, DOMAIN, unique_id) is not None,
    )
    return _entity(hass, domain, unique_id)


def _sent(printer: VirtualPrinter) -> dict[str, Any]:
    """The newest command without its sequence id."""
    return {k: v for k, v in last_command(printer).items() if k != "sequence_id"}


async def _action(hass: HomeAssistant, service: str, **data: Any) -> None:
    await hass.services.async_call(DOMAIN, service, data, blocking=True)


def _attrs(hass: HomeAssistant, entity_id: str) -> dict[str, Any]:
    state = hass.states.get(entity_id)
    assert state is not None
    return dict(state.attributes)


# ---------------------------------------------------------------- set_filament


async def test_set_filament_by_slot_sensor(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """The empty fourth slot of the X1C's AMS gets a third-party PETG."""
    x1c = live["x1c"]
    slot = await _wait_entity(hass, SENSOR_DOMAIN, f"{X1C_SN}_ams_0_tray_3")
    assert state_of(hass, slot) == "empty"
    await _action(
        hass,
        "set_filament",
        entity_id=slot,
        type=" PETG ",
        color="#ff8800",
        min_temp=220,
        max_temp=250,
    )
    assert _sent(x1c) == {
        "command": "ams_filament_setting",
        "ams_id": 0,
        "tray_id": 3,
        "tray_info_idx": "GFG99",
        "tray_color": "FF8800FF",
        "nozzle_temp_min": 220,
        "nozzle_temp_max": 250,
        "tray_type": "PETG",
    }
    await wait_for(hass, lambda: state_of(hass, slot) == "PETG")
    attrs = _attrs(hass, slot)
    assert (attrs["color"], attrs["nozzle_temp_min"], attrs["nozzle_temp_max"]) == (
        "#FF8800",
        220,
        250,
    )
    assert attrs["filament_id"] == "GFG99"


async def test_set_filament_by_device(
    hass: HomeAssistant, h2d: VirtualPrinter, live: dict[str, VirtualPrinter]
) -> None:
    """Printer + external + slot, an AMS HT without slot, P1S AMS + slot."""
    external = await _wait_entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_external_255")
    await _action(
        hass,
        "set_filament",
        device_id=device_id_of(hass, H2D_SN),
        ams="external",
        slot=2,
        type="TPU",
        color="101010",
        min_temp=200,
        max_temp=230,
        filament_id="GFU01",
    )
    assert _sent(h2d) == {
        "command": "ams_filament_setting",
        "ams_id": 255,
        "tray_id": 255,
        "tray_info_idx": "GFU01",
        "tray_color": "101010FF",
        "nozzle_temp_min": 200,
        "nozzle_temp_max": 230,
        "tray_type": "TPU",
    }
    await wait_for(hass, lambda: state_of(hass, external) == "TPU")

    ht_slot = await _wait_entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_128_tray_0")
    await _action(
        hass,
        "set_filament",
        device_id=device_id_of(hass, f"{H2D_SN}_ams_128"),
        type="PC",
        color="FFFFFF80",
        min_temp=260,
        max_temp=280,
    )
    sent = _sent(h2d)
    assert (sent["ams_id"], sent["tray_id"], sent["tray_info_idx"]) == (128, 0, "GFC99")
    assert sent["tray_color"] == "FFFFFF80"
    await wait_for(hass, lambda: state_of(hass, ht_slot) == "PC")

    # The P1S reports deltas: the slot still changes.
    p1s = live["p1s"]
    p1s_slot = await _wait_entity(hass, SENSOR_DOMAIN, f"{P1S_SN}_ams_0_tray_2")
    await _action(
        hass,
        "set_filament",
        device_id=device_id_of(hass, f"{P1S_SN}_ams_0"),
        ams="3",  # ignored: the device is the unit
        slot=3,
        type="ASA",
        color="#00AA00",
        min_temp=240,
        max_temp=270,
    )
    sent = _sent(p1s)
    assert (sent["ams_id"], sent["tray_id"], sent["tray_type"]) == (0, 2, "ASA")
    await wait_for(hass, lambda: state_of(hass, p1s_slot) == "ASA")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "target_required"),
        ({"entity_id": "sensor.nothing_here"}, "not_a_tray"),
        ({"device": "x1c"}, "ams_required"),
        ({"device": "x1c", "ams": "2", "slot": 1}, "ams_unit_not_found"),
        ({"device": "x1c_ams"}, "slot_required"),
        ({"device": "x1c", "ams": "external", "slot": 2}, "slot_not_found"),
        ({"device": "ht", "slot": 2}, "slot_not_found"),
        ({"device": "x1c_ams", "slot": 1, "type": "PLA;X"}, "invalid_filament_type"),
        ({"device": "x1c_ams", "slot": 1, "color": "orange"}, "invalid_color"),
        ({"device": "x1c_ams", "slot": 1, "filament_id": "G F"}, "invalid_filament_id"),
        (
            {"device": "x1c_ams", "slot": 1, "min_temp": 240, "max_temp": 220},
            "filament_temperatures_reversed",
        ),
    ],
)
async def test_set_filament_refuses_bad_input(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    live: dict[str, VirtualPrinter],
    data: dict[str, Any],
    key: str,
) -> None:
    """Bad targets and values: a translated validation error, nothing sent."""
    await _wait_entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_128_tray_0")
    devices = {
        "x1c": device_id_of(hass, X1C_SN),
        "x1c_ams": device_id_of(hass, f"{X1C_SN}_ams_0"),
        "ht": device_id_of(hass, f"{H2D_SN}_ams_128"),
    }
    call: dict[str, Any] = {
        "type": "PLA",
        "color": "FFFFFF",
        "min_temp": 190,
        "max_temp": 230,
        **data,
    }
    if "device" in call:
        call["device_id"] = devices[call.pop("device")]
    if key == "not_a_tray":
        # A button of the integration is no slot either.
        call["entity_id"] = _entity(hass, BUTTON_DOMAIN, f"{X1C_SN}_refresh")
    sent = [len(p.received) for p in (*live.values(), h2d)]
    with pytest.raises(ServiceValidationError) as err:
        await _action(hass, "set_filament", **call)
    assert err.value.translation_key == key
    assert [len(p.received) for p in (*live.values(), h2d)] == sent


async def test_set_filament_refused_by_the_printer(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Signing firmware without a certificate refuses: a HomeAssistantError."""
    p1s = live["p1s"]
    slot = await _wait_entity(hass, SENSOR_DOMAIN, f"{P1S_SN}_ams_0_tray_0")
    p1s.signature_required = True
    with pytest.raises(HomeAssistantError) as err:
        await _action(
            hass,
            "set_filament",
            entity_id=slot,
            type="PLA",
            color="FFFFFF",
            min_temp=190,
            max_temp=230,
        )
    assert err.value.translation_key == "signature_required"
    assert last_command(p1s)["command"] == "ams_filament_setting"


async def test_ams_actions_say_signature_required_first(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Signing firmware (known from its report), no certificate: nothing sent."""
    p1s = live["p1s"]
    slot = await _wait_entity(hass, SENSOR_DOMAIN, f"{P1S_SN}_ams_0_tray_0")
    p1s.signature_required = True
    p1s.update({"fun": p1s.state["fun"]})
    link = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.hub.printers[
        P1S_SN
    ]
    await wait_for(hass, lambda: bool(link.state.signed_commands_required))
    sent = len(p1s.received)
    with pytest.raises(HomeAssistantError) as err:
        await _action(
            hass,
            "set_filament",
            entity_id=slot,
            type="PLA",
            color="FFFFFF",
            min_temp=190,
            max_temp=230,
        )
    assert err.value.translation_key == "signature_required"
    assert len(p1s.received) == sent


@pytest.mark.parametrize("entry_data", [signing_entry_data()])
@pytest.mark.usefixtures("mock_bambu_cloud")
async def test_set_filament_signed_with_certificate(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
) -> None:
    """With an app certificate, signing firmware takes the filament setting."""
    x1c = printers["x1c"]
    x1c.public_key = rsa_cert().public_key
    x1c.signature_required = True
    await setup_integration(hass, mock_config_entry)
    slot = await _wait_entity(hass, SENSOR_DOMAIN, f"{X1C_SN}_ams_0_tray_3")
    await _action(
        hass,
        "set_filament",
        entity_id=slot,
        type="PETG",
        color="FF8800",
        min_temp=220,
        max_temp=250,
    )
    assert x1c.verify_envelope(x1c.received[-1]) is None
    assert last_command(x1c)["command"] == "ams_filament_setting"
    await wait_for(hass, lambda: state_of(hass, slot) == "PETG")


# ------------------------------------------------------- load, unload, RFID


async def test_load_unload_and_rfid_buttons(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Load a slot at its filament's temperature, unload it, re-read a tag."""
    x1c = live["x1c"]
    load_1 = await _wait_entity(hass, BUTTON_DOMAIN, f"{X1C_SN}_ams_0_tray_0_load")
    load_4 = _entity(hass, BUTTON_DOMAIN, f"{X1C_SN}_ams_0_tray_3_load")
    unload = _entity(hass, BUTTON_DOMAIN, f"{X1C_SN}_ams_0_unload")
    rfid_2 = _entity(hass, BUTTON_DOMAIN, f"{X1C_SN}_ams_0_tray_1_read_rfid")
    await wait_for(hass, lambda: state_of(hass, load_1) != STATE_UNAVAILABLE)
    assert state_of(hass, load_4) == STATE_UNAVAILABLE  # empty slot
    assert state_of(hass, unload) == STATE_UNAVAILABLE  # nothing loaded

    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, load_1)
    assert _sent(x1c) == {
        "command": "ams_change_filament",
        "ams_id": 0,
        "slot_id": 0,
        "target": 0,
        "curr_temp": 210,
        "tar_temp": 210,
    }
    await wait_for(hass, lambda: state_of(hass, unload) != STATE_UNAVAILABLE)

    # Switching to the PETG slot: pulled out at PLA's, fed at PETG's heat.
    load_2 = _entity(hass, BUTTON_DOMAIN, f"{X1C_SN}_ams_0_tray_1_load")
    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, load_2)
    sent = _sent(x1c)
    assert (sent["target"], sent["curr_temp"], sent["tar_temp"]) == (1, 210, 240)
    link = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.hub.printers[
        X1C_SN
    ]
    await wait_for(hass, lambda: link.state.active_tray_id == 1)

    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, unload)
    assert _sent(x1c) == {
        "command": "ams_change_filament",
        "ams_id": 0,
        "slot_id": 255,
        "target": 255,
        "curr_temp": 240,
        "tar_temp": 240,
    }
    await wait_for(hass, lambda: state_of(hass, unload) == STATE_UNAVAILABLE)

    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, rfid_2)
    assert _sent(x1c) == {"command": "ams_get_rfid", "ams_id": 0, "slot_id": 1}
    assert x1c.received[-1]["print"]["command"] == "ams_get_rfid"

    # Filament does not move while a job runs.
    x1c.update({"gcode_state": "RUNNING"})
    await wait_for(hass, lambda: state_of(hass, load_1) == STATE_UNAVAILABLE)
    assert state_of(hass, rfid_2) == STATE_UNAVAILABLE


async def test_buttons_need_a_signature(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """On signing firmware without an app certificate they are unavailable."""
    load = await _wait_entity(hass, BUTTON_DOMAIN, f"{P1S_SN}_ams_0_tray_0_load")
    await wait_for(hass, lambda: state_of(hass, load) != STATE_UNAVAILABLE)
    live["p1s"].signature_required = True
    live["p1s"].publish_delta({"fun": live["p1s"].state["fun"]})
    await wait_for(hass, lambda: state_of(hass, load) == STATE_UNAVAILABLE)


# --------------------------------------------------------------------- drying


async def test_drying_buttons_and_sensors(
    hass: HomeAssistant, h2d: VirtualPrinter, live: dict[str, VirtualPrinter]
) -> None:
    """One press dries the AMS 2 Pro with its spools' setting; stop ends it."""
    state = await _wait_entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_0_drying_state")
    left = _entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_0_drying_remaining")
    start = _entity(hass, BUTTON_DOMAIN, f"{H2D_SN}_ams_0_start_drying")
    stop = _entity(hass, BUTTON_DOMAIN, f"{H2D_SN}_ams_0_stop_drying")
    await wait_for(hass, lambda: state_of(hass, state) == "idle")
    assert state_of(hass, left) == "0"
    assert state_of(hass, stop) == STATE_UNAVAILABLE
    assert _attrs(hass, state)["blocked_by"] == []

    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, start)
    assert _sent(h2d) == {
        "command": "ams_filament_drying",
        "ams_id": 0,
        "temp": 55,
        "cooling_temp": 45,
        "duration": 8,
        "humidity": 0,
        "mode": 1,
        "rotate_tray": False,
        "filament": "",
        "close_power_conflict": False,
    }
    await wait_for(hass, lambda: state_of(hass, state) == "heating")
    assert state_of(hass, left) == "480"
    attrs = _attrs(hass, state)
    assert (attrs["temperature"], attrs["duration"]) == (55, 8)
    assert state_of(hass, start) == STATE_UNAVAILABLE
    assert state_of(hass, stop) != STATE_UNAVAILABLE

    h2d.tick()  # a minute of drying
    await wait_for(hass, lambda: state_of(hass, left) == "479")

    await call_service(hass, BUTTON_DOMAIN, SERVICE_PRESS, stop)
    sent = _sent(h2d)
    assert (sent["mode"], sent["temp"], sent["duration"]) == (0, 0, 0)
    await wait_for(hass, lambda: state_of(hass, state) == "idle")
    assert state_of(hass, left) == "0"

    # No dryer on the X1C's AMS: neither buttons nor dryer sensors.
    registry = er.async_get(hass)
    assert (
        registry.async_get_entity_id(
            BUTTON_DOMAIN, DOMAIN, f"{X1C_SN}_ams_0_start_drying"
        )
        is None
    )
    assert (
        registry.async_get_entity_id(
            SENSOR_DOMAIN, DOMAIN, f"{X1C_SN}_ams_0_drying_state"
        )
        is None
    )


async def test_drying_actions(
    hass: HomeAssistant, h2d: VirtualPrinter, live: dict[str, VirtualPrinter]
) -> None:
    """The AMS HT dries with the settings given, and stops by printer + ams."""
    state = await _wait_entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_128_drying_state")
    left = _entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_128_drying_remaining")
    await _action(
        hass,
        "start_drying",
        device_id=device_id_of(hass, f"{H2D_SN}_ams_128"),
        temperature=80,
        duration=12,
        filament="PA",
        rotate_tray=True,
    )
    sent = _sent(h2d)
    assert (sent["ams_id"], sent["temp"], sent["duration"], sent["mode"]) == (
        128,
        80,
        12,
        1,
    )
    assert (sent["filament"], sent["rotate_tray"]) == ("PA", True)
    await wait_for(hass, lambda: state_of(hass, left) == "720")
    assert state_of(hass, state) == "heating"
    assert _attrs(hass, state)["filament"] == "PA"

    await _action(hass, "stop_drying", device_id=device_id_of(hass, H2D_SN), ams="128")
    assert (_sent(h2d)["ams_id"], _sent(h2d)["mode"]) == (128, 0)
    await wait_for(hass, lambda: state_of(hass, state) == "idle")

    # Defaults from the spool: the HT's PA recommends 55 °C for 8 hours.
    await _action(hass, "start_drying", device_id=device_id_of(hass, H2D_SN), ams="128")
    sent = _sent(h2d)
    assert (sent["temp"], sent["duration"], sent["filament"]) == (55, 8, "PA")


@pytest.mark.parametrize(
    ("data", "error", "key"),
    [
        (
            {"unit": "ht", "temperature": 90},
            ServiceValidationError,
            "drying_temperature_out_of_range",
        ),
        (
            {"unit": "pro", "temperature": 70},
            ServiceValidationError,
            "drying_temperature_out_of_range",
        ),
        (
            {"unit": "pro", "duration": 30},
            ServiceValidationError,
            "drying_duration_out_of_range",
        ),
        (
            {"unit": "pro", "filament": "P;A"},
            ServiceValidationError,
            "invalid_filament_type",
        ),
        ({"unit": "x1c_ams"}, ServiceValidationError, "ams_cannot_dry"),
        ({"unit": "printer"}, ServiceValidationError, "ams_required"),
        ({"unit": "printer", "ams": "3"}, ServiceValidationError, "ams_unit_not_found"),
    ],
)
async def test_start_drying_refuses_bad_input(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    live: dict[str, VirtualPrinter],
    data: dict[str, Any],
    error: type[Exception],
    key: str,
) -> None:
    """Out of the unit's range, no heater, no unit: nothing is sent."""
    await _wait_entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_128_drying_state")
    devices = {
        "ht": device_id_of(hass, f"{H2D_SN}_ams_128"),
        "pro": device_id_of(hass, f"{H2D_SN}_ams_0"),
        "x1c_ams": device_id_of(hass, f"{X1C_SN}_ams_0"),
        "printer": device_id_of(hass, H2D_SN),
    }
    call = {"device_id": devices[data.pop("unit")], **data}
    sent = [len(p.received) for p in (*live.values(), h2d)]
    with pytest.raises(error) as err:
        await _action(hass, "start_drying", **call)
    assert err.value.translation_key == key  # type: ignore[attr-defined]
    assert [len(p.received) for p in (*live.values(), h2d)] == sent


async def test_drying_refusals(
    hass: HomeAssistant, h2d: VirtualPrinter, live: dict[str, VirtualPrinter]
) -> None:
    """Screen-only firmware, a blocked dryer, the printer's own refusal."""
    start = await _wait_entity(hass, BUTTON_DOMAIN, f"{H2D_SN}_ams_0_start_drying")
    state = _entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_0_drying_state")
    pro = device_id_of(hass, f"{H2D_SN}_ams_0")
    await wait_for(hass, lambda: state_of(hass, start) != STATE_UNAVAILABLE)

    # The dryer says why it cannot start: shown, and refused before sending.
    unit = h2d.state["ams"]["ams"][0]
    unit["dry_sf_reason"] = [8]
    h2d.publish_full()
    await wait_for(
        hass, lambda: _attrs(hass, state)["blocked_by"] == ["needs_power_adapter"]
    )
    sent = len(h2d.received)
    with pytest.raises(HomeAssistantError) as err:
        await _action(hass, "start_drying", device_id=pro)
    assert err.value.translation_key == "drying_blocked_needs_power_adapter"
    assert not err.value.translation_placeholders
    assert len(h2d.received) == sent

    # Blocked after the last report: the printer refuses, and says so.
    unit["dry_sf_reason"] = []
    h2d.publish_full()
    await wait_for(hass, lambda: _attrs(hass, state)["blocked_by"] == [])
    unit["dry_sf_reason"] = [0]  # not reported yet
    with pytest.raises(HomeAssistantError) as err:
        await _action(hass, "start_drying", device_id=pro)
    assert err.value.translation_key == "command_failed"
    assert h2d.received[-1]["print"]["command"] == "ams_filament_drying"
    unit["dry_sf_reason"] = []

    # Firmware that dries from its screen only: buttons off, actions refused.
    h2d.update({"fun2": "0"})
    await wait_for(hass, lambda: state_of(hass, start) == STATE_UNAVAILABLE)
    for service in ("start_drying", "stop_drying"):
        with pytest.raises(HomeAssistantError) as err:
            await _action(hass, service, device_id=pro)
        assert err.value.translation_key == "remote_drying_unsupported"


async def test_dryer_entities_follow_the_unit_kind(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    live: dict[str, VirtualPrinter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A unit's kind may change (module list): no entity is added twice."""
    await _wait_entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_128_drying_state")
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    registry = er.async_get(hass)
    before = len(er.async_entries_for_config_entry(registry, entry.entry_id))
    link = entry.runtime_data.hub.printers[H2D_SN]

    def kinds() -> list[str]:
        return [unit.kind for unit in link.state.ams_units]

    assert kinds() == ["ams_2_pro", "ams_ht"]
    h2d.publish(
        {
            "info": {
                "command": "get_version",
                "sequence_id": "0",
                "module": [{"name": "ams/128", "sw_ver": "00.00.06.49"}],
            }
        }
    )
    await wait_for(hass, lambda: kinds() == ["ams", "ams"])
    h2d.handle({"info": {"sequence_id": "0", "command": "get_version"}})
    await wait_for(hass, lambda: kinds() == ["ams_2_pro", "ams_ht"])
    assert len(er.async_entries_for_config_entry(registry, entry.entry_id)) == before
    assert "already exists" not in caplog.text


@pytest.mark.usefixtures("h2d", "live")
async def test_dryer_sensors_snapshot(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The dryer sensors of the H2D's AMS 2 Pro and AMS HT."""
    last = await _wait_entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_128_drying_remaining")
    await wait_for(hass, lambda: state_of(hass, last) == "0")
    for unit in (0, 128):
        for key in ("drying_state", "drying_remaining"):
            entity_id = _entity(hass, SENSOR_DOMAIN, f"{H2D_SN}_ams_{unit}_{key}")
            entry = entity_registry.async_get(entity_id)
            assert entry == snapshot(name=f"{entity_id}-entry")
            assert hass.states.get(entity_id) == snapshot(name=f"{entity_id}-state")


def test_virtual_printer_dryer() -> None:
    """The firmware stand-in: limits per unit, refusals, a timed run ending."""
    h2d = Harness("H2D")

    def dry(**fields: Any) -> dict[str, Any]:
        answer = h2d.command("print", "ams_filament_drying", **fields)[0]
        return dict(answer["print"])

    start = {"mode": 1, "temp": 65, "duration": 1, "filament": ""}
    assert dry(ams_id=7, **start)["reason"] == "invalid param"
    assert dry(ams_id=0, **{**start, "temp": 66})["reason"] == "invalid param"
    assert dry(ams_id=0, **{**start, "mode": 2})["reason"] == "invalid param"
    assert dry(ams_id=0, mode=0)["result"] == "success"  # idle: nothing to stop
    assert dry(ams_id=128, **{**start, "temp": 85})["result"] == "success"

    def ht() -> tuple[int, str]:
        unit = h2d.printer.state["ams"]["ams"][1]
        return unit["dry_time"], unit["info"]

    assert ht() == (60, "401021")
    for _ in range(60):
        h2d.printer.tick()
    assert ht() == (0, "1001")
    assert len(h2d.new()) == 60  # a report per minute
    [ack] = h2d.command("print", "ams_get_rfid", ams_id=0, slot_id=4)
    assert ack["print"]["reason"] == "invalid param"

    x1c = Harness("X1C")
    [ack] = x1c.command("print", "ams_filament_drying", ams_id=0, **start)
    assert ack["print"]["reason"] == CANNOT_DRY_REASON
    h2d.printer.state["fun2"] = "0"
    assert dry(ams_id=0, **start)["reason"] == NO_REMOTE_DRYING_REASON
    [ack] = x1c.command(
        "print",
        "ams_filament_setting",
        ams_id=0,
        tray_id=0,
        tray_color="red",
    )
    assert ack["print"]["reason"] == "invalid param"


async def test_units_that_leave_and_come_back(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    live: dict[str, VirtualPrinter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A unit unplugged loses its device; plugged in again, it gets them back."""
    start = await _wait_entity(hass, BUTTON_DOMAIN, f"{H2D_SN}_ams_128_start_drying")
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    registry = er.async_get(hass)
    before = len(er.async_entries_for_config_entry(registry, entry.entry_id))
    units = h2d.state["ams"]["ams"]
    h2d.state["ams"]["ams"] = units[:1]
    h2d.publish_full()
    await wait_for(hass, lambda: registry.async_get(start) is None)
    h2d.state["ams"]["ams"] = units
    h2d.publish_full()
    await wait_for(hass, lambda: registry.async_get(start) is not None)
    await wait_for(hass, lambda: state_of(hass, start) != STATE_UNAVAILABLE)
    assert len(er.async_entries_for_config_entry(registry, entry.entry_id)) == before
    assert "already exists" not in caplog.text

    # Pressed when the unit is gone (between its report and the press).
    button = next(
        entity
        for platform in async_get_platforms(hass, DOMAIN)
        if (entity := platform.entities.get(start)) is not None
    )
    assert isinstance(button, BambuAmsButton)
    button.unit_id = 3
    with pytest.raises(HomeAssistantError) as err:
        await button.async_press()
    assert err.value.translation_key == "ams_unit_not_found"


async def test_ams_field_must_be_a_unit_id(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """ams is a unit id or 'external': anything else fails the schema."""
    with pytest.raises(vol.Invalid):
        await _action(
            hass,
            "stop_drying",
            device_id=device_id_of(hass, X1C_SN),
            ams="first",
        )


def _tray(**fields: Any) -> Tray:
    return Tray(id=0, ams_id=0, global_id=0, empty=False, **fields)


def test_nozzle_temperature() -> None:
    """The middle of the filament's range; one bound alone; else 220 °C."""
    assert nozzle_temperature(None) == 220
    assert nozzle_temperature(_tray(nozzle_temp_min=190, nozzle_temp_max=230)) == 210
    assert nozzle_temperature(_tray(nozzle_temp_max=250)) == 250
    assert nozzle_temperature(_tray(nozzle_temp_min=200)) == 200
    assert nozzle_temperature(_tray(nozzle_temp_min=260, nozzle_temp_max=0)) == 260
    assert nozzle_temperature(_tray()) == 220


def test_each_drying_blocker_has_its_own_sentence() -> None:
    """A refusal names its reason in words: no reason code in the message."""
    en = json.loads(
        (
            Path(__file__).parent.parent
            / "custom_components/bambu_cloud/translations/en.json"
        ).read_text(encoding="utf-8")
    )["exceptions"]
    assert set(DRYING_BLOCKED) == set(DryingBlocker)
    assert len(set(DRYING_BLOCKED.values())) == len(DryingBlocker)
    for key in DRYING_BLOCKED.values():
        message = en[key]["message"]
        assert "{" not in message, key
