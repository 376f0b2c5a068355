"""The running job's project file: objects, skipping by them, plate thumbnail.

Real servers on 127.0.0.1: a P1S without an account on its own mosquitto
broker and the FTPS test server serving the printer's storage (the virtual
printer's ``storage`` dict), both with certificates of a pinned Bambu-shaped
test CA (CN = serial); the projects are generated at run time. The cloud
cover fallback runs an account's X1C with a LAN broker and the same FTPS
server.
"""

from __future__ import annotations

import asyncio
import io
import logging
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest
from homeassistant.components.image import DOMAIN as IMAGE_DOMAIN
from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.bambu_cloud.bambu.config import BambuConfig, Ports, Timeouts
from custom_components.bambu_cloud.bambu.mqtt import RetryPolicy
from custom_components.bambu_cloud.bambu.project_file import read_plate
from custom_components.bambu_cloud.const import (
    CONF_ACCESS_CODE,
    CONF_HOST,
    CONF_PRINTERS,
    CONF_SERIAL,
    DOMAIN,
)
from custom_components.bambu_cloud.job_files import (
    JobFiles,
    JobKey,
    candidate_paths,
    file_stem,
)
from tools.test_pki import IssuedCert, TestPKI
from tools.virtual_printer.ftps import FtpsServer, FtpsSite
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter
from tools.virtual_printer.project_files import (
    sample_objects,
    sample_project,
    slice_info,
)

from .cloud_server import X1C, FakeCloud, MqttEndpoint
from .cover_cdn import PNG, Cover, CoverServer
from .helpers import (
    call_action,
    entity_id_of,
    setup_integration,
    state_of,
    wait_for,
)

SERIAL = "01P00A000000042"
CODE = "12345678"
CUBE = "/cache/Cube.gcode.3mf"
CUBE_PROJECT = sample_project("Cube")
CUBE_OBJECTS = [
    {"id": obj.identify_id, "name": obj.name} for obj in sample_objects("Cube")
]
THUMBNAIL = read_plate(CUBE_PROJECT).thumbnail


@dataclass
class Lan:
    """A printer's LAN side: broker, FTPS server, the virtual printer."""

    broker: MqttBroker
    ftps: FtpsServer
    printer: VirtualPrinter

    @property
    def host(self) -> str:
        """The broker's address with its port, as a user types it."""
        return f"127.0.0.1:{self.broker.port}"


@pytest.fixture
def mqtt_endpoint(request: pytest.FixtureRequest) -> MqttEndpoint:
    """The cloud broker for the account tests, none for the LAN entry."""
    if "x1c_lan" in request.fixturenames:
        endpoint: MqttEndpoint = request.getfixturevalue("broker_endpoint")
        return endpoint
    return MqttEndpoint()


@pytest.fixture
def platforms() -> list[Platform]:
    """The objects sensor and the cover image."""
    return [Platform.SENSOR, Platform.IMAGE]


@pytest.fixture
def printer_ca(pki: TestPKI) -> IssuedCert:
    """The pinned Bambu-shaped CA of the printers."""
    return pki.root("Test Printer CA")


@pytest.fixture
def lan_library(
    configure_library: Callable[..., BambuConfig], printer_ca: IssuedCert
) -> Callable[[int], None]:
    """Pin the printer CA; the FTPS port; short time limits."""

    def configure(ftps_port: int) -> None:
        configure_library(
            pins=frozenset({printer_ca.sha256}),
            ports=Ports(ftps=ftps_port),
            timeouts=Timeouts(
                command_ack=3.0, mqtt_connect=5.0, probe=5.0, file_transfer=2.0
            ),
            retry=RetryPolicy(minimum=0.05, maximum=0.2),
        )

    return configure


@pytest.fixture
async def lan(
    hass: HomeAssistant,
    socket_enabled: None,
    pki: TestPKI,
    printer_ca: IssuedCert,
    lan_library: Callable[[int], None],
) -> AsyncIterator[Lan]:
    """A P1S in LAN mode with its storage served over FTPS."""
    leaf = pki.server(printer_ca, SERIAL)
    broker = MqttBroker(leaf, users={"bblp": CODE})
    printer = VirtualPrinter(broker, SERIAL, "P1S")
    printer.storage = {CUBE: CUBE_PROJECT, "/Other.3mf": b"not a zip"}
    ftps = FtpsServer([FtpsSite(SERIAL, leaf.server_context(), CODE, printer.storage)])
    try:
        await broker.start()
        await ftps.start()
        lan_library(ftps.port)
        await printer.start()
        yield Lan(broker, ftps, printer)
    finally:
        for entry in hass.config_entries.async_entries(DOMAIN):
            if entry.state is ConfigEntryState.LOADED:
                await hass.config_entries.async_unload(entry.entry_id)
        await printer.stop()
        await ftps.stop()
        await broker.stop()


@pytest.fixture
async def lan_entry(
    hass: HomeAssistant, lan: Lan, platforms: list[Platform]
) -> AsyncIterator[MockConfigEntry]:
    """The LAN-only entry of the P1S, set up and reporting."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Loft P1S",
        unique_id=SERIAL,
        data={CONF_HOST: lan.host, CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("custom_components.bambu_cloud.PLATFORMS", platforms)
        await setup_integration(hass, entry)
        yield entry


def _job_files(entry: MockConfigEntry) -> JobFiles:
    job_files: JobFiles | None = entry.runtime_data.job_files
    assert job_files is not None
    return job_files


async def _call(
    hass: HomeAssistant, service: str, serial: str = SERIAL, **data: Any
) -> Any:
    return await call_action(hass, service, serial, **data)


def _objects_sensor(hass: HomeAssistant, serial: str = SERIAL) -> str:
    return entity_id_of(hass, SENSOR_DOMAIN, serial, "print_objects")


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)


async def _fetch(
    hass_client: ClientSessionGenerator, entity_id: str
) -> tuple[int, bytes, str | None]:
    client = await hass_client()
    response = await client.get(f"/api/image_proxy/{entity_id}")
    return response.status, await response.read(), response.content_type


async def test_list_files(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """The .3mf files of the storage's folders, with size and time."""
    response = await _call(hass, "list_files")
    modified = lan.ftps.modified.isoformat()
    assert response == {
        "files": [
            {"path": "/Other.3mf", "size": 9, "modified": modified},
            {"path": CUBE, "size": len(CUBE_PROJECT), "modified": modified},
        ]
    }


async def test_print_objects_skip_and_thumbnail(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    lan: Lan,
    hass_client: ClientSessionGenerator,
) -> None:
    """A print started by the action: its objects, skipping them, its plate."""
    sensor = _objects_sensor(hass)
    image = entity_id_of(hass, IMAGE_DOMAIN, SERIAL, "cover")
    assert state_of(hass, sensor) == STATE_UNKNOWN
    assert state_of(hass, image) == STATE_UNAVAILABLE

    await _call(hass, "print_file", file=CUBE)
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(CUBE_OBJECTS)))
    state = hass.states.get(sensor)
    assert state is not None
    assert state.attributes["objects"] == CUBE_OBJECTS
    assert state.attributes["skipped"] == []
    assert lan.ftps.verbs(SERIAL).count("RETR") == 1

    # The cover of a printer without an account: the plate thumbnail.
    await wait_for(hass, lambda: state_of(hass, image) != STATE_UNAVAILABLE)
    assert state_of(hass, image) != STATE_UNKNOWN
    assert await _fetch(hass_client, image) == (HTTPStatus.OK, THUMBNAIL, "image/png")

    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "skip_objects", objects=[1, CUBE_OBJECTS[0]["id"], 2])
    assert err.value.translation_key == "unknown_objects"
    assert err.value.translation_placeholders == {"objects": "1, 2"}
    assert "s_obj" not in lan.printer.state or lan.printer.state["s_obj"] == []

    first = CUBE_OBJECTS[0]["id"]
    await _call(hass, "skip_objects", objects=[first])
    await wait_for(
        hass,
        lambda: hass.states.get(sensor).attributes["skipped"] == [first],  # type: ignore[union-attr]
    )
    # The file was read once for the job.
    assert lan.ftps.verbs(SERIAL).count("RETR") == 1


@pytest.mark.parametrize(
    ("gcode_file", "name"),
    [
        ("/data/Metadata/plate_1.gcode", "Cube"),  # X1 style
        ("Cube.gcode.3mf", "Cube"),  # P1 style, the file at the root
        ("/cache/Cube.gcode.3mf", "Renamed"),  # the cache path itself
    ],
)
async def test_job_started_elsewhere(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    lan: Lan,
    gcode_file: str,
    name: str,
) -> None:
    """A job from Bambu Studio or the screen: its file is found by its name."""
    storage = lan.printer.storage
    assert storage is not None
    if gcode_file == "Cube.gcode.3mf":
        storage["/Cube.gcode.3mf"] = storage.pop(CUBE)
    lan.printer.update(
        {
            "gcode_state": "RUNNING",
            "gcode_file": gcode_file,
            "subtask_name": name,
            "task_id": "0",
        }
    )
    sensor = _objects_sensor(hass)
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(CUBE_OBJECTS)))
    job = _job_files(lan_entry).current(SERIAL)
    assert job is not None
    assert job.plate == 1
    assert job.key == JobKey(None, gcode_file, name)


def _two_plates(first: tuple[Any, ...], second: tuple[Any, ...]) -> bytes:
    """A project with G-code for plates 1 and 2, each with its objects."""
    members: dict[str, bytes] = {}
    for plate, objects in ((1, first), (2, second)):
        with zipfile.ZipFile(
            io.BytesIO(sample_project("Cube", objects=objects, plate=plate))
        ) as archive:
            for name in archive.namelist():
                members.setdefault(name, archive.read(name))
    plate_two = slice_info(second, plate=2)
    block = plate_two[plate_two.index("  <plate>") : plate_two.index("</config>")]
    info = slice_info(first, plate=1)
    members["Metadata/slice_info.config"] = info.replace(
        "</config>", block + "</config>"
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_reported_plate_is_read(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """A job started elsewhere prints the plate its report names (plate_idx)."""
    second = sample_objects("Cube", count=len(CUBE_OBJECTS) + 2)
    storage = lan.printer.storage
    assert storage is not None
    storage[CUBE] = _two_plates(sample_objects("Cube"), second)
    lan.printer.update(
        {
            "gcode_state": "RUNNING",
            "gcode_file": CUBE,
            "subtask_name": "Cube",
            "plate_idx": 2,
        }
    )
    sensor = _objects_sensor(hass)
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(second)))
    job = _job_files(lan_entry).current(SERIAL)
    assert job is not None
    assert job.plate == 2


def _details(hass: HomeAssistant, serial: str = SERIAL) -> tuple[str, ...]:
    """The job's weight, length (with unit), bed type and plate as shown."""
    shown: list[str] = []
    for key in ("print_weight", "print_length", "bed_type", "plate"):
        state = hass.states.get(entity_id_of(hass, SENSOR_DOMAIN, serial, key))
        assert state is not None
        shown.append(state.state)
        if key == "print_length" and state.state != STATE_UNKNOWN:
            shown.append(state.attributes["unit_of_measurement"])
    return tuple(shown)


# The Cube project's estimates: 12.5 g, 12.5 / 2.98 = 4.19 m, textured plate.
CUBE_DETAILS = ("12.5", "4.19", "m", "textured_plate", "1")
NO_DETAILS = (STATE_UNKNOWN,) * 4


async def test_job_details_from_the_file(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """Without an account, weight, length and bed type come from the job's file.

    They are written when the file is read, not again for reports that
    change nothing they show; a new job without a file clears them.
    """
    assert _details(hass) == NO_DETAILS
    weight = entity_id_of(hass, SENSOR_DOMAIN, SERIAL, "print_weight")
    writes: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if event.data["entity_id"] == weight and (new := event.data["new_state"]):
            writes.append(new.state)

    unlisten = hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    try:
        await _call(hass, "print_file", file=CUBE)
        await wait_for(hass, lambda: _details(hass) == CUBE_DETAILS)
        lan.printer.update({"mc_percent": 42, "mc_remaining_time": 30})
        progress = entity_id_of(hass, SENSOR_DOMAIN, SERIAL, "progress")
        await wait_for(hass, lambda: state_of(hass, progress) == "42")
        assert writes == ["12.5"]

        lan.printer.update({"gcode_state": "FINISH"})
        lan.printer.update(
            {"gcode_state": "RUNNING", "gcode_file": "Gone.3mf", "subtask_name": "Gone"}
        )
        await wait_for(hass, lambda: _details(hass)[0] == STATE_UNKNOWN)
        await _settle(hass)
        assert _details(hass) == NO_DETAILS
        assert writes == ["12.5", STATE_UNKNOWN]
    finally:
        unlisten()


async def test_new_job_forgets_the_last(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """A new job's objects replace the last; a job without file has none."""
    sensor = _objects_sensor(hass)
    await _call(hass, "print_file", file=CUBE)
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(CUBE_OBJECTS)))
    lan.printer.update({"gcode_state": "FINISH"})
    status = entity_id_of(hass, SENSOR_DOMAIN, SERIAL, "print_status")
    await wait_for(hass, lambda: state_of(hass, status) == "finish")
    assert state_of(hass, sensor) == str(len(CUBE_OBJECTS))  # the last job's

    lan.printer.update(
        {"gcode_state": "RUNNING", "gcode_file": "Gone.3mf", "subtask_name": "Gone"}
    )
    await wait_for(hass, lambda: state_of(hass, sensor) == STATE_UNKNOWN)
    await _settle(hass)
    assert state_of(hass, sensor) == STATE_UNKNOWN
    assert lan.ftps.verbs(SERIAL).count("RETR") == 1  # nothing found to read


async def test_same_file_printed_again_is_read_again(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """A job named like the ended one is new: its file may have been replaced.

    Bambu Studio sends a project sliced again under the same name; skipping
    is checked against the new file's objects.
    """
    sensor = _objects_sensor(hass)
    await _call(hass, "print_file", file=CUBE)
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(CUBE_OBJECTS)))
    lan.printer.update({"gcode_state": "FINISH"})
    status = entity_id_of(hass, SENSOR_DOMAIN, SERIAL, "print_status")
    await wait_for(hass, lambda: state_of(hass, status) == "finish")
    objects = sample_objects("Cube", count=len(CUBE_OBJECTS) + 2)
    storage = lan.printer.storage
    assert storage is not None
    storage[CUBE] = sample_project("Cube", objects=objects)

    await _call(hass, "print_file", file=CUBE)
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(objects)))
    assert lan.ftps.verbs(SERIAL).count("RETR") == 2
    await _call(hass, "skip_objects", objects=[objects[-1].identify_id])
    await wait_for(
        hass,
        lambda: lan.printer.state.get("s_obj") == [objects[-1].identify_id],
    )


async def test_unreadable_project(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """A file that is no project is read once and shows no objects."""
    await _call(hass, "print_file", file="/Other.3mf")
    await wait_for(hass, lambda: lan.ftps.verbs(SERIAL).count("RETR") == 1)
    await _settle(hass)
    await asyncio.sleep(0.1)
    assert state_of(hass, _objects_sensor(hass)) == STATE_UNKNOWN
    assert lan.ftps.verbs(SERIAL).count("RETR") == 1


async def test_read_retried(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    lan: Lan,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed read is tried again a few times, then given up with a warning."""
    job_files = _job_files(lan_entry)
    job_files.retry_delays = (0.05, 0.05)
    lan.ftps.refuse = frozenset({"RETR"})
    sensor = _objects_sensor(hass)
    await _call(hass, "print_file", file=CUBE)
    await wait_for(hass, lambda: lan.ftps.verbs(SERIAL).count("RETR") == 1)
    lan.ftps.refuse = frozenset()
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(CUBE_OBJECTS)))
    assert lan.ftps.verbs(SERIAL).count("RETR") == 2

    lan.ftps.refuse = frozenset({"RETR"})
    with caplog.at_level(logging.WARNING):
        lan.printer.update({"subtask_name": "Cube", "gcode_file": "cube again"})
        await wait_for(hass, lambda: lan.ftps.verbs(SERIAL).count("RETR") == 5)
        await wait_for(hass, lambda: "could not be read" in caplog.text)
    assert CODE not in caplog.text
    assert state_of(hass, sensor) == STATE_UNKNOWN


async def test_refused_access_code_is_final(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    lan: Lan,
) -> None:
    """A refused access code is not tried again; the list action says why."""
    _job_files(lan_entry).retry_delays = (0.01,)
    lan.ftps.sites[SERIAL].access_code = "00000000"
    await _call(hass, "print_file", file=CUBE)
    await wait_for(hass, lambda: lan.ftps.verbs(SERIAL).count("PASS") == 1)
    await asyncio.sleep(0.1)
    await _settle(hass)
    assert lan.ftps.verbs(SERIAL).count("PASS") == 1
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "list_files")
    assert err.value.translation_key == "storage_auth"
    assert err.value.translation_placeholders == {"device": "Loft P1S"}


@pytest.mark.parametrize(
    ("knob", "key"),
    [
        ("stopped", "storage_connection"),
        ("hang", "storage_timeout"),
        ("refuse", "storage_failed"),
    ],
)
async def test_list_files_errors(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    lan: Lan,
    knob: str,
    key: str,
) -> None:
    """Each storage failure has its message."""
    if knob == "stopped":
        await lan.ftps.stop()
    elif knob == "hang":
        lan.ftps.hang = frozenset({"MLSD"})
    else:
        lan.ftps.refuse = frozenset({"MLSD", "LIST", "NLST"})
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "list_files")
    assert err.value.translation_key == key


async def test_unload_while_reading(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """Unloading the entry stops a read in flight."""
    lan.ftps.hang = frozenset({"RETR"})
    await _call(hass, "print_file", file=CUBE)
    await wait_for(hass, lambda: "RETR" in lan.ftps.verbs(SERIAL))
    async with asyncio.timeout(1.5):
        assert await hass.config_entries.async_unload(lan_entry.entry_id)
    assert lan_entry.state is ConfigEntryState.NOT_LOADED


def test_candidate_paths() -> None:
    """Likeliest first, no duplicates, nothing from a name with a slash."""
    assert candidate_paths(JobKey(None, "/data/Metadata/plate_2.gcode", "Cube")) == (
        "/Cube.gcode.3mf",
        "/Cube.3mf",
        "/cache/Cube.gcode.3mf",
        "/cache/Cube.3mf",
        "/model/Cube.gcode.3mf",
        "/model/Cube.3mf",
    )
    assert candidate_paths(JobKey("7", "/cache/a.3mf", "a/b"), "x.3mf") == (
        "/x.3mf",
        "/cache/a.3mf",
        "/a.3mf",
        "/model/a.3mf",
    )
    assert candidate_paths(JobKey(None, None, None)) == ()
    assert file_stem("/cache/Part.GCODE.3MF") == "Part.GCODE"
    assert file_stem("Cube.gcode.3mf") == "Cube"


# ------------------------------------------------------- an account's printer


@dataclass
class X1CLan:
    """The X1C's LAN broker and storage."""

    broker: MqttBroker
    ftps: FtpsServer


@pytest.fixture
async def x1c_lan(
    printers: dict[str, VirtualPrinter],
    pki: TestPKI,
    printer_ca: IssuedCert,
    lan_library: Callable[[int], None],
) -> AsyncIterator[X1CLan]:
    """The X1C's LAN broker and its storage over FTPS."""
    serial = X1C["dev_id"]
    leaf = pki.server(printer_ca, serial)
    x1c = printers["x1c"]
    x1c.storage = {CUBE: CUBE_PROJECT}
    broker = MqttBroker(leaf, users={"bblp": X1C["dev_access_code"].strip()})
    ftps = FtpsServer(
        [
            FtpsSite(
                serial,
                leaf.server_context(),
                X1C["dev_access_code"].strip(),
                x1c.storage,
            )
        ]
    )
    await broker.start()
    await ftps.start()
    lan_library(ftps.port)
    await x1c.add_mirror(broker)
    yield X1CLan(broker, ftps)
    await ftps.stop()
    await broker.stop()


async def test_account_cover_falls_back_to_plate(
    hass: HomeAssistant,
    x1c_lan: X1CLan,
    printers: dict[str, VirtualPrinter],
    cloud: FakeCloud,
    covers: CoverServer,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """A LAN job has no cloud cover: its plate is shown; a cloud job's cover
    wins, unless it cannot be downloaded: then the plate again."""
    serial = X1C["dev_id"]
    covers.covers["benchy.png"] = Cover(PNG)
    cloud.tasks = [
        {
            "id": 111,
            "title": "Benchy",
            "cover": covers.url("benchy.png"),
            "status": 2,
            "startTime": "2026-11-20T10:00:00Z",
            "endTime": "2026-11-20T12:00:00Z",
            "deviceId": serial,
        }
    ]
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            CONF_PRINTERS: {serial: {CONF_HOST: f"127.0.0.1:{x1c_lan.broker.port}"}}
        },
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "custom_components.bambu_cloud.PLATFORMS", [Platform.SENSOR, Platform.IMAGE]
        )
        await setup_integration(hass, mock_config_entry)
        link = mock_config_entry.runtime_data.hub.printers[serial]
        await wait_for(hass, lambda: link.lan_connected)
        image = entity_id_of(hass, IMAGE_DOMAIN, serial, "cover")
        await _settle(hass)
        before = state_of(hass, image)

        await _call(hass, "print_file", serial, file=CUBE)
        sensor = _objects_sensor(hass, serial)
        await wait_for(hass, lambda: state_of(hass, sensor) == str(len(CUBE_OBJECTS)))
        await wait_for(hass, lambda: state_of(hass, image) != before)
        assert await _fetch(hass_client, image) == (
            HTTPStatus.OK,
            THUMBNAIL,
            "image/png",
        )

        # The same file printed as cloud task 111: the task's cover is shown.
        await _print_as_task(hass, printers["x1c"], mock_config_entry, "111")
        assert await _fetch(hass_client, image) == (HTTPStatus.OK, PNG, "image/png")

        # Task 112's cover cannot be downloaded: the job's plate is shown.
        cloud.tasks = [
            {**cloud.tasks[0], "id": 112, "cover": covers.url("missing.png")}
        ]
        await _print_as_task(hass, printers["x1c"], mock_config_entry, "112")
        await wait_for(hass, lambda: covers.hits.get("missing.png", 0) > 0)
        await _settle(hass)
        assert await _fetch(hass_client, image) == (
            HTTPStatus.OK,
            THUMBNAIL,
            "image/png",
        )


async def test_cloud_task_wins_over_the_file(
    hass: HomeAssistant,
    x1c_lan: X1CLan,
    printers: dict[str, VirtualPrinter],
    cloud: FakeCloud,
    mock_config_entry: MockConfigEntry,
) -> None:
    """The job's cloud task names the details when it is the job's; else the file.

    A task without some detail leaves that one to the file.
    """
    serial = X1C["dev_id"]
    task = {
        "id": 111,
        "title": "Cube",
        "status": 2,
        "startTime": "2026-11-20T10:00:00Z",
        "deviceId": serial,
        "weight": 34.62,
        "length": 1161,
        "bedType": "supertack_plate",
        "plateIndex": 1,
        "plateName": "Base",
    }
    cloud.tasks = [task]
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            CONF_PRINTERS: {serial: {CONF_HOST: f"127.0.0.1:{x1c_lan.broker.port}"}}
        },
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("custom_components.bambu_cloud.PLATFORMS", [Platform.SENSOR])
        await setup_integration(hass, mock_config_entry)
        link = mock_config_entry.runtime_data.hub.printers[serial]
        await wait_for(hass, lambda: link.lan_connected)
        await _settle(hass)
        assert _details(hass, serial) == NO_DETAILS

        # A print_file job: the newest task is another job's.
        await _call(hass, "print_file", serial, file=CUBE)
        await wait_for(hass, lambda: _details(hass, serial) == CUBE_DETAILS)

        # The same file as cloud task 111: the task's figures.
        await _print_as_task(hass, printers["x1c"], mock_config_entry, "111")
        task_details = ("34.62", "11.61", "m", "supertack_plate", "1")
        await wait_for(hass, lambda: _details(hass, serial) == task_details)

        # Task 112 lists no estimates and an unknown plate: the file's.
        cloud.tasks = [
            {
                key: value
                for key, value in {**task, "id": 112, "bedType": "auto"}.items()
                if key not in ("weight", "length")
            }
        ]
        await _print_as_task(hass, printers["x1c"], mock_config_entry, "112")
        await wait_for(hass, lambda: _details(hass, serial) == CUBE_DETAILS)


async def _print_as_task(
    hass: HomeAssistant,
    printer: VirtualPrinter,
    entry: MockConfigEntry,
    task_id: str,
) -> None:
    """The same file printed again, now as the given cloud task."""
    printer.update({"gcode_state": "FINISH"})
    printer.update({"gcode_state": "RUNNING", "task_id": task_id})
    await wait_for(
        hass,
        lambda: (
            (job := _job_files(entry).current(printer.serial)) is not None
            and job.key.task_id == task_id
        ),
    )
    await _settle(hass)


async def test_expectation_of_another_file_is_dropped(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """A job named unlike the file print_file sent is found by its own name."""
    job_files = _job_files(lan_entry)
    job_files.expect(SERIAL, "/Other.3mf", 2)
    lan.printer.update(
        {"gcode_state": "RUNNING", "gcode_file": "", "subtask_name": "Cube"}
    )
    sensor = _objects_sensor(hass)
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(CUBE_OBJECTS)))
    job = job_files.current(SERIAL)
    assert job is not None
    assert (job.path, job.plate) == (CUBE, 1)


async def test_printers_no_longer_followed(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """A printer that is not followed has no job file and no listeners."""
    job_files = _job_files(lan_entry)
    calls: list[None] = []
    job_files.listen("01P00A000000099", lambda: calls.append(None))()
    job_files.sync([])
    assert job_files.job_file(SERIAL) is None
    job_files.listen(SERIAL, lambda: calls.append(None))()
    job_files.expect(SERIAL, "/x.3mf")
    await _call(hass, "print_file", file=CUBE)
    await _settle(hass)
    assert job_files.current(SERIAL) is None
    assert "RETR" not in lan.ftps.verbs(SERIAL)
    assert calls == []


async def test_pending_retry_dropped_with_its_job(
    hass: HomeAssistant, lan_entry: MockConfigEntry, lan: Lan
) -> None:
    """A new job drops the last one's waiting retry; a pause is no new job."""
    job_files = _job_files(lan_entry)
    job_files.retry_delays = (30.0,)
    lan.ftps.refuse = frozenset({"RETR"})
    await _call(hass, "print_file", file=CUBE)
    await wait_for(hass, lambda: lan.ftps.verbs(SERIAL).count("RETR") == 1)
    await _settle(hass)
    lan.ftps.refuse = frozenset()
    lan.printer.update({"gcode_file": "/data/Metadata/plate_1.gcode"})
    sensor = _objects_sensor(hass)
    await wait_for(hass, lambda: state_of(hass, sensor) == str(len(CUBE_OBJECTS)))
    lan.printer.update({"gcode_state": "PAUSE"})
    status = entity_id_of(hass, SENSOR_DOMAIN, SERIAL, "print_status")
    await wait_for(hass, lambda: state_of(hass, status) == "pause")
    assert lan.ftps.verbs(SERIAL).count("RETR") == 2
    assert state_of(hass, sensor) == str(len(CUBE_OBJECTS))
