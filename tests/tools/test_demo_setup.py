"""The demo set-up's offline parts (the whole of it runs in tests/e2e)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tools import demo_setup
from tools.demo_setup import DemoSetupError, Owner, Provisioned

pytestmark = pytest.mark.usefixtures("socket_enabled")

STATE = {"token": "t", "printers": [{"serial": "00M0FA000000001"}]}


def test_prepare_only_a_fresh_config(tmp_path: Path) -> None:
    """Fresh: the steps after the owner are marked done; used: left alone."""
    config = tmp_path / "config"
    assert demo_setup.prepare(config)
    stored = json.loads((config / ".storage" / "onboarding").read_text())
    assert stored["key"] == "onboarding"
    assert stored["version"] == 4
    assert stored["data"]["done"] == ["core_config", "analytics", "integration"]
    assert "user" not in stored["data"]["done"]
    assert not demo_setup.prepare(config)

    used = tmp_path / "used"
    (used / ".storage").mkdir(parents=True)
    (used / ".storage" / "auth").write_text("{}")
    assert not demo_setup.prepare(used)
    assert not (used / ".storage" / "onboarding").exists()


def test_owner_file_is_private(tmp_path: Path) -> None:
    """The credentials are kept for the next run, readable by this user only."""
    assert demo_setup.stored_owner(tmp_path) is None
    owner = Owner("Demo", "demo", "secret-password")
    demo_setup.store_owner(tmp_path / "config", owner)
    path = tmp_path / "config" / demo_setup.OWNER_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_setup.stored_owner(tmp_path / "config") == owner
    text = demo_setup.banner(
        "http://localhost:8123", Provisioned(owner, True, True, 4), tmp_path
    )
    assert "http://localhost:8123" in text
    assert "secret-password" in text
    assert "4 virtual printers are live" in text


@pytest.fixture
async def onboarded() -> AsyncIterator[str]:
    """A web server that says its owner exists already (someone else's)."""

    async def onboarding(_request: web.Request) -> web.Response:
        return web.json_response([{"step": "user", "done": True}])

    app = web.Application()
    app.router.add_get("/api/onboarding", onboarding)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_unknown_owner_is_not_guessed(onboarded: str, tmp_path: Path) -> None:
    """A configuration onboarded by a person: the demo says so, changes nothing."""
    with pytest.raises(DemoSetupError, match="did not make"):
        await demo_setup.provision(onboarded, STATE, tmp_path, within=5)
    assert demo_setup.stored_owner(tmp_path) is None


async def test_gives_up_when_home_assistant_stopped(tmp_path: Path) -> None:
    """Home Assistant gone before it answered: no ten-minute wait."""
    with pytest.raises(DemoSetupError, match="stopped"):
        await demo_setup.provision(
            "http://127.0.0.1:9", STATE, tmp_path, within=5, alive=lambda: False
        )


def test_cli_reports_failure_and_keeps_going(tmp_path: Path) -> None:
    """The command exits non-zero with a hint; scripts/develop carries on."""
    state = tmp_path / "farm.json"
    state.write_text(json.dumps(STATE))
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    code = demo_setup.main(
        [
            "provision",
            "--config",
            str(tmp_path),
            "--state-file",
            str(state),
            "--url",
            "http://127.0.0.1:9",
            "--pid",
            str(dead.pid),
        ]
    )
    assert code == 1
    assert demo_setup.main(["prepare", str(tmp_path / "fresh")]) == 0
    assert (tmp_path / "fresh" / ".storage" / "onboarding").exists()
    assert demo_setup._running(os.getpid())
