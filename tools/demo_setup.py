"""Make the demo ready before anyone opens it (``scripts/develop --demo``).

Usage::

    python -m tools.demo_setup prepare CONFIG_DIR          # before Home Assistant
    python -m tools.demo_setup provision --config CONFIG_DIR
        --state-file FARM.json [--url http://127.0.0.1:8123]  # once it runs

A newcomer should log in and see live printers, without clicking through
onboarding and the config flow. Everything goes through Home Assistant's
public HTTP APIs against the running instance (the onboarding API creates the
owner, the config-flow API adds the account exactly as the UI would, and the
farm's LAN-only printers through the flow's "Printer on my network" step), so it
keeps working when Home Assistant changes its storage formats. One file is
written before the start: ``.storage/onboarding`` of a fresh configuration,
marking the steps after the owner (location, analytics, the frontend's
hand-over) as done, the way Home Assistant itself marks them for
installations that predate them. Going through the location step would set up
the weather and radio integrations, which reach for the internet; the demo
dials nothing beyond 127.0.0.1.

The owner's credentials are made once, kept in the configuration directory
(``demo-owner.json``, readable by the owner only) and printed on every run.
``scripts/develop --demo --manual`` skips all of this to try the flows by
hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

DOMAIN = "bambu_cloud"
OWNER_FILE = "demo-owner.json"
ONBOARDING_STEPS_AFTER_USER = ("core_config", "analytics", "integration")
"""Home Assistant's onboarding steps after the owner (storage version 4)."""
ONBOARDING_STORAGE_VERSION = 4
UNAVAILABLE = ("unavailable", "unknown")


class DemoSetupError(Exception):
    """The demo could not be made ready (Home Assistant keeps running)."""


@dataclass(frozen=True)
class Owner:
    """The demo's Home Assistant owner."""

    name: str
    username: str
    password: str


def stored_owner(config: Path) -> Owner | None:
    """The owner's credentials the demo kept in ``config``, if any."""
    try:
        data = json.loads((config / OWNER_FILE).read_text())
    except FileNotFoundError:
        return None
    return Owner(data["name"], data["username"], data["password"])


def store_owner(config: Path, owner: Owner) -> None:
    """Keep the owner's credentials, readable by this user only."""
    path = config / OWNER_FILE
    config.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(asdict(owner), indent=2) + "\n")


def prepare(config: Path) -> bool:
    """Mark the onboarding steps after the owner done in a fresh config.

    Returns whether it did; a configuration Home Assistant has run with
    (any ``.storage/onboarding`` or ``.storage/auth``) is left alone.
    """
    storage = config / ".storage"
    onboarding = storage / "onboarding"
    if onboarding.exists() or (storage / "auth").exists():
        return False
    storage.mkdir(parents=True, exist_ok=True)
    onboarding.write_text(
        json.dumps(
            {
                "version": ONBOARDING_STORAGE_VERSION,
                "minor_version": 1,
                "key": "onboarding",
                "data": {"done": list(ONBOARDING_STEPS_AFTER_USER)},
            },
            indent=2,
        )
    )
    return True


class HomeAssistantApi:
    """The few REST and websocket calls of the demo set-up (and the e2e tests)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        """Talk to Home Assistant at ``url`` (no trailing slash)."""
        self.session = session
        self.url = url.rstrip("/")
        self.token: str | None = None

    @property
    def client_id(self) -> str:
        """The OAuth client id the frontend uses: the instance's own URL."""
        return f"{self.url}/"

    @property
    def headers(self) -> dict[str, str]:
        """Bearer authorisation for the REST API."""
        return {"Authorization": f"Bearer {self.token}"}

    async def wait_until_up(
        self, within: float, alive: Callable[[], bool] = lambda: True
    ) -> None:
        """Until the HTTP API answers (Home Assistant is starting)."""
        async with asyncio.timeout(within):
            while True:
                if not alive():
                    raise DemoSetupError("Home Assistant stopped")
                with contextlib.suppress(aiohttp.ClientError):
                    async with self.session.get(
                        f"{self.url}/api/onboarding"
                    ) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(1)

    async def onboarding(self) -> dict[str, bool]:
        """Onboarding steps and whether each is done."""
        async with self.session.get(f"{self.url}/api/onboarding") as response:
            response.raise_for_status()
            steps = await response.json()
        return {step["step"]: step["done"] for step in steps}

    async def create_owner(self, owner: Owner) -> str:
        """The onboarding's owner step; returns an access token."""
        async with self.session.post(
            f"{self.url}/api/onboarding/users",
            json={
                "client_id": self.client_id,
                "name": owner.name,
                "username": owner.username,
                "password": owner.password,
                "language": "en",
            },
        ) as response:
            response.raise_for_status()
            code = (await response.json())["auth_code"]
        return await self._token(code)

    async def login(self, username: str, password: str) -> str:
        """Log in through the login flow, like the UI; returns an access token."""
        async with self.session.post(
            f"{self.url}/auth/login_flow",
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
        ) as response:
            response.raise_for_status()
            flow = await response.json()
        async with self.session.post(
            f"{self.url}/auth/login_flow/{flow['flow_id']}",
            json={
                "client_id": self.client_id,
                "username": username,
                "password": password,
            },
        ) as response:
            result = await response.json()
        if result.get("type") != "create_entry":
            reason = result.get("errors") or result.get("reason") or result
            raise DemoSetupError(
                f"Home Assistant refused the login of {username}: {reason}"
            )
        return await self._token(result["result"])

    async def _token(self, code: str) -> str:
        async with self.session.post(
            f"{self.url}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        ) as response:
            response.raise_for_status()
            token: str = (await response.json())["access_token"]
        self.token = token
        return token

    async def get(self, path: str) -> Any:
        """GET a REST API path, JSON answer."""
        async with self.session.get(
            f"{self.url}{path}", headers=self.headers
        ) as response:
            response.raise_for_status()
            return await response.json()

    async def delete(self, path: str) -> None:
        """DELETE a REST API path (a config flow left unfinished)."""
        async with self.session.delete(
            f"{self.url}{path}", headers=self.headers
        ) as response:
            if response.status >= 400:
                raise DemoSetupError(f"{path}: {response.status}")

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST to a REST API path, JSON answer (None when empty)."""
        async with self.session.post(
            f"{self.url}{path}", json=body, headers=self.headers
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise DemoSetupError(f"{path}: {response.status} {text}")
            return json.loads(text) if text else None

    async def ws_command(self, message: dict[str, Any]) -> Any:
        """One websocket command (authenticated), its result."""
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json())["type"] != "auth_ok":
                raise DemoSetupError("the websocket refused the token")
            await ws.send_json({"id": 1, **message})
            reply = await ws.receive_json()
            if not reply["success"]:
                raise DemoSetupError(f"{message['type']}: {reply}")
            return reply["result"]

    async def entries(self, domain: str = DOMAIN) -> list[dict[str, Any]]:
        """The config entries of ``domain``."""
        entries = await self.get("/api/config/config_entries/entry")
        return [entry for entry in entries if entry["domain"] == domain]

    async def add_account(self, token: str, region: str = "global") -> dict[str, Any]:
        """Add the Bambu account through the config flow, as the UI does."""
        flow = await self.post(
            "/api/config/config_entries/flow",
            {"handler": DOMAIN, "show_advanced_options": False},
        )
        if flow.get("type") == "menu":
            flow = await self.post(
                f"/api/config/config_entries/flow/{flow['flow_id']}",
                {"next_step_id": "token"},
            )
        result = await self.post(
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"region": region, "access_token": token},
        )
        if result.get("type") != "create_entry":
            raise DemoSetupError(f"the config flow did not add the account: {result}")
        return dict(result)

    async def add_lan_printer(
        self, host: str, serial: str, access_code: str
    ) -> dict[str, Any] | None:
        """Add a printer without an account through the config flow's ``lan`` step.

        Returns the flow's result (a new entry, or the abort of a printer
        added before), None when the integration has no such step.
        """
        flow = await self.post(
            "/api/config/config_entries/flow",
            {"handler": DOMAIN, "show_advanced_options": False},
        )
        path = f"/api/config/config_entries/flow/{flow['flow_id']}"
        if flow.get("type") != "menu" or "lan" not in flow.get("menu_options", ()):
            await self.delete(path)
            return None
        form = await self.post(path, {"next_step_id": "lan"})
        if form.get("step_id") == "lan_pick":
            # Printers heard on the network come first: type the address.
            await self.post(path, {"printer": "manual"})
        result = await self.post(
            path, {"host": host, "serial": serial, "access_code": access_code}
        )
        if result.get("type") == "create_entry" or (
            result.get("type") == "abort"
            and result.get("reason") == "already_configured"
        ):
            return dict(result)
        raise DemoSetupError(f"the config flow did not add {serial}: {result}")

    async def live_printers(self, serials: Sequence[str]) -> set[str]:
        """The printers (by serial) with at least one available sensor."""
        devices = await self.ws_command({"type": "config/device_registry/list"})
        serial_of = {
            device["id"]: identifier[1]
            for device in devices
            for identifier in device["identifiers"]
            if identifier[0] == DOMAIN and identifier[1] in serials
        }
        registry = await self.ws_command({"type": "config/entity_registry/list"})
        printer_of = {
            entity["entity_id"]: serial_of[entity["device_id"]]
            for entity in registry
            if entity["platform"] == DOMAIN and entity.get("device_id") in serial_of
        }
        states = await self.get("/api/states")
        return {
            printer_of[state["entity_id"]]
            for state in states
            if state["entity_id"].startswith("sensor.")
            and state["entity_id"] in printer_of
            and state["state"] not in UNAVAILABLE
        }


def lan_printer_host(state: dict[str, Any], printer: dict[str, Any]) -> str:
    """The address a LAN-only farm printer is added with.

    The one at the demo's MQTT port (``lan_mqtt_port``) by the bare address
    it announces, so that discovery, which updates the entry's address,
    finds it unchanged; any other by ``127.0.0.1:<port>``.
    """
    host: str = printer["lan_host"]
    address, _, port = host.rpartition(":")
    if port and port == str(state.get("lan_mqtt_port")):
        return address
    return host


async def until(probe: Callable[[], Any], within: float, every: float = 1.0) -> Any:
    """Poll an async probe until it returns something truthy."""
    async with asyncio.timeout(within):
        while not (result := await probe()):  # noqa: ASYNC110 - remote state
            await asyncio.sleep(every)
    return result


@dataclass(frozen=True)
class Provisioned:
    """What the demo set-up did."""

    owner: Owner
    created_owner: bool
    created_entry: bool
    live_printers: int
    lan_printers: int = 0
    """Of the live printers, those added as printers on the network."""


async def provision(
    url: str,
    state: dict[str, Any],
    config: Path,
    *,
    within: float = 600.0,
    alive: Callable[[], bool] = lambda: True,
) -> Provisioned:
    """Owner, account entry and live printers: the demo, ready to log in to."""
    owner = stored_owner(config)
    async with aiohttp.ClientSession() as session:
        api = HomeAssistantApi(session, url)
        await api.wait_until_up(within, alive)
        steps = await api.onboarding()
        created_owner = not steps.get("user", False)
        if created_owner:
            owner = owner or Owner("Demo", "demo", secrets.token_urlsafe(12))
            await api.create_owner(owner)
            store_owner(config, owner)
        elif owner is None:
            raise DemoSetupError(
                f"{config} has an owner the demo did not make (log in as that owner)"
            )
        else:
            await api.login(owner.username, owner.password)
        created_entry = not await api.entries()
        if created_entry:
            await api.add_account(state["token"])
        # The farm's LAN-only printers: no account knows them.
        serials = [p["serial"] for p in state["printers"] if p.get("cloud", True)]
        lan_serials = []
        for printer in state["printers"]:
            if printer.get("cloud", True):
                continue
            if await api.add_lan_printer(
                lan_printer_host(state, printer),
                printer["serial"],
                printer["access_code"],
            ):
                lan_serials.append(printer["serial"])
        serials += lan_serials

        async def settled() -> bool:
            entries = await api.entries()
            return bool(entries) and all(e["state"] == "loaded" for e in entries)

        await until(settled, within)

        async def all_live() -> set[str] | None:
            live = await api.live_printers(serials)
            return live if len(live) == len(serials) else None

        live = await until(all_live, within, every=0.5)
    return Provisioned(owner, created_owner, created_entry, len(live), len(lan_serials))


def banner(url: str, result: Provisioned, config: Path) -> str:
    """What the newcomer needs: where to go and how to log in."""
    owner = result.owner
    return "\n".join(
        [
            "",
            "=" * 72,
            f"Demo ready: open {url} and log in",
            f"  username {owner.username}",
            f"  password {owner.password}",
            f"  {result.live_printers} virtual printers are live "
            "(Settings -> Devices & services -> Bambu Lab Cloud);",
            *(
                [
                    f"  {result.lan_printers} of them without an account "
                    "(LAN only, added as a printer on the network)"
                ]
                if result.lan_printers
                else []
            ),
            "  their LAN hosts and cameras (listed above) are optional",
            f"  (credentials kept in {config / OWNER_FILE})",
            "=" * 72,
            "",
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m tools.demo_setup")
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="before Home Assistant starts")
    prep.add_argument("config", type=Path)
    prov = commands.add_parser("provision", help="once Home Assistant runs")
    prov.add_argument("--config", type=Path, required=True)
    prov.add_argument("--state-file", type=Path, required=True)
    prov.add_argument("--url", default="http://127.0.0.1:8123")
    prov.add_argument("--public-url", default="http://localhost:8123")
    prov.add_argument("--timeout", type=float, default=600.0)
    prov.add_argument("--pid", type=int, help="give up when this process ends")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; non-zero when the demo could not be made ready."""
    args = parse_args(argv)
    if args.command == "prepare":
        prepare(args.config)
        return 0
    state = json.loads(args.state_file.read_text())
    try:
        result = asyncio.run(
            provision(
                args.url,
                state,
                args.config,
                within=args.timeout,
                alive=lambda: args.pid is None or _running(args.pid),
            )
        )
    except KeyboardInterrupt:
        return 130
    except (DemoSetupError, aiohttp.ClientError, TimeoutError) as err:
        sys.stderr.write(
            f"[demo] could not make the demo ready ({err or type(err).__name__}); "
            "Home Assistant keeps running: set it up by hand\n"
        )
        return 1
    sys.stdout.write(banner(args.public_url, result, args.config))
    sys.stdout.flush()
    return 0


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    raise SystemExit(main())
