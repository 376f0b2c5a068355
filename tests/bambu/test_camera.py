"""Tests for the LAN camera library (custom_components/.../bambu/camera.py).

A real TLS camera server on 127.0.0.1 (tests/bambu/camera_server.py) with a
Bambu-shaped test PKI (CA without key usage, leaf CN = serial, no SAN) whose
CA is the only pin of the clients' TLS context. Every client and server is
stopped at the end of its test.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from custom_components.bambu_cloud.bambu import camera, tls
from custom_components.bambu_cloud.bambu.camera import (
    CameraAuthError,
    CameraError,
    CameraProtocolError,
    JpegStreamClient,
    auth_packet,
    is_jpeg,
    lan_address,
    liveview_disabled,
    relay_url,
)
from custom_components.bambu_cloud.bambu.mqtt import Backoff
from tools.test_pki import PrinterPKI
from tools.virtual_printer.mosquitto import free_port

from .camera_server import CameraServer, expected_auth, frame_header, make_jpeg

pytestmark = pytest.mark.usefixtures("socket_enabled")

SERIAL = "01P00A451600002"
CODE = "12345678"
TIMEOUT = 5.0


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingBackoff(Backoff):
    """Tiny, recorded delays."""

    def __init__(self) -> None:
        super().__init__(0.01, 0.05, rand=lambda: 0.0)
        self.delays: list[float] = []
        self.resets = 0

    def next(self) -> float:
        delay = super().next()
        self.delays.append(delay)
        return delay

    def reset(self) -> None:
        self.resets += 1
        super().reset()


async def until(condition: Callable[[], bool], within: float = TIMEOUT) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls other tasks' state
            await asyncio.sleep(0.01)


@pytest.fixture
def printer_pki(tmp_path: Path) -> PrinterPKI:
    return PrinterPKI.create(tmp_path / "pki", serial=SERIAL)


@pytest.fixture
def client_context(printer_pki: PrinterPKI) -> ssl.SSLContext:
    return tls.build_printer_context([printer_pki.root.der], pins=printer_pki.pins)


@pytest.fixture
async def server(printer_pki: PrinterPKI) -> AsyncIterator[CameraServer]:
    cam = CameraServer(printer_pki.server_context(), CODE)
    await cam.start()
    yield cam
    await cam.stop()


type ClientFactory = Callable[..., JpegStreamClient]


@pytest.fixture
async def make_client(
    server: CameraServer, client_context: ssl.SSLContext
) -> AsyncIterator[ClientFactory]:
    clients: list[JpegStreamClient] = []

    async def context() -> ssl.SSLContext:
        return client_context

    def make(**kwargs: Any) -> JpegStreamClient:
        options: dict[str, Any] = {
            "host": "127.0.0.1:8883",
            "serial": SERIAL,
            "access_code": CODE,
            "context_factory": context,
            "port": server.port,
            "backoff": RecordingBackoff(),
        }
        options.update(kwargs)
        client = JpegStreamClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.stop()


# ------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("12345678", "rtsp://bblp:12345678@127.0.0.1:40322/streaming/live/1"),
        (
            "ab/c@d:e%",
            "rtsp://bblp:ab%2Fc%40d%3Ae%25@127.0.0.1:40322/streaming/live/1",
        ),
    ],
)
def test_relay_url(code: str, expected: str) -> None:
    """Loopback only: plain RTSP to the relay, never the printer's address."""
    assert relay_url(40322, code) == expected


@pytest.mark.parametrize(
    ("reported", "disabled"),
    [
        (None, False),
        ("", False),
        ("rtsps://10.0.0.9/streaming/live/1", False),
        ("disable", True),
        (" DISABLE ", True),
    ],
)
def test_liveview_disabled(reported: str | None, disabled: bool) -> None:
    assert liveview_disabled(reported) is disabled


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("192.168.1.5", "192.168.1.5"),
        ("192.168.1.5:8883", "192.168.1.5"),
        ("printer.local:1883", "printer.local"),
        ("fe80::1", "fe80::1"),
        ("[fe80::1]:8883", "fe80::1"),
        ("[fe80::1", "fe80::1"),
    ],
)
def test_lan_address(host: str, address: str) -> None:
    """The relay dials the configured host without the MQTT port."""
    assert lan_address(host) == address


def test_auth_packet_layout() -> None:
    packet = auth_packet(CODE)
    assert len(packet) == 80
    assert packet == expected_auth(CODE)
    assert packet[:16] == bytes.fromhex("40000000003000000000000000000000")
    with pytest.raises(ValueError, match="32 bytes"):
        auth_packet("x" * 33)


def test_is_jpeg() -> None:
    jpeg = make_jpeg()
    assert is_jpeg(jpeg)
    assert not is_jpeg(b"\x00" + jpeg[1:])
    assert not is_jpeg(jpeg[:-1])
    assert not is_jpeg(b"")


def test_client_strips_mqtt_port() -> None:
    async def context() -> ssl.SSLContext:  # pragma: no cover - never called
        raise AssertionError

    client = JpegStreamClient("10.0.0.7:8883", SERIAL, CODE, context, port=6000)
    assert (client.host, client.port) == ("10.0.0.7", 6000)
    assert client.frame is None
    assert not client.auth_failed
    assert client.viewers == 0


# ----------------------------------------------------------------- stills


async def test_still_fetches_one_frame_then_disconnects(
    server: CameraServer, make_client: ClientFactory
) -> None:
    client = make_client()
    image = await client.async_still()
    assert image is not None
    assert is_jpeg(image)
    assert Image.open(io.BytesIO(image)).size == (16, 16)
    # SNI = serial, the auth packet byte for byte.
    assert server.sni_seen == [SERIAL]
    assert server.auth_packets == [expected_auth(CODE)]
    await until(lambda: server.active == 0)
    assert not client.connected
    assert client.connections == 1
    assert client.frame is not None
    assert client.frame.data == image


async def test_still_rate_limited_to_once_a_minute(
    server: CameraServer, make_client: ClientFactory
) -> None:
    clock = FakeClock()
    client = make_client(clock=clock)
    first = await client.async_still()
    assert first is not None
    assert client.frame is not None
    assert client.frame.timestamp == clock.now

    clock.now += 59
    assert await client.async_still() == first
    assert server.connections == 1

    clock.now += 2
    second = await client.async_still()
    assert second is not None
    assert second != first
    assert server.connections == 2


async def test_concurrent_stills_share_one_connection(
    server: CameraServer, make_client: ClientFactory
) -> None:
    client = make_client()
    first, second = await asyncio.gather(client.async_still(), client.async_still())
    assert first is not None
    assert first == second
    assert server.connections == 1


async def test_still_timeout_returns_cached(
    server: CameraServer, make_client: ClientFactory
) -> None:
    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _conn: int
    ) -> None:
        await server.hold(reader)

    server.script = silent
    client = make_client()
    assert await client.async_still(within=0.2) is None
    await until(lambda: server.active == 0)
    assert client._task is None


# ---------------------------------------------------------------- viewing


async def test_viewing_is_reference_counted(
    server: CameraServer, make_client: ClientFactory
) -> None:
    client = make_client()
    async with client.viewing():
        async with client.viewing():
            assert client.viewers == 2
            frame = await client.next_frame(0, TIMEOUT)
            assert frame is not None
            newer = await client.next_frame(frame.sequence, TIMEOUT)
            assert newer is not None
            assert newer.sequence > frame.sequence
        assert client.viewers == 1
        await asyncio.sleep(0.15)
        assert client.connected
        assert server.active == 1
        # While viewing, stills are the newest frame: no extra connection.
        assert await client.async_still() == client.frame.data  # type: ignore[union-attr]
    assert client.viewers == 0
    assert not client.connected
    await until(lambda: server.active == 0)
    assert server.connections == 1


async def test_still_while_viewing_waits_for_first_frame(
    server: CameraServer, make_client: ClientFactory
) -> None:
    client = make_client()
    async with client.viewing():
        image = await client.async_still()
    assert image is not None
    assert is_jpeg(image)


async def test_viewer_arriving_during_release_gets_a_connection(
    server: CameraServer, make_client: ClientFactory
) -> None:
    client = make_client()

    async def watch() -> bool:
        async with client.viewing():
            return await client.next_frame(0, TIMEOUT) is not None

    async with client.viewing():
        await client.next_frame(0, TIMEOUT)
    second = asyncio.create_task(watch())
    assert await second
    await until(lambda: server.active == 0)


# ---------------------------------------------------------- frame parsing


async def test_frames_split_across_tls_records(
    server: CameraServer, make_client: ClientFactory
) -> None:
    jpeg = make_jpeg(7)

    async def trickle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _conn: int
    ) -> None:
        data = frame_header(len(jpeg)) + jpeg
        for start in range(0, len(data), 7):
            writer.write(data[start : start + 7])
            await writer.drain()
            await asyncio.sleep(0)
        await server.hold(reader)

    server.script = trickle
    client = make_client()
    assert await client.async_still() == jpeg


async def test_large_frame_uses_every_size_byte(
    server: CameraServer, make_client: ClientFactory
) -> None:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(
        buffer, format="JPEG", quality=95
    )
    big = buffer.getvalue()
    assert len(big) > 0xFFFF

    async def send_big(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _conn: int
    ) -> None:
        await server.send_frame(writer, big)
        await server.hold(reader)

    server.script = send_big
    client = make_client()
    assert await client.async_still() == big


async def test_oversized_frame_is_a_protocol_error(
    server: CameraServer, make_client: ClientFactory
) -> None:
    """A size with its fourth byte set is > 16 MiB, not len % 16 MiB."""
    jpeg = make_jpeg(3)

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int
    ) -> None:
        if conn == 1:
            writer.write(frame_header(0x01000000 + len(jpeg)) + jpeg)
            await writer.drain()
            await server.hold(reader)
        await server.serve_frames(reader, writer, conn)

    server.script = script
    client = make_client()
    async with client.viewing():
        frame = await client.next_frame(0, TIMEOUT)
    assert frame is not None
    assert server.connections == 2
    assert frame.sequence == 1
    backoff = client._backoff
    assert isinstance(backoff, RecordingBackoff)
    assert len(backoff.delays) == 1


async def test_bad_frames_are_dropped(
    server: CameraServer,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = make_jpeg(9)

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _conn: int
    ) -> None:
        await server.send_frame(writer, b"\x00\x00" + good[2:])  # bad SOI
        await server.send_frame(writer, good[:-2] + b"\x00\x00")  # bad EOI
        await server.send_frame(writer, b"")
        await server.send_frame(writer, good)
        await server.hold(reader)

    caplog.set_level(logging.DEBUG, logger=camera.__name__)
    server.script = script
    client = make_client()
    assert await client.async_still() == good
    assert client.frame is not None
    assert client.frame.sequence == 1
    assert caplog.text.count("not a JPEG") == 3
    assert server.connections == 1


# ------------------------------------------------------- failures, retries


async def test_wrong_access_code(
    server: CameraServer,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    client = make_client(access_code="87654321", clock=clock, auth_retry=300.0)
    assert await client.async_still() is None
    assert client.auth_failed
    assert client.last_error == "auth"
    assert server.auth_packets == [expected_auth("87654321")]
    assert "access code is probably wrong" in caplog.text

    # No retry loop: neither stills nor viewers reconnect for a while.
    clock.now += 120
    assert await client.async_still() is None
    async with client.viewing():
        assert await client.next_frame(0, 0.5) is None
    await asyncio.sleep(0.1)
    assert server.connections == 1

    # Later, with the code fixed on the printer side, it works again.
    server.access_code = "87654321"
    clock.now += 300
    assert await client.async_still() is not None
    assert not client.auth_failed
    assert server.connections == 2


async def test_auth_failure_while_viewing_wakes_viewer(
    server: CameraServer, make_client: ClientFactory
) -> None:
    client = make_client(access_code="00000000")
    async with client.viewing():
        assert await client.next_frame(0, TIMEOUT) is None
    assert client.auth_failed
    assert server.connections == 1


async def test_reconnects_with_backoff(
    server: CameraServer, make_client: ClientFactory
) -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int
    ) -> None:
        if conn <= 3:
            writer.write(frame_header(100)[:5])  # then close mid-header
            await writer.drain()
            return
        await server.serve_frames(reader, writer, conn)

    server.script = script
    client = make_client()
    async with client.viewing():
        frame = await client.next_frame(0, TIMEOUT)
    assert frame is not None
    assert server.connections == 4
    backoff = client._backoff
    assert isinstance(backoff, RecordingBackoff)
    assert backoff.delays == [0.01, 0.01, 0.01]
    assert backoff.resets >= 1
    assert not client.auth_failed


async def test_backoff_is_capped_exponential_with_jitter() -> None:
    backoff = Backoff(1.0, 8.0, rand=lambda: 1.0)
    assert [backoff.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    backoff.reset()
    assert backoff.next() == 1.0


async def test_connection_refused_retries(
    make_client: ClientFactory, client_context: ssl.SSLContext
) -> None:
    client = make_client(port=free_port())
    async with client.viewing():
        await until(lambda: len(client._backoff.delays) >= 3)  # type: ignore[attr-defined]
        assert client.last_error is not None
        assert "Error" in client.last_error
    assert client._task is None


async def test_frame_timeout_reconnects(
    server: CameraServer, make_client: ClientFactory
) -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int
    ) -> None:
        if conn == 1:
            await server.hold(reader)  # nothing after auth
        await server.serve_frames(reader, writer, conn)

    server.script = script
    client = make_client(frame_timeout=0.3)
    async with client.viewing():
        frame = await client.next_frame(0, TIMEOUT)
    assert frame is not None
    assert server.connections == 2
    assert not client.auth_failed


async def test_context_factory_failure_retries(
    server: CameraServer, make_client: ClientFactory
) -> None:
    async def broken() -> ssl.SSLContext:
        raise RuntimeError("unknown_ca")

    client = make_client(context_factory=broken)
    async with client.viewing():
        await until(lambda: client.last_error is not None)
    assert client.last_error is not None
    assert "no TLS context" in client.last_error
    assert server.connections == 0


async def test_wrong_serial_is_refused_before_auth(
    server: CameraServer, make_client: ClientFactory
) -> None:
    client = make_client(serial="01P00A999999999")
    assert await client.async_still(within=1.0) is None
    assert client.last_error is not None
    assert "SSLCertVerificationError" in client.last_error
    assert server.auth_packets == []
    assert server.sni_seen[0] == "01P00A999999999"


async def test_stop_wakes_waiters_and_ends_tasks(
    server: CameraServer, make_client: ClientFactory
) -> None:
    client = make_client()

    async def watch() -> list[int]:
        seen: list[int] = []
        async with client.viewing():
            sequence = 0
            while frame := await client.next_frame(sequence, TIMEOUT):
                sequence = frame.sequence
                seen.append(sequence)
        return seen

    viewer = asyncio.create_task(watch())
    await until(lambda: client.frame is not None)
    await client.stop()
    seen = await asyncio.wait_for(viewer, TIMEOUT)
    assert seen
    assert client._task is None
    cached = client.frame
    assert cached is not None
    # After stop nothing connects again.
    connections = server.connections
    assert await client.async_still() == cached.data
    async with client.viewing():
        assert await client.next_frame(cached.sequence, 0.2) is None
    assert server.connections == connections
    await until(lambda: server.active == 0)


async def test_errors_are_typed() -> None:
    assert issubclass(CameraAuthError, CameraError)
    assert issubclass(CameraProtocolError, CameraError)
