"""The print_file, skip_objects and list_files actions against virtual printers.

The printers are on the cloud broker; each test asserts what the printer
received and the state that follows its answer (or the refusal before
anything is sent).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.const import (
    CONF_LAN,
    CONF_PRINTERS,
    DOMAIN,
    LAN_OFF,
)
from custom_components.bambu_cloud.services import MAX_FILE_LENGTH, valid_file
from tools.virtual_printer.printer import VirtualPrinter

from .app_certs import rsa_cert, signing_entry_data
from .cloud_server import P1S_SN, X1C, X1C_SN, MqttEndpoint
from .helpers import (
    call_action,
    entity_id_of,
    last_command,
    setup_integration,
    state_of,
    wait_for,
)


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The actions talk to printers on the cloud broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """The sensors show the job state and its objects."""
    return [Platform.SENSOR]


def _job_state(hass: HomeAssistant, serial: str) -> str | None:
    return state_of(hass, entity_id_of(hass, SENSOR_DOMAIN, serial, "print_status"))


async def test_print_file(hass: HomeAssistant, live: dict[str, VirtualPrinter]) -> None:
    """Every option reaches the printer as one project_file; the job starts."""
    x1c = live["x1c"]
    await call_action(
        hass,
        "print_file",
        X1C_SN,
        file=" /cache/Cube.gcode.3mf ",
        plate=2,
        use_ams=True,
        ams_mapping=[0, -1, 254, 129],
        timelapse=True,
        bed_leveling=False,
        flow_calibration=False,
        vibration_calibration=True,
    )
    sent = last_command(x1c)
    assert sent == {
        "sequence_id": sent["sequence_id"],
        "command": "project_file",
        "param": "Metadata/plate_2.gcode",
        "url": "file:///sdcard/cache/Cube.gcode.3mf",
        "file": "cache/Cube.gcode.3mf",
        "md5": "",
        "project_id": "0",
        "profile_id": "0",
        "task_id": "0",
        "subtask_id": "0",
        "subtask_name": "Cube",
        "bed_type": "auto",
        "timelapse": True,
        "bed_leveling": False,
        "flow_cali": False,
        "vibration_cali": True,
        "layer_inspect": True,
        "use_ams": True,
        "ams_mapping": [0, -1, 254, 129],
    }
    await wait_for(hass, lambda: _job_state(hass, X1C_SN) == "running")
    assert x1c.state["subtask_name"] == "Cube"

    # A job runs now: a second one is refused before anything is sent.
    sent_before = len(x1c.received)
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "print_file", X1C_SN, file="/Other.3mf")
    assert err.value.translation_key == "printer_busy"
    assert err.value.translation_placeholders == {"device": X1C["name"]}
    assert len(x1c.received) == sent_before


@pytest.mark.parametrize(
    ("printer", "url"),
    [
        ("p1s", "file:///sdcard/Cube.3mf"),
        ("h2d", "ftp://Cube.3mf"),
        ("p2s", "file:///media/usb0/Cube.3mf"),
    ],
)
async def test_print_file_defaults_and_storage_url(
    hass: HomeAssistant,
    h2d: VirtualPrinter,
    p2s: VirtualPrinter,
    live: dict[str, VirtualPrinter],
    printer: str,
    url: str,
) -> None:
    """Defaults fill what is not given; the model names its storage."""
    fleet = {**live, "h2d": h2d, "p2s": p2s}
    target = fleet[printer]
    await wait_for(hass, lambda: all(link.available for link in _links(hass)))
    await call_action(hass, "print_file", target.serial, file="Cube.3mf")
    sent = last_command(target)
    assert {key: sent[key] for key in sent if key != "sequence_id"} == {
        "command": "project_file",
        "param": "Metadata/plate_1.gcode",
        "url": url,
        "file": "Cube.3mf",
        "md5": "",
        "project_id": "0",
        "profile_id": "0",
        "task_id": "0",
        "subtask_id": "0",
        "subtask_name": "Cube",
        "bed_type": "auto",
        "timelapse": False,
        "bed_leveling": True,
        "flow_cali": True,
        "vibration_cali": True,
        "layer_inspect": True,
        "use_ams": True,
        "ams_mapping": [],
    }
    await wait_for(hass, lambda: _job_state(hass, target.serial) == "running")


def _links(hass: HomeAssistant) -> list[Any]:
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    return list(entry.runtime_data.hub.printers.values())


@pytest.mark.parametrize(
    "file",
    [
        "",
        "   ",
        "model.stl",
        ".3mf",
        "/cache/.3mf",
        "../secret.3mf",
        "cache/../x.3mf",
        "cache//x.3mf",
        "./x.3mf",
        'a"b.3mf',
        "a\\b.3mf",
        "line\nbreak.3mf",
        "x" * MAX_FILE_LENGTH + ".3mf",
    ],
)
async def test_print_file_bad_name(
    hass: HomeAssistant, live: dict[str, VirtualPrinter], file: str
) -> None:
    """A name that is no .3mf path on the storage is refused, nothing is sent."""
    sent = len(live["x1c"].received)
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "print_file", X1C_SN, file=file)
    assert err.value.translation_key == "invalid_file"
    assert len(live["x1c"].received) == sent


def test_valid_file() -> None:
    """Good paths are made absolute, case of the suffix does not matter."""
    assert valid_file("Cube.3MF") == "/Cube.3MF"
    assert valid_file("//model/Part 1.gcode.3mf") == "/model/Part 1.gcode.3mf"


@pytest.mark.parametrize("tray", [16, -2, 127, 136, 253, 256])
async def test_print_file_bad_mapping(
    hass: HomeAssistant, live: dict[str, VirtualPrinter], tray: int
) -> None:
    """A tray no printer has is refused with its number."""
    sent = len(live["x1c"].received)
    with pytest.raises(ServiceValidationError) as err:
        await call_action(
            hass, "print_file", X1C_SN, file="Cube.3mf", ams_mapping=[0, tray]
        )
    assert err.value.translation_key == "invalid_ams_mapping"
    assert err.value.translation_placeholders == {"tray": str(tray)}
    assert len(live["x1c"].received) == sent


@pytest.mark.parametrize(
    "data",
    [{"plate": 0}, {"plate": 65}, {"ams_mapping": ["x"]}, {"ams_mapping": [0] * 33}],
)
async def test_print_file_schema(
    hass: HomeAssistant, live: dict[str, VirtualPrinter], data: dict[str, Any]
) -> None:
    """Plates and mappings out of range never reach the handler."""
    with pytest.raises(vol.Invalid):
        await call_action(hass, "print_file", X1C_SN, file="Cube.3mf", **data)


async def test_printer_refusals(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """The firmware's own refusals (missing file, busy) become errors."""
    p1s = live["p1s"]
    p1s.storage = {"/Cube.3mf": b"PK"}
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "print_file", P1S_SN, file="/Missing.3mf")
    assert err.value.translation_key == "command_failed"
    assert p1s.state["gcode_state"] == "IDLE"

    # The printer started a job Home Assistant has not heard of yet.
    p1s.state["gcode_state"] = "RUNNING"
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "print_file", P1S_SN, file="/Cube.3mf")
    assert err.value.translation_key == "command_failed"
    assert last_command(p1s)["command"] == "project_file"  # sent, refused


async def test_signature_required(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Firmware wanting signed commands, no app certificate: said up front."""
    p1s = live["p1s"]
    p1s.signature_required = True
    p1s.update({"fun": p1s.state["fun"]})
    link = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.hub.printers[
        P1S_SN
    ]
    await wait_for(hass, lambda: bool(link.state.signed_commands_required))
    sent = len(p1s.received)
    for service, data in (
        ("print_file", {"file": "Cube.3mf"}),
        ("skip_objects", {"objects": [1]}),
    ):
        with pytest.raises(HomeAssistantError) as err:
            await call_action(hass, service, P1S_SN, **data)
        assert err.value.translation_key == "signature_required"
    assert len(p1s.received) == sent


@pytest.mark.parametrize("entry_data", [signing_entry_data()])
@pytest.mark.usefixtures("mock_bambu_cloud")
async def test_signed_with_certificate(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
) -> None:
    """With an app certificate, the print and the skip go out signed."""
    x1c = printers["x1c"]
    x1c.public_key = rsa_cert().public_key
    x1c.signature_required = True
    await setup_integration(hass, mock_config_entry)
    await call_action(hass, "print_file", X1C_SN, file="Cube.3mf")
    assert x1c.verify_envelope(x1c.received[-1]) is None
    await wait_for(hass, lambda: _job_state(hass, X1C_SN) == "running")
    await call_action(hass, "skip_objects", X1C_SN, objects=[3])
    assert x1c.verify_envelope(x1c.received[-1]) is None
    assert x1c.state["s_obj"] == [3]


async def test_printer_offline(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """A printer that is not reporting takes no print."""
    p1s = live["p1s"]
    p1s.set_online(False)
    link = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.hub.printers[
        P1S_SN
    ]
    await wait_for(hass, lambda: not link.available)
    with pytest.raises(HomeAssistantError) as err:
        await call_action(hass, "print_file", P1S_SN, file="Cube.3mf")
    assert err.value.translation_key == "printer_not_connected"


async def test_skip_objects(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """Objects are skipped only while printing; the sensor lists them."""
    x1c = live["x1c"]
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "skip_objects", X1C_SN, objects=[75])
    assert err.value.translation_key == "no_job_running"
    assert err.value.translation_placeholders == {"device": X1C["name"]}

    await call_action(hass, "print_file", X1C_SN, file="Cube.3mf")
    await wait_for(hass, lambda: _job_state(hass, X1C_SN) == "running")
    before = int(time.time())
    await call_action(hass, "skip_objects", X1C_SN, objects=[131, 75, 131])
    sent = last_command(x1c)
    assert sent == {
        "sequence_id": sent["sequence_id"],
        "command": "skip_objects",
        "obj_list": [131, 75],
        "timestamp": sent["timestamp"],
    }
    assert before <= sent["timestamp"] <= int(time.time())
    objects = entity_id_of(hass, SENSOR_DOMAIN, X1C_SN, "print_objects")
    await wait_for(
        hass,
        lambda: hass.states.get(objects).attributes.get("skipped") == [75, 131],  # type: ignore[union-attr]
    )
    state = hass.states.get(objects)
    assert state is not None
    # No LAN link: the job's objects are not known, any id is sent.
    assert state.state == "unknown"
    assert state.attributes["objects"] == []

    # Paused still counts as running.
    x1c.update({"gcode_state": "PAUSE"})
    await wait_for(hass, lambda: _job_state(hass, X1C_SN) == "pause")
    await call_action(hass, "skip_objects", X1C_SN, objects=[12])
    assert x1c.state["s_obj"] == [12, 75, 131]


@pytest.mark.parametrize("objects", [[], [-1], ["x"], list(range(257))])
async def test_skip_objects_schema(
    hass: HomeAssistant, live: dict[str, VirtualPrinter], objects: list[Any]
) -> None:
    """Ids must be non-negative integers, one to 256 of them."""
    with pytest.raises(vol.Invalid):
        await call_action(hass, "skip_objects", X1C_SN, objects=objects)


@pytest.mark.usefixtures("mock_bambu_cloud")
async def test_list_files_without_lan(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
) -> None:
    """A printer whose LAN link is off has no storage to list."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={CONF_PRINTERS: {X1C_SN: {CONF_LAN: LAN_OFF}}},
    )
    await setup_integration(hass, mock_config_entry)
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "list_files", X1C_SN)
    assert err.value.translation_key == "storage_no_address"
    assert err.value.translation_placeholders == {"device": X1C["name"]}
