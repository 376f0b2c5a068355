"""The virtual farm's printer storage: one FTPS server, a printer per SNI.

The library's own client (bambu/ftps.py) reads it, trusting only the farm's
printer CA, so the demo's file list, objects and thumbnail come from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from custom_components.bambu_cloud.bambu import tls
from custom_components.bambu_cloud.bambu.ftps import (
    PrinterStorage,
    StorageError,
    StorageErrorReason,
)
from custom_components.bambu_cloud.bambu.project_file import plate_index, read_plate
from tools.demo_launcher import farm_config
from tools.virtual_farm import VirtualFarm
from tools.virtual_farm.jobs import TITLES
from tools.virtual_farm.storage import cache_path, root_path
from tools.virtual_printer.project_files import sample_objects

from . import eventually

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(30)]


@pytest.fixture
async def farm() -> AsyncIterator[VirtualFarm]:
    """Two printers with fast jobs, no cameras, one LAN-only printer."""
    async with VirtualFarm(
        printers=2, speed=50, job_seconds=20, idle_seconds=1, cameras=False, lan_only=1
    ) as running:
        yield running


def client(farm: VirtualFarm, index: int, **changes: str) -> PrinterStorage:
    """The library's client for one farm printer, trusting the farm's CA."""
    printer = farm.printers[index]
    assert farm.pki is not None
    context = tls.build_printer_context(
        [farm.pki.printer_ca.der], pins=frozenset({farm.printer_ca_sha256})
    )
    return PrinterStorage(
        host="127.0.0.1",
        port=farm.ftps_port,
        serial=changes.get("serial", printer.serial),
        access_code=changes.get("code", printer.access_code),
        context=context,
        timeout=5.0,
    )


async def test_every_printer_lists_its_projects(farm: VirtualFarm) -> None:
    """Each printer (the LAN-only one too) is reached by its serial."""
    assert farm.describe()["ftps_port"] == farm.ftps_port
    for index, farm_printer in enumerate(farm.printers):
        files = await client(farm, index).async_list_files()
        paths = {remote.path for remote in files}
        assert paths == {root_path(t) for t in TITLES} | {cache_path(t) for t in TITLES}
        assert farm_printer.printer.storage is not None
        assert farm_printer.serial in serials_seen(farm)


def serials_seen(farm: VirtualFarm) -> set[str]:
    """The serials whose sessions the farm's FTPS server saw."""
    assert farm.ftps is not None
    return {command.serial for command in farm.ftps.commands}


async def test_running_job_file_exists_with_objects(farm: VirtualFarm) -> None:
    """The running job's gcode_file (or its title in /cache) is a real project."""
    for index, farm_printer in enumerate(farm.printers[:2]):
        state = farm_printer.printer.state
        await eventually(lambda s=state: bool(s.get("gcode_file")), within=20)
        gcode_file = str(state["gcode_file"])
        title = str(state["subtask_name"])
        if plate_index(gcode_file) is None:
            path = "/" + gcode_file.lstrip("/")
            assert path == root_path(title)
        else:
            path = cache_path(title)
        data = await client(farm, index).async_read_file(path)
        plate = await asyncio.get_running_loop().run_in_executor(
            None, read_plate, data, plate_index(gcode_file) or 1
        )
        assert [obj.id for obj in plate.objects] == [
            obj.identify_id for obj in sample_objects(title)
        ]
        assert plate.thumbnail is not None


async def test_wrong_code_and_serial_are_refused(farm: VirtualFarm) -> None:
    """Another printer's serial is another certificate; codes are per printer."""
    with pytest.raises(StorageError) as caught:
        await client(farm, 0, code=farm.printers[1].access_code).async_list_files()
    assert caught.value.reason is StorageErrorReason.AUTH

    with pytest.raises(StorageError) as caught:
        await client(farm, 0, serial="01S00A000000009").async_list_files()
    assert caught.value.reason is StorageErrorReason.TLS
    assert caught.value.detail == "serial_mismatch"


def test_demo_configuration_names_the_ftps_port() -> None:
    """The demo's library configuration reaches the farm's storage server."""
    state = {
        "api_url": "https://127.0.0.1:1",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": 2,
        "cloud_ca_pem": None,
        "printer_ca_sha256": "00" * 32,
        "ftps_port": 40990,
        "printers": [],
    }

    assert farm_config(state).ports.ftps == 40990
    assert farm_config({**state, "ftps_port": None}).ports.ftps == 990
