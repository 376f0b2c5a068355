"""The virtual farm: HTTPS cloud, cloud broker, busy printers, cameras, CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import ssl
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from tools.virtual_farm import DEMO_CODE, DEMO_TOKEN, DEMO_UID, VirtualFarm
from tools.virtual_farm.camera import auth_packet

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
