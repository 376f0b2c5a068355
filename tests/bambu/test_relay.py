"""Tests for the verifying camera relay (custom_components/.../bambu/relay.py).

Everything runs over real sockets on 127.0.0.1: a TLS RTSP camera
(tests/bambu/rtsp_server.py) or a TLS echo server with a Bambu-shaped test
PKI (CA without key usage, leaf CN = serial, no SAN) whose CA is the only pin
of the relay's TLS context. Clients are a small RTSP client written here and, when
the ``ffmpeg`` binary is installed, FFmpeg itself (what Home Assistant's
stream worker and go2rtc run).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from custom_components.bambu_cloud.bambu import tls
from custom_components.bambu_cloud.bambu.camera import relay_url
from custom_components.bambu_cloud.bambu.hub import TrustError
from custom_components.bambu_cloud.bambu.relay import RtspRelay
from tools.test_pki import PrinterPKI, TestPKI, server_context
from tools.virtual_printer.mosquitto import free_port

from .rtsp_server import (
    PATH,
    RtspClient,
    RtspServer,
    digest,
    h264_track,
    opaque_track,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

SERIAL = "01S00C000000001"
CODE = "31415926"
TIMEOUT = 10.0
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")


async def until(condition: Callable[[], bool], within: float = TIMEOUT) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls other tasks' state
            await asyncio.sleep(0.01)


@pytest.fixture
def printer_pki(tmp_path: Path) -> PrinterPKI:
    return PrinterPKI.create(tmp_path / "printer", serial=SERIAL)


@pytest.fixture
def client_context(printer_pki: PrinterPKI) -> ssl.SSLContext:
    return tls.build_printer_context([printer_pki.root.der], pins=printer_pki.pins)


@dataclass
class Events:
    """What the relay reported through its callbacks."""

    failures: list[str] = field(default_factory=list)
    verified: int = 0


type RelayFactory = Callable[..., RtspRelay]


@pytest.fixture
async def make_relay(
    client_context: ssl.SSLContext,
) -> AsyncIterator[tuple[RelayFactory, Events]]:
    relays: list[RtspRelay] = []
    events = Events()

    async def context() -> ssl.SSLContext:
        return client_context

    def verified() -> None:
        events.verified += 1

    def make(port: int, **kwargs: Any) -> RtspRelay:
        options: dict[str, Any] = {
            "context_factory": context,
            "on_tls_failure": events.failures.append,
            "on_verified": verified,
            "connect_timeout": 5.0,
        }
        options.update(kwargs)
        relay = RtspRelay("127.0.0.1", port, SERIAL, **options)
        relays.append(relay)
        return relay

    yield make, events
    for relay in relays:
        await relay.stop()


@pytest.fixture
async def camera(printer_pki: PrinterPKI) -> AsyncIterator[RtspServer]:
    server = RtspServer(printer_pki.server_context(), CODE, track=opaque_track())
    await server.start()
    yield server
    await server.stop()


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything until the peer closes (a reset counts as closed)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(TIMEOUT):
            while chunk := await reader.read(65536):
                data += chunk
    return data


# ------------------------------------------------------------------ RTSP


async def test_rtsp_session_through_relay(
    camera: RtspServer, make_relay: tuple[RelayFactory, Events]
) -> None:
    """OPTIONS..PLAY and interleaved RTP, both ways, through verified TLS."""
    make, events = make_relay
    relay = make(camera.port)
    port = await relay.start()
    assert relay.port == port
    url = f"rtsp://127.0.0.1:{port}{PATH}"
    client = await RtspClient.connect(port)

    status, headers, _ = await client.request("OPTIONS", url)
    assert status == 200
    assert "DESCRIBE" in headers["public"]
    status, headers, _ = await client.request("DESCRIBE", url)
    assert status == 401
    challenge = headers["www-authenticate"]
    wrong = {"Authorization": digest("DESCRIBE", url, challenge, "00000000")}
    assert (await client.request("DESCRIBE", url, wrong))[0] == 401

    auth = {"Authorization": digest("DESCRIBE", url, challenge, CODE)}
    status, headers, sdp = await client.request("DESCRIBE", url, auth)
    assert status == 200
    assert b"m=video 0 RTP/AVP 96" in sdp
    track = headers["content-base"] + "track1"
    setup = {
        "Authorization": digest("SETUP", track, challenge, CODE),
        "Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
    }
    status, headers, _ = await client.request("SETUP", track, setup)
    assert status == 200
    assert "interleaved=0-1" in headers["transport"]
    play = {
        "Authorization": digest("PLAY", url, challenge, CODE),
        "Session": "0BB1CA3E",
    }
    assert (await client.request("PLAY", url, play))[0] == 200

    for _ in range(5):
        channel, packet = await client.interleaved()
        assert channel == 0
        assert packet[0] >> 6 == 2  # RTP version 2
    # An interleaved RTCP receiver report goes the other way.
    before = camera.received
    client.writer.write(b"$\x01\x00\x08" + bytes([0x81, 201, 0, 1]) + bytes(4))
    await client.writer.drain()
    await until(lambda: camera.received == before + 12)

    assert camera.sni_seen == [SERIAL]
    assert [r.method for r in camera.requests if r.authorized] == [
        "DESCRIBE",
        "SETUP",
        "PLAY",
    ]
    assert (relay.connections, relay.forwarded, relay.active) == (1, 1, 1)
    assert events == Events(verified=1)

    await client.close()
    await until(lambda: relay.active == 0 and camera.active == 0)


@needs_ffmpeg
@pytest.mark.parametrize("auth", ["basic", "digest"])
async def test_ffmpeg_plays_through_relay(
    printer_pki: PrinterPKI,
    make_relay: tuple[RelayFactory, Events],
    auth: str,
) -> None:
    """FFmpeg, with rtsp_transport=tcp, decodes a frame through the relay."""
    assert FFMPEG is not None
    track = await asyncio.to_thread(h264_track, FFMPEG)
    camera = RtspServer(printer_pki.server_context(), CODE, track=track, auth=auth)  # type: ignore[arg-type]
    await camera.start()
    try:
        make, events = make_relay
        relay = make(camera.port)
        url = relay_url(await relay.start(), CODE)
        process = await asyncio.create_subprocess_exec(
            FFMPEG,
            *("-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp"),
            *("-i", url, "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        assert stdout.startswith(b"\x89PNG\r\n\x1a\n")
        assert camera.unauthorized >= 1  # challenged first, then authorized
        assert "PLAY" in [r.method for r in camera.requests if r.authorized]
        assert camera.rtp_sent > 0
        assert camera.sni_seen
        assert set(camera.sni_seen) == {SERIAL}
        assert events.failures == []
        await until(lambda: relay.active == 0)
    finally:
        await camera.stop()


# ---------------------------------------------------- refusing the printer


def _self_signed(pki: TestPKI) -> ssl.SSLContext:
    """A self-signed certificate with the right CN, pinned nowhere."""
    return server_context(pki.root(SERIAL))


def _other_serial(pki: TestPKI, printer: PrinterPKI) -> ssl.SSLContext:
    """Issued by the pinned CA, but for another printer."""
    return server_context(pki.server(printer.root, "01S00C000000002"))


def _expired(pki: TestPKI, printer: PrinterPKI) -> ssl.SSLContext:
    return server_context(pki.server(printer.root, SERIAL, expired=True))


@pytest.mark.parametrize(
    ("make_context", "kind"),
    [
        (lambda pki, _printer: _self_signed(pki), "unknown_ca"),
        (_other_serial, "serial_mismatch"),
        (_expired, "expired"),
    ],
)
async def test_unverified_printer_receives_nothing(
    tmp_path: Path,
    printer_pki: PrinterPKI,
    make_relay: tuple[RelayFactory, Events],
    make_context: Callable[[TestPKI, PrinterPKI], ssl.SSLContext],
    kind: str,
) -> None:
    """Zero application bytes reach a camera that fails verification."""
    impostor = RtspServer(
        make_context(TestPKI(tmp_path / "impostor"), printer_pki), CODE
    )
    await impostor.start()
    try:
        make, events = make_relay
        relay = make(impostor.port)
        port = await relay.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        basic = base64.b64encode(f"bblp:{CODE}".encode()).decode()
        writer.write(
            f"DESCRIBE rtsp://127.0.0.1:{port}{PATH} RTSP/1.0\r\nCSeq: 1\r\n"
            f"Authorization: Basic {basic}\r\n\r\n".encode()
        )
        with contextlib.suppress(ConnectionResetError):
            await writer.drain()
        assert await read_until_closed(reader) == b""
        writer.close()

        assert impostor.sni_seen == [SERIAL]  # it was dialled ...
        assert impostor.connections == 0  # ... but never got a session
        assert impostor.received == 0
        assert events.failures == [kind]
        assert events.verified == 0
        assert relay.tls_failure == kind
        assert relay.forwarded == 0

        # Later connections are turned away without dialling again.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await read_until_closed(reader) == b""
        writer.close()
        assert impostor.sni_seen == [SERIAL]

    finally:
        await impostor.stop()


async def test_trust_error_before_dialling(
    camera: RtspServer, make_relay: tuple[RelayFactory, Events]
) -> None:
    """No anchor for the printer: refused and reported, nothing dialled."""
    make, events = make_relay

    async def no_anchor() -> ssl.SSLContext:
        raise TrustError("unknown_ca")

    relay = make(camera.port, context_factory=no_anchor)
    reader, writer = await asyncio.open_connection("127.0.0.1", await relay.start())
    assert await read_until_closed(reader) == b""
    writer.close()
    assert events.failures == ["unknown_ca"]
    assert camera.sni_seen == []


async def test_refused_printer_is_tried_again_after_backoff(
    camera: RtspServer, make_relay: tuple[RelayFactory, Events]
) -> None:
    """A refusal is not for ever: after the back-off, trust is checked again.

    The first contexts trust nothing (an impostor answered the first probe);
    once the hub's re-probe recovered the anchors, the relay plays again
    without a reload, and a second refusal waits twice as long.
    """
    make, events = make_relay
    now = [1000.0]
    trusted = [False]

    async def context() -> ssl.SSLContext:
        if not trusted[0]:
            raise TrustError("unknown_ca")
        return await real()

    real = make(camera.port)._context_factory
    relay = make(
        camera.port,
        context_factory=context,
        refuse_for=(60.0, 100.0),
        clock=lambda: now[0],
    )
    port = await relay.start()

    async def attempt(request: bytes = b"") -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            data = await asyncio.wait_for(reader.read(12), 5)
        writer.close()
        return data

    assert await attempt() == b""
    assert relay.refusing
    assert events.failures == ["unknown_ca"]
    now[0] += 59
    assert await attempt() == b""
    assert events.failures == ["unknown_ca"]  # not dialled: still waiting
    now[0] += 2
    assert not relay.refusing
    assert await attempt() == b""  # tried again, still untrusted
    assert events.failures == ["unknown_ca", "unknown_ca"]
    now[0] += 99
    assert relay.refusing  # the second wait is longer (capped at 100 s)
    now[0] += 2
    trusted[0] = True
    assert await attempt(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n") == b"RTSP/1.0 200"
    assert relay.tls_failure is None
    assert not relay.refusing
    assert events.verified == 1


async def test_unreachable_printer_is_tried_again(
    make_relay: tuple[RelayFactory, Events], caplog: pytest.LogCaptureFixture
) -> None:
    """A closed camera port (live view off, printer away) is no TLS problem."""
    make, events = make_relay
    relay = make(free_port())
    port = await relay.start()
    caplog.set_level(logging.DEBUG)
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await read_until_closed(reader) == b""
        writer.close()
    await until(lambda: relay.active == 0)
    assert relay.connections == 2
    assert relay.forwarded == 0
    assert relay.tls_failure is None
    assert events == Events()
    assert "cannot reach the printer" in caplog.text


async def test_unexpected_error_is_contained(
    camera: RtspServer,
    make_relay: tuple[RelayFactory, Events],
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in one connection closes it, logs it, and the relay goes on."""
    make, events = make_relay
    calls = 0

    async def flaky() -> ssl.SSLContext:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return client_context

    relay = make(camera.port, context_factory=flaky)
    port = await relay.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await read_until_closed(reader) == b""
    writer.close()
    assert "camera relay failed" in caplog.text
    client = await RtspClient.connect(port)
    assert (await client.request("OPTIONS", f"rtsp://127.0.0.1:{port}{PATH}"))[0] == 200
    await client.close()
    assert events.failures == []


# ------------------------------------------------------------------ piping


@dataclass
class TlsPeer:
    """A TLS server on the pinned certificate, running ``script`` per client."""

    context: ssl.SSLContext
    script: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    port: int = 0
    active: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.active += 1
        try:
            await self.script(reader, writer)
        except OSError:
            pass
        finally:
            self.active -= 1
            writer.close()
            self.closed.set()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server.close_clients()
            await self._server.wait_closed()


@pytest.fixture
async def make_peer(
    printer_pki: PrinterPKI,
) -> AsyncIterator[Callable[..., Awaitable[TlsPeer]]]:
    peers: list[TlsPeer] = []

    async def make(
        script: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> TlsPeer:
        peer = TlsPeer(printer_pki.server_context(), script)
        await peer.start()
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        await peer.stop()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def test_large_transfer_both_ways(
    make_peer: Callable[..., Awaitable[TlsPeer]],
    make_relay: tuple[RelayFactory, Events],
) -> None:
    """Megabytes each way arrive intact and in order."""
    peer = await make_peer(_echo)
    make, _ = make_relay
    relay = make(peer.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", await relay.start())
    payload = os.urandom(4 * 1024 * 1024)

    async def send() -> None:
        for offset in range(0, len(payload), 100_000):
            writer.write(payload[offset : offset + 100_000])
            await writer.drain()

    sender = asyncio.create_task(send())
    async with asyncio.timeout(30):
        echoed = await reader.readexactly(len(payload))
    await sender
    assert echoed == payload
    writer.close()
    await until(lambda: peer.active == 0 and relay.active == 0)


async def test_backpressure_bounds_buffers(
    make_peer: Callable[..., Awaitable[TlsPeer]],
    make_relay: tuple[RelayFactory, Events],
) -> None:
    """A client that stops reading stalls the printer; the relay hoards nothing."""
    sent = 0
    stalled = asyncio.Event()

    async def flood(
        _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal sent
        chunk = bytes(65536)
        while True:
            writer.write(chunk)
            try:
                async with asyncio.timeout(1.0):
                    await writer.drain()
            except TimeoutError:
                stalled.set()
                await writer.drain()
            sent += len(chunk)

    peer = await make_peer(flood)
    make, _ = make_relay
    relay = make(peer.port)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", await relay.start(), limit=65536
    )
    async with asyncio.timeout(30):
        await stalled.wait()
    # Kernel socket buffers on two hops plus the relay's bounded buffers.
    assert sent < 64 * 1024 * 1024
    writer.close()
    await until(lambda: peer.active == 0 and relay.active == 0)
    del reader


async def test_printer_closing_closes_client(
    make_peer: Callable[..., Awaitable[TlsPeer]],
    make_relay: tuple[RelayFactory, Events],
) -> None:
    async def hello(
        _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(b"RTSP/1.0 503 Busy\r\n\r\n")
        await writer.drain()

    peer = await make_peer(hello)
    make, _ = make_relay
    relay = make(peer.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", await relay.start())
    assert await read_until_closed(reader) == b"RTSP/1.0 503 Busy\r\n\r\n"
    writer.close()
    await until(lambda: relay.active == 0)


async def test_client_closing_closes_printer_side(
    make_peer: Callable[..., Awaitable[TlsPeer]],
    make_relay: tuple[RelayFactory, Events],
) -> None:
    peer = await make_peer(_echo)
    make, _ = make_relay
    relay = make(peer.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", await relay.start())
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    writer.close()
    async with asyncio.timeout(TIMEOUT):
        await peer.closed.wait()
    await until(lambda: relay.active == 0)


# --------------------------------------------------------------- lifecycle


async def test_start_stop(
    make_peer: Callable[..., Awaitable[TlsPeer]],
    make_relay: tuple[RelayFactory, Events],
) -> None:
    """One port per start; stop ends live connections and the listener."""
    peer = await make_peer(_echo)
    make, _ = make_relay
    relay = make(peer.port)
    assert relay.port is None
    first, second = await asyncio.gather(relay.start(), relay.start())
    assert first == second == relay.port
    reader, writer = await asyncio.open_connection("127.0.0.1", first)
    writer.write(b"x")
    assert await reader.readexactly(1) == b"x"

    await relay.stop()
    assert await read_until_closed(reader) == b""
    writer.close()
    assert relay.port is None
    assert relay.active == 0
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", first)
    await relay.stop()  # idempotent

    again = await relay.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", again)
    writer.write(b"y")
    assert await reader.readexactly(1) == b"y"
    writer.close()


async def test_connection_limit(
    make_peer: Callable[..., Awaitable[TlsPeer]],
    make_relay: tuple[RelayFactory, Events],
) -> None:
    peer = await make_peer(_echo)
    make, _ = make_relay
    relay = make(peer.port, max_connections=1)
    port = await relay.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"1")
    assert await reader.readexactly(1) == b"1"
    extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
    assert await read_until_closed(extra_reader) == b""
    extra_writer.close()
    assert relay.connections == 1
    writer.close()


def test_repr_names_no_secret() -> None:
    async def context() -> ssl.SSLContext:  # pragma: no cover - never called
        raise AssertionError

    relay = RtspRelay("192.0.2.5", 322, SERIAL, context)
    assert repr(relay) == (
        f"RtspRelay(serial='{SERIAL}', remote=192.0.2.5:322, local_port=None)"
    )
