"""Run a real Home Assistant process (via the demo launcher) for e2e tests.

The launcher swaps only the integration's library configuration
(``library.LIBRARY_CONFIGS``) before Home Assistant starts, exactly as
`scripts/develop --demo` does. Home Assistant's
blocking-call detection is active in a real start-up (unlike pytest), so the
log is checked afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tools.demo_setup import HomeAssistantApi
from tools.hass_config import configuration
from tools.virtual_farm.farm import FarmPrinter, VirtualFarm

ROOT = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT = float(os.environ.get("BAMBU_E2E_BOOT_TIMEOUT", "900"))

# A log line of Home Assistant's: "2026-01-31 12:00:00.123 ERROR (MainThread) [...]".
LOG_ERROR = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ (ERROR|CRITICAL) ", re.MULTILINE)


def log_problems(text: str) -> list[str]:
    """Every ERROR or CRITICAL line, blocking call or traceback, with context.

    From any logger, not only the integration's: the configuration is a real
    user's (``default_config`` minus go2rtc and, offline, minus
    homeassistant_alerts: see tools/hass_config.py), and it must start clean.
    """
    lines = text.splitlines()
    return [
        "\n".join(lines[max(0, index - 2) : index + 12])
        for index, line in enumerate(lines)
        if LOG_ERROR.match(line)
        or "Detected blocking call" in line
        or "Traceback" in line
    ]


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HassProcess:
    """A Home Assistant process and how to talk to it."""

    config: Path
    port: int
    process: asyncio.subprocess.Process | None = None
    token: str | None = None
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL of the HTTP API and frontend."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """Home Assistant's own log file."""
        return self.config / "home-assistant.log"

    async def start(self, state_file: Path) -> None:
        """Write the config, start the process, wait until HTTP answers."""
        (self.config / "custom_components").mkdir(parents=True, exist_ok=True)
        link = self.config / "custom_components" / "bambu_cloud"
        if not link.exists():
            link.symlink_to(ROOT / "custom_components" / "bambu_cloud")
        (self.config / "configuration.yaml").write_text(
            configuration(port=self.port, log_level="warning", offline=True)
        )
        output = (self.config / "process.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tools.demo_launcher",
            "--state-file",
            str(state_file),
            "--",
            "--config",
            str(self.config),
            cwd=ROOT,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        self._session = aiohttp.ClientSession()
        async with asyncio.timeout(BOOT_TIMEOUT):
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError("Home Assistant exited:\n" + self.output_tail())
                with contextlib.suppress(aiohttp.ClientError):
                    async with self._session.get(
                        f"{self.url}/api/onboarding"
                    ) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(1)

    def log_problems(self) -> list[str]:
        """The problems in Home Assistant's log so far (see ``log_problems``)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return log_problems(text)

    def output_tail(self, lines: int = 60) -> str:
        """The end of the process output, for failure messages."""
        path = self.config / "process.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        """Stop Home Assistant (SIGTERM, then SIGKILL)."""
        if self._session is not None:
            await self._session.close()
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(60):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session (after start)."""
        assert self._session is not None
        return self._session

    @property
    def api(self) -> HomeAssistantApi:
        """The REST/websocket client of the demo set-up, with this token."""
        api = HomeAssistantApi(self.session, self.url)
        api.token = self.token
        return api

    async def login(self, username: str, password: str) -> str:
        """Log in through the login flow (like the UI) and keep the token."""
        self.token = await self.api.login(username, password)
        return self.token

    async def wait_for_entries_settled(self, within: float = 300) -> None:
        """Wait until no config entry is still setting up."""
        busy = {"not_loaded", "setup_in_progress", "unload_in_progress"}
        async with asyncio.timeout(within):
            while True:
                entries = await self.get("/api/config/config_entries/entry")
                if not any(entry["state"] in busy for entry in entries):
                    return
                await asyncio.sleep(1)

    async def entry_id(self, domain: str = "bambu_cloud") -> str:
        """The id of the (first) config entry of a domain."""
        entries = await self.get("/api/config/config_entries/entry")
        return str(next(e["entry_id"] for e in entries if e["domain"] == domain))

    async def set_printer_host(self, serial: str, host: str) -> None:
        """Give a printer its LAN address through the options flow (as the UI)."""
        base = "/api/config/config_entries/options/flow"
        flow = await self.post(base, {"handler": await self.entry_id()})
        assert flow["type"] == "menu", flow
        assert "printer" in flow["menu_options"], flow
        flow = await self.post(f"{base}/{flow['flow_id']}", {"next_step_id": "printer"})
        flow = await self.post(f"{base}/{flow['flow_id']}", {"printer": serial})
        assert flow["step_id"] == "printer_host", flow
        result = await self.post(f"{base}/{flow['flow_id']}", {"host": host})
        assert result["type"] == "create_entry", result

    async def camera_image(self, entity_id: str) -> tuple[int, str, bytes]:
        """Status, content type and body of the camera's still (the proxy)."""
        async with self.session.get(
            f"{self.url}/api/camera_proxy/{entity_id}", headers=self.headers
        ) as response:
            return response.status, response.content_type, await response.read()

    @property
    def headers(self) -> dict[str, str]:
        """Bearer authorisation for the REST API."""
        return self.api.headers

    async def get(self, path: str) -> Any:
        """GET a REST API path, JSON answer."""
        return await self.api.get(path)

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST to a REST API path, JSON answer."""
        return await self.api.post(path, body)

    async def states(self) -> dict[str, dict[str, Any]]:
        """Every entity state by entity id."""
        return {state["entity_id"]: state for state in await self.get("/api/states")}

    async def ws_command(self, message: dict[str, Any]) -> Any:
        """One websocket command (authenticated), its result."""
        return await self.api.ws_command(message)


async def until(
    probe: Callable[[], Any], within: float = 60.0, every: float = 0.5
) -> Any:
    """Poll an async probe until it returns something truthy."""
    async with asyncio.timeout(within):
        while not (result := await probe()):  # noqa: ASYNC110 - remote state
            await asyncio.sleep(every)
    return result


def jpeg_printer(farm: VirtualFarm) -> FarmPrinter:
    """The farm printer with the port-6000 style JPEG camera (the P1S)."""
    return next(p for p in farm.printers if p.camera is not None)


async def enable_jpeg_camera(hass: HassProcess, farm: VirtualFarm) -> str:
    """Give the JPEG-camera printer its LAN address; its camera's entity id."""
    printer = jpeg_printer(farm)
    assert printer.lan_host is not None
    await hass.set_printer_host(printer.serial, printer.lan_host)

    async def camera() -> str | None:
        states = await hass.states()
        return next(
            (
                entity_id
                for entity_id, state in states.items()
                if entity_id.startswith("camera.")
                and state["state"] not in ("unavailable", "unknown")
            ),
            None,
        )

    entity_id: str = await until(camera)
    return entity_id
