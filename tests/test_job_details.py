"""Job details: print type and plate from the report, the rest from the cloud task.

The job's project file answers when the cloud has no task for the job (see
test_job_files.py, which serves the printer's storage over FTPS).

The cloud test server lists the tasks, virtual printers report over the test
broker; the task list is fetched once per printer and job for the cover image
and every job sensor together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.const import STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.bambu.enums import PrintType
from custom_components.bambu_cloud.bambu.models import PrintTask
from custom_components.bambu_cloud.bambu.state import PrinterState
from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.sensor import job_task
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import P1S, X1C, Failure, FakeCloud, MqttEndpoint
from .helpers import entity_id_of, state_of, wait_for, wait_for_printers
from .test_lan_entry import SERIAL, LanPrinter, _entry, _setup, lan, lan_config

__all__ = ["lan", "lan_config"]  # fixtures of the LAN-only entry

TASKS = "/v1/user-service/my/tasks"
# From the cloud task or the job's file.
ESTIMATES = ("bed_type", "print_weight", "print_length")


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The printers report over the test broker."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """The job sensors and the cover image, which share the task list."""
    return [Platform.SENSOR, Platform.IMAGE]


@pytest.fixture
def setup_later(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, platforms: list[Platform]
) -> Iterator[Callable[[], Awaitable[MockConfigEntry]]]:
    """Set the entry up once the test prepared the cloud and the printers.

    Only ``platforms`` (as the list is when called), for the whole test, like
    ``init_integration``.
    """

    async def setup() -> MockConfigEntry:
        mock_config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        await wait_for_printers(hass, mock_config_entry)
        return mock_config_entry

    with patch("custom_components.bambu_cloud.PLATFORMS", platforms):
        yield setup


def task(task_id: int, serial: str, **fields: Any) -> dict[str, Any]:
    """A task as the cloud lists it (the documented example's figures)."""
    return {
        "id": task_id,
        "title": "Cube",
        "cover": None,
        "status": 2,
        "startTime": "2026-11-20T10:00:00Z",
        "endTime": "2026-11-20T12:00:00Z",
        "weight": 34.62,
        "length": 1161,
        "plateIndex": 2,
        "plateName": "Base",
        "bedType": "textured_plate",
        "deviceId": serial,
        **fields,
    }


def sensor(hass: HomeAssistant, serial: str, key: str) -> str:
    """The entity id of a printer's job sensor."""
    return entity_id_of(hass, "sensor", serial, key)


async def settle(hass: HomeAssistant) -> None:
    """Let the background fetches (real sockets) finish."""
    await asyncio.sleep(0.05)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_details_of_a_cloud_job(
    hass: HomeAssistant,
    cloud: FakeCloud,
    live: dict[str, VirtualPrinter],
) -> None:
    """The report's plate and print type, the task's bed, weight and length."""
    x1c, p1s = X1C["dev_id"], P1S["dev_id"]
    await settle(hass)
    # One fetch per printer for the image and all sensors together.
    assert cloud.calls(TASKS) == 2
    assert state_of(hass, sensor(hass, x1c, "print_type")) == "idle"
    assert state_of(hass, sensor(hass, x1c, "bed_type")) == STATE_UNKNOWN

    cloud.tasks = [task(222, x1c)]
    live["x1c"].update(
        {
            "gcode_state": "RUNNING",
            "task_id": "222",
            "print_type": "cloud",
            "gcode_file": "/data/Metadata/plate_3.gcode",
        }
    )
    weight = sensor(hass, x1c, "print_weight")
    await wait_for(hass, lambda: state_of(hass, weight) == "34.62")
    await settle(hass)
    assert cloud.calls(TASKS) == 3
    assert state_of(hass, sensor(hass, x1c, "print_type")) == "cloud"
    assert state_of(hass, sensor(hass, x1c, "bed_type")) == "textured_plate"
    # The task lists centimetres; the sensor shows metres.
    length = hass.states.get(sensor(hass, x1c, "print_length"))
    assert length is not None
    assert (length.state, length.attributes["unit_of_measurement"]) == ("11.61", "m")
    weight_state = hass.states.get(weight)
    assert weight_state is not None
    assert weight_state.attributes["unit_of_measurement"] == "g"
    # The file the printer runs names the plate; the task names it too.
    plate = hass.states.get(sensor(hass, x1c, "plate"))
    assert plate is not None
    assert (plate.state, plate.attributes["name"]) == ("3", "Base")

    # The P1S printed nothing from the cloud: nothing of the X1C's task.
    for key in (*ESTIMATES, "plate"):
        assert state_of(hass, sensor(hass, p1s, key)) == STATE_UNKNOWN

    # A project job without the plate in its file name: the task's plate.
    live["x1c"].update({"gcode_file": "/cache/cube.3mf"})
    plate_id = sensor(hass, x1c, "plate")
    await wait_for(hass, lambda: state_of(hass, plate_id) == "2")
    assert cloud.calls(TASKS) == 3


async def test_lan_job_shows_no_cloud_details(
    hass: HomeAssistant,
    cloud: FakeCloud,
    printers: dict[str, VirtualPrinter],
    setup_later: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """The newest cloud task is not the LAN job's: its details are not shown."""
    x1c = X1C["dev_id"]
    cloud.tasks = [task(222, x1c)]
    printers["x1c"].update({"task_id": "222", "print_type": "cloud"})
    entry = await setup_later()
    weight = sensor(hass, x1c, "print_weight")
    await wait_for(hass, lambda: state_of(hass, weight) == "34.62")

    printers["x1c"].update(
        {
            "task_id": "0",
            "print_type": "local",
            "gcode_file": "cube.gcode.3mf",
            "plate_idx": 4,
        }
    )
    await wait_for(hass, lambda: state_of(hass, weight) == STATE_UNKNOWN)
    await settle(hass)
    for key in ESTIMATES:
        assert state_of(hass, sensor(hass, x1c, key)) == STATE_UNKNOWN
    assert state_of(hass, sensor(hass, x1c, "print_type")) == "local"
    plate = hass.states.get(sensor(hass, x1c, "plate"))
    assert plate is not None
    assert (plate.state, plate.attributes.get("name")) == ("4", None)
    # A LAN job is no reason to ask the cloud, nor is a printer going away.
    printers["p1s"].set_online(False)
    p1s_type = sensor(hass, P1S["dev_id"], "print_type")
    await wait_for(hass, lambda: state_of(hass, p1s_type) == "unavailable")
    await settle(hass)
    assert cloud.calls(TASKS) == 2
    assert entry.runtime_data.tasks is not None


async def test_task_fetched_when_listed_later(
    hass: HomeAssistant,
    cloud: FakeCloud,
    printers: dict[str, VirtualPrinter],
    setup_later: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """A job the task list does not show yet: fetched when a poll names it."""
    x1c = X1C["dev_id"]
    printers["x1c"].update({"task_id": "333", "print_type": "cloud"})
    cloud.fail(TASKS, Failure(503))
    entry = await setup_later()
    await settle(hass)
    bed = sensor(hass, x1c, "bed_type")
    assert state_of(hass, bed) == STATE_UNKNOWN

    cloud.tasks = [task(333, x1c, bedType="supertack_plate")]
    cloud.devices = [{**cloud.devices[0], "print_job": "333"}, *cloud.devices[1:]]
    await entry.runtime_data.coordinator.async_refresh()
    await wait_for(hass, lambda: state_of(hass, bed) == "supertack_plate")


async def test_without_the_image_the_sensors_fetch(
    hass: HomeAssistant,
    cloud: FakeCloud,
    printers: dict[str, VirtualPrinter],
    platforms: list[Platform],
    setup_later: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """The job sensors follow the task themselves when there is no image."""
    platforms.remove(Platform.IMAGE)
    x1c = X1C["dev_id"]
    cloud.tasks = [task(444, x1c)]
    printers["x1c"].update({"task_id": "444"})
    await setup_later()
    weight = sensor(hass, x1c, "print_weight")
    await wait_for(hass, lambda: state_of(hass, weight) == "34.62")
    assert (
        er.async_get(hass).async_get_entity_id("image", DOMAIN, f"{x1c}_cover") is None
    )
    assert cloud.calls(TASKS) == 2


async def test_unload_stops_following(
    hass: HomeAssistant,
    cloud: FakeCloud,
    live: dict[str, VirtualPrinter],
    init_integration: MockConfigEntry,
) -> None:
    """After unload, a new job fetches nothing."""
    await settle(hass)
    calls = cloud.calls(TASKS)
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    live["x1c"].update({"task_id": "555"})
    await asyncio.sleep(0.2)
    await settle(hass)
    assert cloud.calls(TASKS) == calls


async def test_lan_only_entry(hass: HomeAssistant, lan: LanPrinter) -> None:
    """Without an account: what the report gives; the estimates wait for a file."""
    lan.printer.update(
        {"print_type": "local", "gcode_file": "/data/Metadata/plate_2.gcode"}
    )
    await _setup(hass, _entry(lan))
    plate = sensor(hass, SERIAL, "plate")
    await wait_for(hass, lambda: state_of(hass, plate) == "2")
    assert state_of(hass, sensor(hass, SERIAL, "print_type")) == "local"
    for key in ESTIMATES:
        assert state_of(hass, sensor(hass, SERIAL, key)) == STATE_UNKNOWN


# ---------------------------------------------------------------- the views


def _state(**fields: Any) -> PrinterState:
    state = PrinterState()
    state.merge({"print": {"command": "push_status", "msg": 0, **fields}})
    return state


@pytest.mark.parametrize(
    ("fields", "plate"),
    [
        ({"gcode_file": "/data/Metadata/plate_1.gcode"}, 1),
        ({"gcode_file": "Metadata/plate_12.gcode", "plate_idx": 3}, 12),
        ({"gcode_file": "/cache/model.3mf", "plate_idx": 3}, 3),
        ({"gcode_file": "36mm.gcode.3mf"}, None),
        ({"gcode_file": "/data/Metadata/plate_0.gcode"}, None),
        ({"gcode_file": "/data/Metadata/plate_1.gcode.bak", "plate_idx": 0}, None),
        ({"gcode_file": "/x/NotMetadata/plate_1.gcode"}, None),
        ({"gcode_file": "/data/Metadata/plate_\u0663.gcode"}, None),
        ({"gcode_file": " /data/Metadata/plate_2.gcode "}, 2),
        ({"plate_idx": "2"}, 2),
        ({"plate_idx": 100000}, None),
        ({"plate_idx": [1]}, None),
        ({}, None),
    ],
)
def test_plate_view(fields: dict[str, Any], plate: int | None) -> None:
    assert _state(**fields).plate == plate


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("cloud", PrintType.CLOUD),
        ("LOCAL", PrintType.LOCAL),
        ("idle", PrintType.IDLE),
        ("system", PrintType.SYSTEM),
        ("", None),
        ("something_new", None),
        (7, None),
    ],
)
def test_print_type_view(value: object, kind: PrintType | None) -> None:
    assert _state(print_type=value).print_type is kind


def test_job_task_matches_the_reported_job() -> None:
    cube = PrintTask(id="222", serial=X1C["dev_id"])
    assert job_task(_state(task_id="222"), cube) is cube
    assert job_task(_state(task_id=222), cube) is cube
    assert job_task(_state(task_id="223"), cube) is None
    assert job_task(_state(task_id="0"), cube) is None
    assert job_task(_state(), cube) is None
    assert job_task(_state(task_id="222"), None) is None
