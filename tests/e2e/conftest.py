"""Fixtures for end-to-end tests: the farm in this process, hass in another."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tools.virtual_farm.farm import VirtualFarm

from .hass_process import HassProcess, free_port


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No in-process Home Assistant here: the real one runs in a subprocess."""


@pytest.fixture
async def farm(socket_enabled: None, tmp_path: Path) -> AsyncIterator[VirtualFarm]:
    """Two busy printers (X1C full reports, P1S deltas) on fast jobs.

    The P1S has its port-6000 style JPEG camera (on a free port: the launcher
    points the integration at it).
    """
    async with VirtualFarm(
        printers=2, speed=4.0, job_seconds=60, idle_seconds=4, cameras=True
    ) as farm:
        farm.write_state(tmp_path / "farm.json")
        yield farm


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> Path:
    """Home Assistant's configuration directory (fresh: onboarding to do)."""
    return tmp_path / "config"


@pytest.fixture
async def hass_process(
    farm: VirtualFarm, tmp_path: Path, hass_config_dir: Path
) -> AsyncIterator[HassProcess]:
    """A real Home Assistant pointed at the farm by the demo launcher.

    It must also shut down without logging an error (the tests check the log
    while running; this checks what the stop added).
    """
    process = HassProcess(config=hass_config_dir, port=free_port())
    try:
        await process.start(tmp_path / "farm.json")
        yield process
    finally:
        await process.stop()
    problems = process.log_problems()
    assert not problems, "\n\n".join(problems)
