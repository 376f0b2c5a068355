"""Controls (light, button, select, number, switch) and the send_gcode action.

Every control runs against virtual printers on the cloud broker: the command
must reach the printer and the state must follow the printer's report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from unittest.mock import patch

import pytest
import voluptuous as vol
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.components.light import DOMAIN as LIGHT_DOMAIN
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
)
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.entity_platform import async_get_platforms
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.bambu import const as bambu_const
from custom_components.bambu_cloud.bambu.config import BambuConfig, Timeouts
from custom_components.bambu_cloud.bambu.hub import BambuHub
from custom_components.bambu_cloud.button import BambuRefreshButton
from custom_components.bambu_cloud.command_sender import async_send_command
from custom_components.bambu_cloud.const import (
    CONF_ACCESS_TOKEN,
    CONF_CERTIFICATE_ID,
    CONF_PRIVATE_KEY,
    CONF_REGION,
    DOMAIN,
)
from custom_components.bambu_cloud.number import chamber_gcode
from custom_components.bambu_cloud.services import MAX_GCODE_LENGTH
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .app_certs import rsa_cert
from .cloud_server import P1S, TOKEN, X1C, FakeCloud, MqttEndpoint, bind_entry
from .helpers import state_of, wait_for

H2D = bind_entry("09400A4A1500004", "Studio H2D", "H2D", "O1D")
X1C_SN = X1C["dev_id"]
P1S_SN = P1S["dev_id"]
H2D_SN = H2D["dev_id"]

CONTROL_PLATFORMS = [
    Platform.BUTTON,
    Platform.LIGHT,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SWITCH,
]
PRINT_CONTROLS = (
    (BUTTON_DOMAIN, "refresh", False),
    (LIGHT_DOMAIN, "chamber_light", False),
    (LIGHT_DOMAIN, "work_light", False),
    (SWITCH_DOMAIN, "timelapse", False),
    (SWITCH_DOMAIN, "camera_recording", False),
    (SWITCH_DOMAIN, "spaghetti_detection", False),
    (SWITCH_DOMAIN, "first_layer_inspection", False),
    (SELECT_DOMAIN, "print_speed", True),
    (NUMBER_DOMAIN, "nozzle_target_temperature", True),
    (NUMBER_DOMAIN, "bed_target_temperature", True),
    (SWITCH_DOMAIN, "auto_recovery", True),
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The controls talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms set up by a test (the control platforms by default)."""
    return CONTROL_PLATFORMS


@pytest.fixture(autouse=True)
def only_platforms(platforms: list[Platform]) -> Iterator[None]:
    """Set up only the platforms under test."""
    with patch("custom_components.bambu_cloud.PLATFORMS", platforms):
        yield


@pytest.fixture
async def h2d(cloud: FakeCloud, broker: MqttBroker) -> AsyncIterator[VirtualPrinter]:
    """A virtual H2D bound to the account as well."""
    cloud.devices = [*cloud.devices, H2D]
    printer = VirtualPrinter(broker, H2D_SN, "H2D")
    try:
        await printer.start()
        yield printer
    finally:
        await printer.stop()


def _hub(entry: MockConfigEntry) -> BambuHub:
    hub: BambuHub = entry.runtime_data.hub
    return hub


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set up the entry and wait until every printer reports."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hub = _hub(entry)
    await wait_for(
        hass,
        lambda: (
            bool(hub.printers) and all(link.available for link in hub.printers.values())
        ),
    )


@pytest.fixture
async def live(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> dict[str, VirtualPrinter]:
    """The integration with the X1C and the P1S reporting."""
    await _setup(hass, mock_config_entry)
    return printers


def _entity_id(hass: HomeAssistant, domain: str, serial: str, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        domain, DOMAIN, f"{serial}_{key}"
    )
    assert entity_id is not None, f"no {domain} {key} for {serial}"
    return entity_id


def _commands(printer: VirtualPrinter) -> list[dict[str, Any]]:
    """The inner objects of the commands a printer received (not state queries)."""
    return [
        inner
        for message in printer.received
        for kind, inner in message.items()
        if kind not in ("header", "pushing", "info")
    ]


def _last(printer: VirtualPrinter) -> dict[str, Any]:
    return _commands(printer)[-1]


def _sequence_ids(printer: VirtualPrinter) -> list[int]:
    return [
        int(inner["sequence_id"])
        for message in printer.received
        for kind, inner in message.items()
        if kind != "header"
    ]


async def _call(
    hass: HomeAssistant, domain: str, service: str, entity_id: str, **data: Any
) -> None:
    await hass.services.async_call(
        domain, service, {ATTR_ENTITY_ID: entity_id, **data}, blocking=True
    )


# ------------------------------------------------------------------ snapshots


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platforms", [[platform] for platform in CONTROL_PLATFORMS], ids=str
)
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    printers: dict[str, VirtualPrinter],
    h2d: VirtualPrinter,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Control entities of an X1C, a P1S and an H2D match the snapshot."""
    await _setup(hass, mock_config_entry)
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


# ------------------------------------------------------------------- lights


async def test_lights(hass: HomeAssistant, live: dict[str, VirtualPrinter]) -> None:
    """ledctrl reaches the printer; the light follows the printer's report."""
    x1c, p1s = live["x1c"], live["p1s"]
    chamber = _entity_id(hass, LIGHT_DOMAIN, X1C_SN, "chamber_light")
    work = _entity_id(hass, LIGHT_DOMAIN, X1C_SN, "work_light")
    assert state_of(hass, chamber) == STATE_ON
    assert state_of(hass, work) == STATE_OFF

    await _call(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, chamber)
    assert _last(x1c) == {
        "command": "ledctrl",
        "led_node": "chamber_light",
        "led_mode": "off",
        "led_on_time": 500,
        "led_off_time": 500,
        "loop_times": 0,
        "interval_time": 0,
        "sequence_id": _last(x1c)["sequence_id"],
    }
    await wait_for(hass, lambda: state_of(hass, chamber) == STATE_OFF)

    await _call(hass, LIGHT_DOMAIN, SERVICE_TURN_ON, work)
    assert (_last(x1c)["led_node"], _last(x1c)["led_mode"]) == ("work_light", "on")
    await wait_for(hass, lambda: state_of(hass, work) == STATE_ON)
    ids = _sequence_ids(x1c)
    assert ids == sorted(set(ids)), "sequence ids must increase"

    # The P1S reports deltas and has neither a work light nor a second lamp.
    p1s_light = _entity_id(hass, LIGHT_DOMAIN, P1S_SN, "chamber_light")
    await _call(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, p1s_light)
    assert (_last(p1s)["led_node"], _last(p1s)["led_mode"]) == ("chamber_light", "off")
    await wait_for(hass, lambda: state_of(hass, p1s_light) == STATE_OFF)
    registry = er.async_get(hass)
    for key in ("work_light", "chamber_light2"):
        assert not registry.async_get_entity_id(LIGHT_DOMAIN, DOMAIN, f"{P1S_SN}_{key}")

    # The printer reporting a change by itself updates the light.
    x1c.update({"lights_report": [{"node": "chamber_light", "mode": "flashing"}]})
    await wait_for(hass, lambda: state_of(hass, chamber) == STATE_OFF)
    x1c.update({"lights_report": [{"node": "chamber_light", "mode": "on"}]})
    await wait_for(hass, lambda: state_of(hass, chamber) == STATE_ON)
    x1c.update({"lights_report": []})
    await wait_for(hass, lambda: state_of(hass, work) == "unknown")


async def test_second_chamber_light(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    h2d: VirtualPrinter,
    mock_config_entry: MockConfigEntry,
) -> None:
    """The H2D's second lamp is its own node."""
    await _setup(hass, mock_config_entry)
    light = _entity_id(hass, LIGHT_DOMAIN, H2D_SN, "chamber_light2")
    assert state_of(hass, light) == STATE_ON
    await _call(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    assert (_last(h2d)["led_node"], _last(h2d)["led_mode"]) == ("chamber_light2", "off")
    await wait_for(hass, lambda: state_of(hass, light) == STATE_OFF)


# ------------------------------------------------------------------ buttons


async def test_print_buttons(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Pause, resume and stop: available per job state, sent as print actions."""
    x1c = live["x1c"]
    pause, resume, stop = (
        _entity_id(hass, BUTTON_DOMAIN, X1C_SN, key)
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

    await _call(hass, BUTTON_DOMAIN, SERVICE_PRESS, pause)
    assert (_last(x1c)["command"], _last(x1c)["param"]) == ("pause", "")
    await wait_for(hass, lambda: available() == {resume, stop})

    # Home Assistant skips unavailable entities: nothing is sent.
    sent = len(x1c.received)
    await _call(hass, BUTTON_DOMAIN, SERVICE_PRESS, pause)
    assert len(x1c.received) == sent

    await _call(hass, BUTTON_DOMAIN, SERVICE_PRESS, resume)
    assert _last(x1c)["command"] == "resume"
    await wait_for(hass, lambda: available() == {pause, stop})

    await _call(hass, BUTTON_DOMAIN, SERVICE_PRESS, stop)
    assert _last(x1c)["command"] == "stop"
    await wait_for(hass, lambda: available() == set())
    assert x1c.state["gcode_state"] == "FAILED"
    ids = _sequence_ids(x1c)
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
    refresh = _entity_id(hass, BUTTON_DOMAIN, X1C_SN, "refresh")
    entry = er.async_get(hass).async_get(refresh)
    assert entry is not None
    assert entry.entity_category == "diagnostic"

    def pushalls() -> int:
        return sum(1 for m in x1c.received if m.get("pushing", {}).get("command"))

    before = pushalls()
    await _call(hass, BUTTON_DOMAIN, SERVICE_PRESS, refresh)
    await wait_for(hass, lambda: pushalls() == before + 1)
    await _call(hass, BUTTON_DOMAIN, SERVICE_PRESS, refresh)
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


# ------------------------------------------------------------------- select


async def test_speed_select(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """The speed level goes out as a string 1..4; the report sets the option."""
    for name, serial in (("x1c", X1C_SN), ("p1s", P1S_SN)):
        printer = live[name]
        speed = _entity_id(hass, SELECT_DOMAIN, serial, "print_speed")
        assert state_of(hass, speed) == "standard"
        await _call(hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, speed, option="sport")
        assert (_last(printer)["command"], _last(printer)["param"]) == (
            "print_speed",
            "3",
        )
        await wait_for(hass, lambda speed=speed: state_of(hass, speed) == "sport")
        await _call(
            hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, speed, **{ATTR_OPTION: "silent"}
        )
        assert _last(printer)["param"] == "1"
        await wait_for(hass, lambda speed=speed: state_of(hass, speed) == "silent")


# ------------------------------------------------------------------ numbers


async def test_target_temperatures(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Targets go out as M104/M140 and come back in the report."""
    x1c = live["x1c"]
    nozzle = _entity_id(hass, NUMBER_DOMAIN, X1C_SN, "nozzle_target_temperature")
    bed = _entity_id(hass, NUMBER_DOMAIN, X1C_SN, "bed_target_temperature")
    state = hass.states.get(nozzle)
    assert state is not None
    assert (state.attributes["min"], state.attributes["max"]) == (0, 300)
    assert state.attributes["mode"] == "box"
    assert state.attributes["unit_of_measurement"] == "°C"
    bed_state = hass.states.get(bed)
    assert bed_state is not None
    assert bed_state.attributes["max"] == 110

    await _call(hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, nozzle, **{ATTR_VALUE: 220})
    assert (_last(x1c)["command"], _last(x1c)["param"]) == ("gcode_line", "M104 S220\n")
    await wait_for(hass, lambda: state_of(hass, nozzle) == "220.0")
    await _call(hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, bed, **{ATTR_VALUE: 60})
    assert _last(x1c)["param"] == "M140 S60\n"
    await wait_for(hass, lambda: state_of(hass, bed) == "60.0")

    with pytest.raises(ServiceValidationError):
        await _call(hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, bed, **{ATTR_VALUE: 111})
    assert not er.async_get(hass).async_get_entity_id(
        NUMBER_DOMAIN, DOMAIN, f"{X1C_SN}_chamber_target_temperature"
    )


async def test_chamber_target(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    h2d: VirtualPrinter,
    mock_config_entry: MockConfigEntry,
) -> None:
    """The H2D switches its air duct to heating above 40 °C."""
    await _setup(hass, mock_config_entry)
    chamber = _entity_id(hass, NUMBER_DOMAIN, H2D_SN, "chamber_target_temperature")
    state = hass.states.get(chamber)
    assert state is not None
    assert state.attributes["max"] == 65
    await _call(hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, chamber, **{ATTR_VALUE: 50})
    assert _last(h2d)["param"] == "M145 P1\nM141 S50\n"
    await wait_for(hass, lambda: state_of(hass, chamber) == "50.0")
    await _call(hass, NUMBER_DOMAIN, SERVICE_SET_VALUE, chamber, **{ATTR_VALUE: 35})
    assert _last(h2d)["param"] == "M141 S35\nM145 P0\n"
    await wait_for(hass, lambda: state_of(hass, chamber) == "35.0")


def test_chamber_gcode_per_model() -> None:
    """X1E: plain M141; P2S/H2/X2D: air duct mode around M141."""
    x1e = bambu_const.lookup_model(product_name="X1E")
    p2s = bambu_const.lookup_model(product_name="P2S")
    assert chamber_gcode(x1e, 55) == "M141 S55\n"
    assert chamber_gcode(p2s, 41) == "M145 P1\nM141 S41\n"
    assert chamber_gcode(p2s, 40) == "M141 S40\nM145 P0\n"


# ----------------------------------------------------------------- switches


@pytest.mark.parametrize(
    ("key", "initial", "kind", "expected"),
    [
        (
            "timelapse",
            STATE_OFF,
            "camera",
            {"command": "ipcam_timelapse", "control": "enable"},
        ),
        (
            "camera_recording",
            STATE_ON,
            "camera",
            {"command": "ipcam_record_set", "control": "disable"},
        ),
        (
            "spaghetti_detection",
            STATE_ON,
            "xcam",
            {
                "command": "xcam_control_set",
                "module_name": "spaghetti_detector",
                "control": False,
                "print_halt": True,
            },
        ),
        (
            "first_layer_inspection",
            STATE_ON,
            "xcam",
            {
                "command": "xcam_control_set",
                "module_name": "first_layer_inspector",
                "control": False,
                "print_halt": True,
            },
        ),
        (
            "auto_recovery",
            STATE_OFF,
            "print",
            {"command": "print_option", "auto_recovery": True},
        ),
    ],
)
async def test_switches(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    key: str,
    initial: str,
    kind: str,
    expected: dict[str, Any],
) -> None:
    """Each switch sends its command and follows the printer's report."""
    x1c = live["x1c"]
    switch = _entity_id(hass, SWITCH_DOMAIN, X1C_SN, key)
    entry = er.async_get(hass).async_get(switch)
    assert entry is not None
    assert entry.entity_category == "config"
    assert state_of(hass, switch) == initial
    service = SERVICE_TURN_OFF if initial == STATE_ON else SERVICE_TURN_ON
    await _call(hass, SWITCH_DOMAIN, service, switch)
    message = x1c.received[-1]
    assert kind in message
    inner = {k: v for k, v in message[kind].items() if k != "sequence_id"}
    assert inner == expected
    flipped = STATE_OFF if initial == STATE_ON else STATE_ON
    await wait_for(hass, lambda: state_of(hass, switch) == flipped)
    # ...and back.
    back = SERVICE_TURN_ON if initial == STATE_ON else SERVICE_TURN_OFF
    await _call(hass, SWITCH_DOMAIN, back, switch)
    await wait_for(hass, lambda: state_of(hass, switch) == initial)


async def test_prompt_sound(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    h2d: VirtualPrinter,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Prompt sound exists on the H2D, not on X1C or P1S; first layer only on X1."""
    await _setup(hass, mock_config_entry)
    registry = er.async_get(hass)
    for serial in (X1C_SN, P1S_SN):
        assert not registry.async_get_entity_id(
            SWITCH_DOMAIN, DOMAIN, f"{serial}_prompt_sound"
        )
    for serial in (P1S_SN, H2D_SN):
        assert not registry.async_get_entity_id(
            SWITCH_DOMAIN, DOMAIN, f"{serial}_first_layer_inspection"
        )
    sound = _entity_id(hass, SWITCH_DOMAIN, H2D_SN, "prompt_sound")
    assert state_of(hass, sound) == STATE_OFF
    await _call(hass, SWITCH_DOMAIN, SERVICE_TURN_ON, sound)
    assert _last(h2d) == {
        "command": "print_option",
        "sound_enable": True,
        "sequence_id": _last(h2d)["sequence_id"],
    }
    await wait_for(hass, lambda: state_of(hass, sound) == STATE_ON)


# ------------------------------------------------------------------- signing


@pytest.mark.usefixtures("cloud")
async def test_signature_required_without_certificate(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Print controls go unavailable; lights and camera switches stay usable."""
    x1c = printers["x1c"]
    x1c.signature_required = True
    await _setup(hass, mock_config_entry)
    x1c.update({"gcode_state": "RUNNING"})
    pause = _entity_id(hass, BUTTON_DOMAIN, X1C_SN, "pause")
    # Running, but unusable without a certificate.
    await hass.async_block_till_done()
    assert state_of(hass, pause) == STATE_UNAVAILABLE
    for domain, key, signed in PRINT_CONTROLS:
        entity_id = _entity_id(hass, domain, X1C_SN, key)
        unavailable = state_of(hass, entity_id) == STATE_UNAVAILABLE
        assert unavailable is signed, entity_id
    assert issue_registry.async_get_issue(DOMAIN, f"signature_{X1C_SN}") is not None

    light = _entity_id(hass, LIGHT_DOMAIN, X1C_SN, "chamber_light")
    await _call(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    await wait_for(hass, lambda: state_of(hass, light) == STATE_OFF)
    # The P1S has no such firmware: its print controls stay available.
    speed = _entity_id(hass, SELECT_DOMAIN, P1S_SN, "print_speed")
    assert state_of(hass, speed) == "standard"


async def test_rejected_signature(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    issue_registry: ir.IssueRegistry,
) -> None:
    """A printer refusing unsigned commands: translated error and repair issue."""
    p1s = live["p1s"]
    # Enforced before the printer reports it (delta reports skip "fun").
    p1s.signature_required = True
    speed = _entity_id(hass, SELECT_DOMAIN, P1S_SN, "print_speed")
    assert issue_registry.async_get_issue(DOMAIN, f"signature_{P1S_SN}") is None
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, speed, option="sport")
    assert err.value.translation_key == "signature_required"
    issue = issue_registry.async_get_issue(DOMAIN, f"signature_{P1S_SN}")
    assert issue is not None
    assert issue.translation_key == "signed_commands_required"
    assert issue.translation_placeholders == {"printer": P1S["name"]}
    assert p1s.state["spd_lvl"] == 2
    assert state_of(hass, speed) == "standard"


@pytest.mark.parametrize(
    "entry_data",
    [
        {
            CONF_REGION: "global",
            CONF_ACCESS_TOKEN: TOKEN,
            CONF_CERTIFICATE_ID: rsa_cert().certificate_id,
            CONF_PRIVATE_KEY: rsa_cert().key_pem,
        }
    ],
)
@pytest.mark.usefixtures("cloud")
async def test_signed_with_certificate(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """With an app certificate print commands are signed and accepted."""
    cert = rsa_cert()
    x1c = printers["x1c"]
    x1c.public_key = cert.public_key
    x1c.signature_required = True
    await _setup(hass, mock_config_entry)
    for domain, key, _ in PRINT_CONTROLS:
        # Signed G-code would also need encryption with the printer's own key:
        # raw G-code controls stay unavailable (Developer Mode only).
        expect_available = domain != NUMBER_DOMAIN
        state = state_of(hass, _entity_id(hass, domain, X1C_SN, key))
        assert (state != STATE_UNAVAILABLE) is expect_available
    assert issue_registry.async_get_issue(DOMAIN, f"signature_{X1C_SN}") is None

    speed = _entity_id(hass, SELECT_DOMAIN, X1C_SN, "print_speed")
    await _call(hass, SELECT_DOMAIN, SERVICE_SELECT_OPTION, speed, option="ludicrous")
    message = x1c.received[-1]
    assert message["header"]["cert_id"] == cert.certificate_id
    assert x1c.verify_envelope(message) is None
    await wait_for(hass, lambda: state_of(hass, speed) == "ludicrous")

    recovery = _entity_id(hass, SWITCH_DOMAIN, X1C_SN, "auto_recovery")
    await _call(hass, SWITCH_DOMAIN, SERVICE_TURN_ON, recovery)
    await wait_for(hass, lambda: state_of(hass, recovery) == STATE_ON)

    # Unsigned classes go out without an envelope.
    light = _entity_id(hass, LIGHT_DOMAIN, X1C_SN, "chamber_light")
    await _call(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    assert "header" not in x1c.received[-1]


# -------------------------------------------------------------- send errors


async def test_command_timeout(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    configure_library: Callable[..., BambuConfig],
) -> None:
    """No ack within the configured time: a translated error, state unchanged."""
    configure_library(timeouts=Timeouts(command_ack=0.2))
    await _setup(hass, mock_config_entry)
    printers["x1c"].detach()
    light = _entity_id(hass, LIGHT_DOMAIN, X1C_SN, "chamber_light")
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    assert err.value.translation_key == "command_timeout"
    assert state_of(hass, light) == STATE_ON


async def test_command_failed_and_not_connected(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
) -> None:
    """A refused command and an unknown printer map to translated errors."""
    hub = _hub(mock_config_entry)
    with pytest.raises(HomeAssistantError) as err:
        await async_send_command(
            hass, hub, X1C_SN, "X1C", {"print": {"command": "no_such_command"}}
        )
    # The printer's English reason is logged, not put into the message.
    assert err.value.translation_key == "command_failed"
    assert err.value.translation_placeholders is None
    with pytest.raises(HomeAssistantError) as err:
        # The printer echoes the command's fields, err_code included.
        await async_send_command(
            hass,
            hub,
            X1C_SN,
            "X1C",
            {"print": {"command": "no_such_command", "err_code": 50364437}},
        )
    assert err.value.translation_key == "command_failed_code"
    assert err.value.translation_placeholders == {"code": "50364437"}
    with pytest.raises(HomeAssistantError) as err:
        await async_send_command(hass, hub, "00M000000000000", "", {"system": {}})
    assert err.value.translation_key == "printer_not_connected"


# --------------------------------------------------------------- send_gcode


def _printer_device(hass: HomeAssistant, serial: str) -> str:
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, serial)})
    assert device is not None
    return device.id


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
    device_id = _printer_device(hass, X1C_SN)
    await _send_gcode(hass, device_id, "  M104 S205\r\nM140 S55  \n")
    assert (_last(x1c)["command"], _last(x1c)["param"]) == (
        "gcode_line",
        "M104 S205\nM140 S55\n",
    )
    assert x1c.state["nozzle_target_temper"] == 205.0
    nozzle = _entity_id(hass, NUMBER_DOMAIN, X1C_SN, "nozzle_target_temperature")
    await wait_for(hass, lambda: state_of(hass, nozzle) == "205.0")
    ids = _sequence_ids(x1c)
    assert ids == sorted(set(ids))


async def test_send_gcode_is_admin_only(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    hass_read_only_user: MockUser,
    hass_admin_user: MockUser,
) -> None:
    """Raw G-code can heat or move the printer: only administrators send it."""
    x1c = live["x1c"]
    data = {"device_id": _printer_device(hass, X1C_SN), "gcode": "M104 S205"}
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
    assert (_last(x1c)["command"], _last(x1c)["param"]) == ("gcode_line", "M104 S205\n")


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
        await _send_gcode(hass, _printer_device(hass, X1C_SN), gcode)
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

    device_id = _printer_device(hass, X1C_SN)
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
        await _send_gcode(hass, _printer_device(hass, P1S_SN), "G28")
    assert err.value.translation_key == "signature_required"
    assert issue_registry.async_get_issue(DOMAIN, f"signature_{P1S_SN}") is not None
