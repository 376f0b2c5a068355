"""The virtual farm: HTTPS cloud, cloud broker, busy printers, cameras, CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from custom_components.bambu_cloud.bambu.cloud import BambuCloud
from custom_components.bambu_cloud.bambu.config import BambuConfig
from custom_components.bambu_cloud.bambu.const import RegionEndpoints
from custom_components.bambu_cloud.bambu.discovery import (
    DiscoveredPrinter,
    parse_notify,
)
from custom_components.bambu_cloud.bambu.models import LoginKind
from tools.virtual_farm import (
    DEMO_CODE,
    DEMO_TFA_ACCOUNT,
    DEMO_TFA_CODE,
    DEMO_TOKEN,
    DEMO_UID,
    Announcement,
    FarmPrinter,
    NotifySender,
    VirtualFarm,
    notify_datagram,
)
from tools.virtual_farm.__main__ import banner, main, parse_args
from tools.virtual_farm.camera import auth_packet
from tools.virtual_farm.farm import MODEL_INFO
from tools.virtual_printer.printer import ERR_VERIFY_FAILED

from . import PahoClient, eventually

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(20)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def farm() -> AsyncIterator[VirtualFarm]:
    """A fast farm: jobs complete within a couple of seconds."""
    async with VirtualFarm(
        printers=4, speed=50, job_seconds=20, idle_seconds=4, camera_interval=0.2
    ) as running:
        yield running


async def _get(
    session: aiohttp.ClientSession, farm: VirtualFarm, path: str, **params: str
) -> dict[str, object]:
    async with session.get(
        farm.api_url + path,
        params=params,
        headers={"Authorization": f"Bearer {farm.token}"},
    ) as response:
        assert response.status == 200, path
        data: dict[str, object] = await response.json()
        return data


async def test_cloud_over_verified_https(farm: VirtualFarm) -> None:
    assert farm.pki is not None
    ctx = farm.pki.cloud_client_context()
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert ctx.verify_flags & ssl.VERIFY_X509_STRICT  # the CA is a normal one
    connector = aiohttp.TCPConnector(ssl=ctx)
    async with aiohttp.ClientSession(connector=connector) as session:
        profile = await _get(session, farm, "/v1/user-service/my/profile")
        assert profile["uidStr"] == DEMO_UID

        bind = await _get(session, farm, "/v1/iot-service/api/user/bind")
        devices = bind["devices"]
        assert isinstance(devices, list)
        assert [d["dev_product_name"] for d in devices] == [
            "X1 Carbon",
            "P1S",
            "A1 mini",
            "H2D",
        ]
        codes = {p.serial: p.access_code for p in farm.printers}
        assert {d["dev_id"]: d["dev_access_code"].strip() for d in devices} == codes

        tasks = await _get(session, farm, "/v1/user-service/my/tasks")
        hits = tasks["hits"]
        assert isinstance(hits, list)
        assert hits
        cover = hits[0]["cover"]
        assert cover.startswith(farm.api_url + "/covers/")
        async with session.get(cover) as response:
            assert response.status == 200
            png = await response.read()
        assert png.startswith(b"\x89PNG")

        versions = await _get(session, farm, "/v1/iot-service/api/user/device/version")
        firmware = {d["dev_id"]: d for d in versions["devices"]}  # type: ignore[attr-defined]
        behind = [p.serial for p in farm.printers if p.firmware_behind]
        assert behind
        for serial in behind:
            releases = firmware[serial]["firmware"]
            assert len(releases) == 2
            assert releases[1]["version"] > firmware[serial]["version"]
            assert releases[1]["description"]

        # Sign-in: password, then the demo e-mail code.
        login = farm.api_url + "/v1/user-service/user/login"
        body = {"account": farm.account, "password": farm.password}
        async with session.post(login, json=body) as response:
            assert (await response.json())["loginType"] == "verifyCode"
        body = {"account": farm.account, "code": DEMO_CODE}
        async with session.post(login, json=body) as response:
            assert (await response.json())["accessToken"] == DEMO_TOKEN

        # The TFA demo account: password, then the authenticator code, with
        # the library's client as Home Assistant uses it (web host = API host).
        endpoints = RegionEndpoints(
            api_url=farm.api_url, web_url=farm.api_url, mqtt_host="127.0.0.1"
        )
        cloud = BambuCloud(session, BambuConfig(endpoints=endpoints))
        result = await cloud.login(DEMO_TFA_ACCOUNT, farm.password)
        assert result.kind is LoginKind.TFA
        assert result.tfa_key
        result = await cloud.login_with_tfa(result.tfa_key, DEMO_TFA_CODE)
        assert result.access_token == DEMO_TOKEN

    # Without the farm CA the certificate is refused: verification is real.
    strict = ssl.create_default_context()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=strict)
    ) as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await _get(session, farm, "/v1/user-service/my/profile")


async def test_broker_and_printers_live_through_jobs(farm: VirtualFarm) -> None:
    assert farm.pki is not None
    topics = tuple(f"device/{p.serial}/report" for p in farm.printers)
    refused = PahoClient(
        farm.mqtt_port,
        client_id="wrong",
        ssl_context=farm.pki.cloud_client_context(),
        username=f"u_{farm.uid}",
        password="not-the-token",
    ).start()
    client = PahoClient(
        farm.mqtt_port,
        client_id="ha",
        ssl_context=farm.pki.cloud_client_context(),
        username=f"u_{farm.uid}",
        password=farm.token,
        subscribe=topics,
    ).start()
    try:
        await client.ready()
        await eventually(lambda: refused.connects)
        assert str(refused.connects[0]) == "Not authorized"  # CONNACK rc 5
        assert refused.successful_connects == 0

        def states(serial: str) -> list[str]:
            return [
                m["print"]["gcode_state"]
                for m in client.json_messages(f"device/{serial}/report")
                if isinstance(m.get("print"), dict) and "gcode_state" in m["print"]
            ]

        first = farm.printers[0]  # X1C: job 0 is the HMS scenario, then FINISH
        await eventually(lambda: "FINISH" in states(first.serial), within=12)
        seen = states(first.serial)
        assert seen.index("PREPARE") < seen.index("RUNNING") < seen.index("FINISH")
        reports = [
            m["print"]
            for m in client.json_messages(f"device/{first.serial}/report")
            if "print" in m
        ]
        assert all(r["msg"] == 0 for r in reports)  # X1: full reports
        progress = [r["mc_percent"] for r in reports if r["gcode_state"] == "RUNNING"]
        assert progress == sorted(progress)
        assert progress[-1] > 50
        assert any(r["hms"] for r in reports)  # raised ...
        assert not reports[-1]["hms"]  # ... and cleared

        p1s = farm.printers[1]  # delta reports (msg 1) with only what changed
        await eventually(lambda: "RUNNING" in states(p1s.serial), within=8)
        deltas = [
            m["print"]
            for m in client.json_messages(f"device/{p1s.serial}/report")
            if m.get("print", {}).get("msg") == 1
        ]
        assert deltas
        assert all(len(d) < 30 for d in deltas)
    finally:
        client.close()
        refused.close()


async def test_lan_broker_answers_pushall(farm: VirtualFarm) -> None:
    assert farm.pki is not None
    printer = farm.printers[2]
    assert printer.lan_broker is not None
    topic = f"device/{printer.serial}/report"
    client = PahoClient(
        printer.lan_broker.port,
        ssl_context=farm.pki.printer_client_context(),
        sni=printer.serial,
        password=printer.access_code,
        subscribe=(topic,),
    ).start()
    try:
        await client.ready()
        client.publish_json(
            f"device/{printer.serial}/request",
            {"pushing": {"sequence_id": "1", "command": "pushall"}},
        )
        full = await client.next_json(lambda m: m.get("print", {}).get("msg") == 0)
        assert "ams" in full["print"]
    finally:
        client.close()
    broker = printer.lan_broker
    await eventually(lambda: broker.connected_clients == [])


async def _camera(
    farm: VirtualFarm, index: int, code: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert farm.pki is not None
    printer = farm.printers[index]
    assert printer.camera_port is not None
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        printer.camera_port,
        ssl=farm.pki.printer_client_context(),
        server_hostname=printer.serial,  # SNI + CN check, like the integration
    )
    writer.write(auth_packet(code))
    await writer.drain()
    return reader, writer


async def test_camera_sends_jpeg_after_auth(farm: VirtualFarm) -> None:
    printer = farm.printers[1]
    assert printer.model == "P1S"
    assert farm.printers[0].camera_port is None  # X1C streams RTSPS instead
    reader, writer = await _camera(farm, 1, printer.access_code)
    try:
        async with asyncio.timeout(5):
            for _ in range(2):
                size, itrack, flags, zero = struct.unpack(
                    "<IIII", await reader.readexactly(16)
                )
                assert (itrack, flags, zero) == (0, 1, 0)
                jpeg = await reader.readexactly(size)
                assert jpeg[:2] == b"\xff\xd8"
                assert jpeg[-2:] == b"\xff\xd9"
                image = Image.open(io.BytesIO(jpeg))
                assert image.format == "JPEG"
                assert image.size == (640, 360)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_camera_closes_on_wrong_code(farm: VirtualFarm) -> None:
    printer = farm.printers[2]
    assert printer.camera is not None
    reader, writer = await _camera(farm, 2, "00000000")
    try:
        async with asyncio.timeout(5):
            assert await reader.read(16) == b""
        assert printer.camera.refused == 1
        assert printer.camera.frames_sent == 0
    finally:
        writer.close()
        await writer.wait_closed()


async def test_shutdown_leaves_nothing(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    farm = VirtualFarm(printers=2, speed=50, job_seconds=10, idle_seconds=2)
    async with farm:
        directory = farm.directory
        state = tmp_path / "farm.json"
        farm.write_state(state)
        described = json.loads(state.read_text())
        assert described["api_port"] == farm.api_port
        assert described["mqtt_port"] == farm.mqtt_port
        assert described["printer_ca_sha256"] == farm.printer_ca_sha256
        assert len(described["printers"]) == 2
        assert directory.is_dir()
        await asyncio.sleep(0.3)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
    assert not directory.exists()
    assert farm.printers == []


def test_cli_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.virtual_farm", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert "--printers" in result.stdout
    assert "--state-file" in result.stdout


# -- LAN-only printers and their NOTIFY datagrams ----------------------------


class _Heard(asyncio.DatagramProtocol):
    """Every datagram received, with its sender."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append((data, addr))


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, _Heard]]:
    """A UDP socket on 127.0.0.1 (any port), standing in for Home Assistant."""
    loop = asyncio.get_running_loop()
    transport, heard = await loop.create_datagram_endpoint(
        _Heard, local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1], heard
    finally:
        transport.close()


@pytest.fixture
async def lan_farm(listener: tuple[int, _Heard]) -> AsyncIterator[VirtualFarm]:
    """One account printer and two LAN-only ones announcing every 0.1 s."""
    async with VirtualFarm(
        printers=1,
        lan_only=2,
        notify_port=listener[0],
        notify_interval=0.1,
        speed=50,
        job_seconds=20,
        idle_seconds=4,
        cameras=False,
    ) as running:
        yield running


async def test_lan_only_printers_announce_on_loopback(
    lan_farm: VirtualFarm, listener: tuple[int, _Heard]
) -> None:
    """Each LAN-only printer sends a printer's NOTIFY, again and again."""
    port, heard = listener
    lan_only = [p for p in lan_farm.printers if not p.cloud]
    assert [p.developer_mode for p in lan_only] == [True, False]
    assert lan_farm.notify is not None
    assert lan_farm.notify.port == port
    await eventually(lambda: len(heard.datagrams) >= 3 * len(lan_only), within=5)

    found = {}
    for data, (sender, _) in heard.datagrams:
        assert sender == "127.0.0.1"
        assert data.startswith(b"NOTIFY * HTTP/1.1\r\n")
        assert data.endswith(b"\r\n\r\n")
        # What the integration's parser makes of it (the contract's side).
        printer = parse_notify(data, sender)
        assert printer is not None
        found.setdefault(printer.serial, []).append(printer)
    assert set(found) == {p.serial for p in lan_only}
    for farm_printer in lan_only:
        announced = found[farm_printer.serial]
        assert len(announced) >= 2  # every few seconds, not once
        assert announced[-1] == DiscoveredPrinter(
            serial=farm_printer.serial,
            host="127.0.0.1",
            model_id=MODEL_INFO[farm_printer.model].model_id,
            name=farm_printer.name,
            connect_mode="lan",
            bind="free",
            version=farm_printer.printer.spec.sw_ver,
        )


async def test_lan_only_printers_have_no_cloud(lan_farm: VirtualFarm) -> None:
    """The account does not list them; only their own broker reaches them."""
    bound = [p.serial for p in lan_farm.printers if p.cloud]
    assert [d["dev_id"] for d in lan_farm.cloud.devices] == bound
    assert [v["dev_id"] for v in lan_farm.cloud.versions] == bound
    for farm_printer in lan_farm.printers:
        if not farm_printer.cloud:
            assert farm_printer.printer.brokers == (farm_printer.lan_broker,)
            assert farm_printer.camera is None
    # Only the LAN-only printer is found at 127.0.0.1 (the demo's MQTT port).
    account = lan_farm.printers[0]
    assert account.printer.state["net"]["info"] == []
    lan_only = lan_farm.printers[1]
    assert lan_only.lan_broker is not None
    assert lan_farm.describe()["lan_mqtt_port"] == lan_only.lan_broker.port
    described = lan_farm.describe()["printers"]
    assert [(p["cloud"], p["developer_mode"]) for p in described] == [
        (True, None),
        (False, True),
        (False, False),
    ]
    text = banner(lan_farm)
    assert "LAN-only, Developer Mode on" in text
    assert "LAN-only, Developer Mode off" in text
    assert f"to 127.0.0.1:{lan_farm.notify.port}" in text  # type: ignore[union-attr]


async def _lan_command(
    farm: VirtualFarm, farm_printer: FarmPrinter, command: dict[str, Any]
) -> dict[str, Any]:
    """Send a command over the printer's LAN broker; its acknowledgement."""
    assert farm.pki is not None
    assert farm_printer.lan_broker is not None
    serial = farm_printer.serial
    client = PahoClient(
        farm_printer.lan_broker.port,
        ssl_context=farm.pki.printer_client_context(),
        sni=serial,
        password=farm_printer.access_code,
        subscribe=(f"device/{serial}/report",),
    ).start()
    try:
        await client.ready()
        client.publish_json(f"device/{serial}/request", command)
        kind, inner = next(iter(command.items()))
        reply = await client.next_json(
            lambda m: (
                m.get(kind, {}).get("sequence_id") == inner["sequence_id"]
                and "result" in m[kind]
            )
        )
        return dict(reply[kind])
    finally:
        client.close()


async def test_developer_mode_decides_unsigned_controls(lan_farm: VirtualFarm) -> None:
    """Developer Mode on: unsigned print commands work; off: refused, light works."""
    on, off = (p for p in lan_farm.printers if not p.cloud)
    pause = {"print": {"sequence_id": "7", "command": "pause", "param": ""}}
    light = {
        "system": {
            "sequence_id": "8",
            "command": "ledctrl",
            "led_node": "chamber_light",
            "led_mode": "on",
        }
    }
    assert not on.printer.signature_required
    assert (await _lan_command(lan_farm, on, pause))["result"] == "success"
    assert off.printer.signature_required  # fun & 0x20000000 in its reports
    refused = await _lan_command(lan_farm, off, pause)
    assert refused["result"] == "failed"
    assert refused["err_code"] == ERR_VERIFY_FAILED
    assert (await _lan_command(lan_farm, off, light))["result"] == "success"


async def test_notify_sender_only_dials_loopback(
    listener: tuple[int, _Heard],
) -> None:
    """The destination is 127.0.0.1, whatever the caller wants."""
    port, heard = listener
    announcement = Announcement(
        serial="00M0FL000000001", model_id="BL-P001", name="Bench", version="1"
    )
    sender = NotifySender(lambda: [announcement], port=port, interval=60)
    await sender.start()
    try:
        assert sender._transport is not None
        assert sender._transport.get_extra_info("peername") == ("127.0.0.1", port)
        sock = sender._transport.get_extra_info("socket")
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        await eventually(lambda: heard.datagrams)
        assert sender.announce() == 1
        await eventually(lambda: len(heard.datagrams) == 2)
        assert sender.sent == 2
    finally:
        await sender.stop()
    assert sender.announce() == 0
    await sender.stop()  # twice is fine
    for bad in (0, 65536):
        with pytest.raises(ValueError, match="port"):
            NotifySender(list, port=bad)
    with pytest.raises(ValueError, match="interval"):
        NotifySender(list, interval=0)


async def test_notify_sender_ignores_send_errors() -> None:
    """Nobody listening (ICMP unreachable on loopback) stops nothing."""
    announcement = Announcement(
        serial="00M0FL000000001", model_id="BL-P001", name="Bench", version="1"
    )
    sender = NotifySender(lambda: [announcement, announcement], port=9, interval=0.05)
    await sender.start()
    try:
        await eventually(lambda: sender.sent >= 4, within=5)
    finally:
        await sender.stop()


def test_notify_datagram_format() -> None:
    """Header by header as PROTOCOL.md section 6 shows it, CRLF, blank end."""
    data = notify_datagram(
        Announcement(
            serial="00M0FL000000001",
            model_id="BL-P001",
            name="Bench X1C",
            version="01.08.02.00",
            connect="cloud",
            bind="occupied",
        )
    )
    lines = data.decode().split("\r\n")
    assert lines[0] == "NOTIFY * HTTP/1.1"
    assert lines[-2:] == ["", ""]
    headers = dict(line.split(": ", 1) for line in lines[1:-2])
    assert headers["Location"] == "127.0.0.1"
    assert headers["NT"] == "urn:bambulab-com:device:3dprinter:1"
    assert headers["NTS"] == "ssdp:alive"
    assert headers["USN"] == "00M0FL000000001"
    assert headers["DevModel.bambu.com"] == "BL-P001"
    assert headers["DevName.bambu.com"] == "Bench X1C"
    assert headers["DevConnect.bambu.com"] == "cloud"
    assert headers["DevBind.bambu.com"] == "occupied"
    assert headers["DevVersion.bambu.com"] == "01.08.02.00"


def test_cli_banner_names_lan_only_printers() -> None:
    """``--lan-only`` and ``--notify-port`` exist; bad values are refused."""
    args = parse_args([])
    assert (args.lan_only, args.notify_port) == (1, 2021)
    assert main(["--lan-only", "11"]) == 2
    assert main(["--notify-port", "70000"]) == 2
