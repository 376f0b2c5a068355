"""Run Home Assistant against the virtual farm (``scripts/develop --demo``).

Usage::

    python -m tools.demo_launcher --state-file FARM.json -- -c CONFIG_DIR

Waits for the farm's state file (``python -m tools.virtual_farm
--state-file``), then, BEFORE Home Assistant is imported:

1. writes a CA bundle = certifi's bundle + the farm's cloud CA and points
   ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` at it. Home Assistant builds its
   client SSL contexts from ``REQUESTS_CA_BUNDLE`` when ``homeassistant.util.ssl``
   is imported, so the integration's HTTP session verifies the farm's HTTPS
   certificate like any public one (verification stays on);
2. swaps the integration's one configuration value,
   ``custom_components.bambu_cloud.library.LIBRARY_CONFIGS``: every region
   gets a configuration whose endpoints are the farm's (API, web, MQTT
   host/port and the broker's CA), whose pins are the farm's printer CA
   fingerprint (LAN connections and cameras pin the farm's Bambu-shaped CA),
   and whose JPEG camera port is the port of the farm's first P1/A1 camera
   (6000 on real printers; the e2e tests use a free port).

Then it runs ``homeassistant.__main__.main()`` in this process. Production
code has no redirect option: only this launcher swaps that value.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from custom_components.bambu_cloud.bambu.config import BambuConfig


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Launcher options; everything after ``--`` goes to Home Assistant."""
    parser = argparse.ArgumentParser(prog="python -m tools.demo_launcher")
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument(
        "--bundle",
        type=Path,
        help="where to write certifi + farm CA (default: next to the state file)",
    )
    parser.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for the farm"
    )
    parser.add_argument("hass_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.hass_args[:1] == ["--"]:
        args.hass_args = args.hass_args[1:]
    return args


def wait_for_state(path: Path, timeout: float) -> dict[str, Any]:
    """The farm's state JSON, once the farm has written it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"demo: the virtual farm did not write {path} in {timeout:.0f}s"
                ) from None
            time.sleep(0.2)
        else:
            return data


def write_bundle(path: Path, cloud_ca_pem: str) -> Path:
    """Write certifi's CA bundle followed by the farm's cloud CA."""
    import certifi  # noqa: PLC0415 - only needed here

    base = Path(certifi.where()).read_text()
    if not base.endswith("\n"):
        base += "\n"
    path.write_text(base + cloud_ca_pem)
    return path


def farm_config(state: dict[str, Any]) -> BambuConfig:
    """The library's configuration for the virtual farm."""
    from custom_components.bambu_cloud.bambu.config import (  # noqa: PLC0415
        BambuConfig,
        Ports,
    )
    from custom_components.bambu_cloud.bambu.const import (  # noqa: PLC0415
        RegionEndpoints,
    )

    endpoints = RegionEndpoints(
        api_url=state["api_url"],
        web_url=state["api_url"],
        mqtt_host=state["mqtt_host"],
        mqtt_port=int(state["mqtt_port"]),
        mqtt_ca_pem=state["cloud_ca_pem"],
        # The farm's cloud serves the HMS text service's fake too.
        hms_url=state["api_url"],
    )
    camera_ports = [p["camera_port"] for p in state["printers"] if p.get("camera_port")]
    ports = Ports(jpeg=int(camera_ports[0])) if camera_ports else Ports()
    if state.get("ftps_port"):
        # One FTPS server holds every farm printer's storage (SNI = serial).
        ports = dataclasses.replace(ports, ftps=int(state["ftps_port"]))
    if state.get("lan_mqtt_port"):
        # The LAN-only printer announces 127.0.0.1 (a bare address, like a
        # real printer): discovery and its entry reach it at this port.
        ports = dataclasses.replace(ports, mqtt=int(state["lan_mqtt_port"]))
    return BambuConfig(
        endpoints=endpoints,
        pins=frozenset({state["printer_ca_sha256"]}),
        ports=ports,
    )


def configure_integration(state: dict[str, Any]) -> None:
    """Give every region the farm's configuration (demo only).

    The one value swapped: ``library.LIBRARY_CONFIGS``, which the integration
    reads when it builds its library.
    """
    from custom_components.bambu_cloud.bambu.const import Region  # noqa: PLC0415
    from custom_components.bambu_cloud.library import (  # noqa: PLC0415
        LIBRARY_CONFIGS,
    )

    LIBRARY_CONFIGS.update(dict.fromkeys(Region, farm_config(state)))


def instructions(state: dict[str, Any]) -> str:
    """How to add the demo account and the printers' LAN hosts in the UI."""
    lines = [
        "",
        "=" * 72,
        "Demo: Home Assistant on http://localhost:8123 talks to the virtual farm",
        "  Settings -> Devices & services -> Add integration -> Bambu Lab Cloud",
        "  Region: Global (every region points at the farm)",
        f"  Access token: {state['token']}",
        f"  or sign in: {state['account']} / {state['password']}, "
        f"e-mail code {state['code']}",
        "  LAN connection (integration -> Configure -> printer -> host):",
    ]
    lan_only = [p for p in state["printers"] if not p.get("cloud", True)]
    for printer in state["printers"]:
        if printer in lan_only:
            continue
        camera = (
            f", camera port {printer['camera_port']}"
            if printer.get("camera_port")
            else ""
        )
        lines.append(
            f"    {printer['name']:<16} {printer['serial']}  "
            f"host {printer['lan_host']}{camera}"
        )
    if lan_only:
        lines.append("  Without an account: Add integration -> Printer on my network")
    for printer in lan_only:
        mode = "on" if printer.get("developer_mode") else "off"
        lines.append(
            f"    {printer['name']:<16} {printer['serial']}  "
            f"host {printer['lan_host']}  access code {printer['access_code']}  "
            f"(Developer Mode {mode})"
        )
    lines += ["=" * 72, ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Configure, then hand over to Home Assistant's own ``main()``."""
    args = parse_args(argv)
    state = wait_for_state(args.state_file, args.wait)
    bundle = args.bundle or args.state_file.with_suffix(".ca-bundle.pem")
    write_bundle(bundle, state["cloud_ca_pem"])
    # Must happen before anything imports homeassistant.util.ssl.
    if "homeassistant.util.ssl" in sys.modules:
        raise SystemExit("demo: homeassistant.util.ssl was imported too early")
    os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
    os.environ["SSL_CERT_FILE"] = str(bundle)
    configure_integration(state)
    sys.stdout.write(instructions(state))
    sys.stdout.flush()

    from homeassistant import __main__ as hass_main  # noqa: PLC0415

    sys.argv = ["hass", *args.hass_args]
    return hass_main.main()


if __name__ == "__main__":
    raise SystemExit(main())
