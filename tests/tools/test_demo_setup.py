"""The demo set-up's offline parts (the whole of it runs in tests/e2e)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tools import demo_setup
from tools.demo_launcher import farm_config, instructions
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


class _FlowApi:
    """Home Assistant's config-flow REST API, as far as the lan step goes."""

    def __init__(
        self, menu: list[str], answer: dict[str, Any], *, heard: bool = False
    ) -> None:
        self.menu = menu
        self.heard = heard
        self.answer = answer
        self.posted: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/config/config_entries/flow", self._start)
        app.router.add_post("/api/config/config_entries/flow/{id}", self._step)
        app.router.add_delete("/api/config/config_entries/flow/{id}", self._delete)
        return app

    async def _start(self, request: web.Request) -> web.Response:
        assert (await request.json())["handler"] == "bambu_cloud"
        return web.json_response(
            {"type": "menu", "flow_id": "f1", "menu_options": self.menu}
        )

    async def _step(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posted.append(body)
        if "next_step_id" in body:
            step = "lan_pick" if self.heard else body["next_step_id"]
            return web.json_response({"type": "form", "flow_id": "f1", "step_id": step})
        if "printer" in body:
            return web.json_response(
                {"type": "form", "flow_id": "f1", "step_id": "lan"}
            )
        return web.json_response(self.answer)

    async def _delete(self, request: web.Request) -> web.Response:
        self.deleted.append(request.match_info["id"])
        return web.json_response({})


async def _flow_api(flow: _FlowApi) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(flow.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


LAN_PRINTER = ("127.0.0.1:40001", "00M0FL000000001", "00024680")


@pytest.mark.parametrize(
    "answer",
    [
        {"type": "create_entry", "title": "LAN X1C 1"},
        {"type": "abort", "reason": "already_configured"},
    ],
    ids=["created", "added before"],
)
async def test_lan_printer_added_through_the_lan_step(answer: dict[str, Any]) -> None:
    """The LAN-only printer goes through the menu's lan step with its address."""
    flow = _FlowApi(["token", "sign_in", "lan"], answer)
    runner, url = await _flow_api(flow)
    try:
        async with aiohttp.ClientSession() as session:
            api = demo_setup.HomeAssistantApi(session, url)
            api.token = "t"
            assert await api.add_lan_printer(*LAN_PRINTER) == answer
    finally:
        await runner.cleanup()
    host, serial, code = LAN_PRINTER
    assert flow.posted == [
        {"next_step_id": "lan"},
        {"host": host, "serial": serial, "access_code": code},
    ]


async def test_lan_printer_typed_when_printers_were_heard() -> None:
    """The pick list of printers heard comes first: manual, then the address."""
    flow = _FlowApi(["token", "lan"], {"type": "create_entry"}, heard=True)
    runner, url = await _flow_api(flow)
    try:
        async with aiohttp.ClientSession() as session:
            api = demo_setup.HomeAssistantApi(session, url)
            api.token = "t"
            assert await api.add_lan_printer(*LAN_PRINTER) is not None
    finally:
        await runner.cleanup()
    assert flow.posted[1] == {"printer": "manual"}
    assert flow.posted[2]["host"] == LAN_PRINTER[0]


def test_lan_printer_host_matches_what_it_announces() -> None:
    """At the demo's MQTT port: the bare address, as discovery will see it."""
    state = {"lan_mqtt_port": 40001}
    assert demo_setup.lan_printer_host(state, {"lan_host": "127.0.0.1:40001"}) == (
        "127.0.0.1"
    )
    assert demo_setup.lan_printer_host(state, {"lan_host": "127.0.0.1:40003"}) == (
        "127.0.0.1:40003"
    )
    assert demo_setup.lan_printer_host({}, {"lan_host": "127.0.0.1:1"}) == (
        "127.0.0.1:1"
    )


def test_launcher_serves_the_lan_only_printer_at_the_mqtt_port() -> None:
    """The demo's printers' MQTT port is the LAN-only printer's."""
    state = {
        "api_url": "https://127.0.0.1:1",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": 2,
        "cloud_ca_pem": None,
        "printer_ca_sha256": "00" * 32,
        "lan_mqtt_port": 40001,
        "printers": [{"camera_port": 40002}],
    }
    config = farm_config(state)
    assert (config.ports.mqtt, config.ports.jpeg) == (40001, 40002)
    assert farm_config({**state, "lan_mqtt_port": None}).ports.mqtt == 8883


async def test_lan_printer_refused_or_step_missing() -> None:
    """A flow error stops the set-up; a missing step skips the printer."""
    refused = _FlowApi(
        ["token", "lan"], {"type": "form", "errors": {"base": "cannot_connect"}}
    )
    missing = _FlowApi(["token", "sign_in"], {})
    for flow in (refused, missing):
        runner, url = await _flow_api(flow)
        try:
            async with aiohttp.ClientSession() as session:
                api = demo_setup.HomeAssistantApi(session, url)
                api.token = "t"
                if flow is refused:
                    with pytest.raises(DemoSetupError, match="cannot_connect"):
                        await api.add_lan_printer(*LAN_PRINTER)
                else:
                    assert await api.add_lan_printer(*LAN_PRINTER) is None
        finally:
            await runner.cleanup()
    assert missing.posted == []
    assert missing.deleted == ["f1"]


def test_banner_counts_lan_printers(tmp_path: Path) -> None:
    """The newcomer learns which printer has no account."""
    owner = Owner("Demo", "demo", "pw")
    text = demo_setup.banner("http://x", Provisioned(owner, True, True, 5, 1), tmp_path)
    assert "1 of them without an account" in text
    text = demo_setup.banner("http://x", Provisioned(owner, True, True, 4), tmp_path)
    assert "without an account" not in text


def test_launcher_lists_lan_only_printers_apart() -> None:
    """By hand, a LAN-only printer is added as a printer on the network."""
    text = instructions(
        {
            "token": "t",
            "account": "a",
            "password": "p",
            "code": "c",
            "printers": [
                {"name": "Farm X1C 1", "serial": "S1", "lan_host": "127.0.0.1:1"},
                {
                    "name": "LAN X1C 1",
                    "serial": "S2",
                    "lan_host": "127.0.0.1:2",
                    "access_code": "00024680",
                    "cloud": False,
                    "developer_mode": False,
                },
            ],
        }
    )
    account, network = text.split("Printer on my network")
    assert "S1" in account
    assert "S2" not in account
    assert "127.0.0.1:2  access code 00024680  (Developer Mode off)" in network
