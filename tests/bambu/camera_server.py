"""A printer's port-6000 JPEG camera, served over real TLS on 127.0.0.1.

It checks the 80-byte auth packet byte for byte (built here by hand, not with
the code under test), records the SNI of every ClientHello, and then runs a
``script`` per connection: by default a JPEG frame every ``interval`` seconds.
A wrong access code is answered the way printers do: the server closes.
"""

from __future__ import annotations

import asyncio
import io
import ssl
import struct
from collections.abc import Awaitable, Callable

from PIL import Image

from tools.client_server import ClientServer

MAX_CLIENTS = 64

type Script = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]
]


def make_jpeg(index: int = 0, size: tuple[int, int] = (16, 16)) -> bytes:
    """A small valid JPEG whose colour depends on ``index``."""
    colour = ((index * 53) % 256, (index * 97) % 256, (index * 31) % 256)
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def expected_auth(access_code: str) -> bytes:
    """PROTOCOL.md 4.3, spelled out byte by byte."""
    return (
        bytes([0x40, 0, 0, 0])
        + bytes([0x00, 0x30, 0, 0])
        + bytes(8)
        + b"bblp"
        + bytes(28)
        + access_code.encode()
        + bytes(32 - len(access_code))
    )


def frame_header(size: int) -> bytes:
    """16-byte frame header: size, itrack 0, flags 1, reserved 0."""
    return struct.pack("<IIII", size, 0, 1, 0)


class CameraServer(ClientServer):
    """TLS camera on 127.0.0.1 with a random port."""

    def __init__(
        self,
        context: ssl.SSLContext,
        access_code: str,
        *,
        interval: float = 0.05,
    ) -> None:
        super().__init__(host="127.0.0.1", port=0, max_clients=MAX_CLIENTS)
        self.context = context
        self.access_code = access_code
        self.interval = interval
        self.script: Script = self.serve_frames
        self.sni_seen: list[str | None] = []
        self.auth_packets: list[bytes] = []
        self.connections = 0
        self.active = 0
        self.frames_sent = 0
        self.connected = asyncio.Event()
        context.sni_callback = self._sni

    def _sni(
        self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        self.sni_seen.append(name)

    async def start(self) -> None:
        await self._listen(ssl=self.context)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        self.active += 1
        self.connected.set()
        try:
            packet = await reader.readexactly(80)
            self.auth_packets.append(packet)
            if packet == expected_auth(self.access_code):
                await self.script(reader, writer, self.connections)
        finally:
            self.active -= 1

    async def send_frame(self, writer: asyncio.StreamWriter, jpeg: bytes) -> None:
        writer.write(frame_header(len(jpeg)) + jpeg)
        await writer.drain()
        self.frames_sent += 1

    @staticmethod
    async def hold(reader: asyncio.StreamReader) -> None:
        """Send nothing more; return once the client has gone."""
        while await reader.read(4096):
            pass

    async def serve_frames(
        self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _conn: int
    ) -> None:
        """A fresh JPEG every ``interval`` seconds until the client leaves."""
        while True:
            await self.send_frame(writer, make_jpeg(self.frames_sent + 1))
            await asyncio.sleep(self.interval)
