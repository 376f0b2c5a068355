"""Run the virtual farm until SIGINT/SIGTERM: ``python -m tools.virtual_farm``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .farm import VirtualFarm
from .notify import DEFAULT_PORT


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.virtual_farm",
        description=(
            "A virtual Bambu Lab printer farm on 127.0.0.1: an HTTPS fake cloud, "
            "its TLS MQTT broker and printers living through print jobs "
            "(X1C, P1S, A1 mini, H2D, cycling), with LAN brokers and P1/A1 "
            "camera servers, plus printers in LAN-only mode that announce "
            "themselves with NOTIFY datagrams to 127.0.0.1. Certificates are "
            "throwaway, made at start-up."
        ),
    )
    parser.add_argument(
        "--printers", type=int, default=4, help="number of printers (default 4)"
    )
    parser.add_argument(
        "--lan-only",
        type=int,
        default=1,
        help=(
            "printers in LAN-only mode, bound to no account, Developer Mode "
            "on for the 1st, 3rd, ... (default 1)"
        ),
    )
    parser.add_argument(
        "--notify-port",
        type=int,
        default=DEFAULT_PORT,
        help=(
            "the LAN-only printers send NOTIFY datagrams to 127.0.0.1:PORT "
            f"(default {DEFAULT_PORT}; 0: none). Never broadcast or multicast"
        ),
    )
    parser.add_argument(
        "--api-port", type=int, default=0, help="HTTPS cloud port (default: any)"
    )
    parser.add_argument(
        "--mqtt-port", type=int, default=0, help="cloud MQTT port (default: any)"
    )
    parser.add_argument(
        "--lan-base-port",
        type=int,
        default=0,
        help="printer i: LAN MQTT on base+2i, camera on base+2i+1 (default: any)",
    )
    parser.add_argument(
        "--first-camera-port",
        type=int,
        default=0,
        help="port of the first P1/A1 camera (6000 = where clients look)",
    )
    parser.add_argument(
        "--ftps-port",
        type=int,
        default=0,
        help="FTPS port of every printer's storage, picked by SNI (default: any)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (default 1: one report/s)",
    )
    parser.add_argument(
        "--job-seconds",
        type=int,
        default=180,
        help="simulated printing time of a job (default 180)",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        help="write the chosen ports, CA and credentials here as JSON",
    )
    parser.add_argument("--seed", type=int, default=0, help="job variation seed")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    return parser.parse_args(argv)


def banner(farm: VirtualFarm) -> str:
    """What a human needs to connect Home Assistant to the farm."""
    lines = [
        "Virtual Bambu farm is running (127.0.0.1 only, Ctrl+C stops it)",
        f"  cloud API (HTTPS)  {farm.api_url}",
        f"  cloud MQTT (TLS)   127.0.0.1:{farm.mqtt_port}  user u_{farm.uid}",
        f"  cloud CA           {farm.describe()['cloud_ca_file']}",
        f"  printer CA sha256  {farm.printer_ca_sha256}",
        f"  access token       {farm.token}",
        f"  sign-in            {farm.account} / {farm.password}  "
        f"e-mail code {farm.code}",
        f"  sign-in (TFA)      {farm.tfa_account} / {farm.password}  "
        f"authenticator code {farm.tfa_code}",
        f"  printer storage    FTPS 127.0.0.1:{farm.ftps_port}  "
        "(implicit TLS, SNI = serial, user bblp / access code)",
        "  printers:",
    ]
    for printer in farm.printers:
        camera = (
            f"  camera 127.0.0.1:{printer.camera_port}" if printer.camera_port else ""
        )
        mode = (
            ""
            if printer.cloud
            else "  LAN-only, Developer Mode "
            + ("on" if printer.developer_mode else "off")
        )
        lines.append(
            f"    {printer.name:<16} {printer.serial}  access code "
            f"{printer.access_code}  LAN host {printer.lan_host}{camera}{mode}"
        )
    if farm.notify is not None:
        lines.append(
            f"  NOTIFY datagrams    to 127.0.0.1:{farm.notify.port} "
            f"every {farm.notify.interval:g} s (LAN-only printers)"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    """Start the farm, report where it is, wait for a signal, stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    farm = VirtualFarm(
        args.printers,
        speed=args.speed,
        job_seconds=args.job_seconds,
        api_port=args.api_port,
        mqtt_port=args.mqtt_port,
        lan_base_port=args.lan_base_port,
        first_camera_port=args.first_camera_port,
        ftps_port=args.ftps_port,
        seed=args.seed,
        lan_only=args.lan_only,
        notify_port=args.notify_port or None,
    )
    async with farm:
        if args.state_file is not None:
            farm.write_state(args.state_file)
        sys.stdout.write(banner(farm) + "\n")
        sys.stdout.flush()
        await stop.wait()
        sys.stdout.write("Stopping the virtual farm\n")
    if args.state_file is not None:
        with contextlib.suppress(OSError):
            args.state_file.unlink()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not 1 <= args.printers <= 100:
        sys.stderr.write("--printers must be between 1 and 100\n")
        return 2
    if not 0 <= args.lan_only <= 10:
        sys.stderr.write("--lan-only must be between 0 and 10\n")
        return 2
    if not 0 <= args.notify_port < 65536:
        sys.stderr.write("--notify-port must be between 0 and 65535\n")
        return 2
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
