"""A real Home Assistant, the real integration, the virtual farm.

Set up exactly as ``scripts/develop --demo`` does it (tools/demo_setup.py):
onboarding and the account through Home Assistant's own APIs, so one boot
checks the demo's set-up and everything after it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tools import demo_setup
from tools.virtual_farm.farm import VirtualFarm

from .hass_process import HassProcess, enable_jpeg_camera

pytestmark = pytest.mark.e2e

WAIT = 60.0


async def _until(
    probe: Callable[[], Any], within: float = WAIT, every: float = 0.5
) -> Any:
    """Poll an async probe until it returns something truthy."""
    async with asyncio.timeout(within):
        while not (result := await probe()):  # noqa: ASYNC110 - remote state
            await asyncio.sleep(every)
    return result


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> Path:
    """A fresh configuration prepared like the demo's (before the start)."""
    config = tmp_path / "config"
    assert demo_setup.prepare(config)
    assert not demo_setup.prepare(config)  # once: a used config is left alone
    return config


async def _demo_ready(hass: HassProcess, farm: VirtualFarm) -> None:
    """The demo set-up: owner, account and live printers, twice (idempotent)."""
    state = farm.describe()
    ready = await demo_setup.provision(hass.url, state, hass.config, within=WAIT * 5)
    assert ready.created_owner
    assert ready.created_entry
    assert ready.live_printers == len(farm.printers)
    steps = await hass.api.onboarding()
    assert all(steps.values()), steps  # the UI opens on the dashboard

    # The printed credentials log in, as a newcomer would.
    owner = ready.owner
    assert demo_setup.stored_owner(hass.config) == owner
    assert owner.password in demo_setup.banner(hass.url, ready, hass.config)
    await hass.login(owner.username, owner.password)
    (entry,) = await hass.api.entries()
    assert entry["title"] == "Virtual Farm"
    assert entry["state"] == "loaded"

    again = await demo_setup.provision(hass.url, state, hass.config, within=WAIT)
    assert (again.created_owner, again.created_entry) == (False, False)
    assert len(await hass.api.entries()) == 1


async def test_real_home_assistant(
    hass_process: HassProcess, farm: VirtualFarm
) -> None:
    """Set up as the demo is, see live states and the camera, control a light.

    Then the broker restarts; through it all Home Assistant logs no error.
    """
    hass = hass_process
    await _demo_ready(hass, farm)

    # The P1S camera: JPEG frames over pinned TLS, served as a still.
    camera = await enable_jpeg_camera(hass, farm)
    status, content_type, body = await _until(lambda: _still(hass, camera))
    assert (status, content_type) == (200, "image/jpeg")
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG"
        assert image.width > 0
        assert image.height > 0

    devices = await hass.ws_command({"type": "config/device_registry/list"})
    serials = {p.serial for p in farm.printers}
    ours = [
        d
        for d in devices
        if any(i[0] == "bambu_cloud" and i[1] in serials for i in d["identifiers"])
    ]
    assert {d["serial_number"] for d in ours} == serials
    assert all(d["manufacturer"] == "Bambu Lab" for d in ours)

    # Live values arrive over TLS MQTT and keep changing.
    async def progress_values() -> dict[str, str] | None:
        states = await hass.states()
        values = {
            entity_id: state["state"]
            for entity_id, state in states.items()
            if entity_id.startswith("sensor.")
            and entity_id.endswith("_nozzle_temperature")
        }
        live = {k: v for k, v in values.items() if v not in ("unavailable", "unknown")}
        return live if len(live) == len(serials) else None

    first = await _until(progress_values)
    await _until(lambda: _changed(hass, first), within=WAIT)

    # The chamber light: Home Assistant -> cloud broker -> printer.
    states = await hass.states()
    light = next(e for e in states if e.startswith("light.") and "chamber_light" in e)
    await hass.post("/api/services/light/turn_on", {"entity_id": light})
    commands = [
        message.get("system", {}).get("command")
        for printer in farm.printers
        for message in printer.printer.received
    ]
    assert "ledctrl" in commands

    # Broker down: entities go unavailable; back up: they recover.
    probe = next(iter(first))
    assert farm.broker is not None
    await farm.broker.stop()
    await _until(lambda: _state_is(hass, probe, "unavailable"))
    await farm.broker.start()
    await _until(lambda: _state_not(hass, probe, ("unavailable", "unknown")))

    problems = hass.log_problems()
    assert not problems, "\n\n".join(problems)


async def _still(hass: HassProcess, entity_id: str) -> tuple[int, str, bytes] | None:
    """The camera's still once it serves one (the first frame may take a moment)."""
    status, content_type, body = await hass.camera_image(entity_id)
    return (status, content_type, body) if status == 200 else None


async def _changed(hass: HassProcess, before: dict[str, str]) -> bool:
    states = await hass.states()
    return any(states[e]["state"] != value for e, value in before.items())


async def _state_is(hass: HassProcess, entity_id: str, value: str) -> bool:
    return (await hass.states())[entity_id]["state"] == value


async def _state_not(
    hass: HassProcess, entity_id: str, values: tuple[str, ...]
) -> bool:
    return (await hass.states())[entity_id]["state"] not in values
