"""A P1/A1-style camera server: JPEG frames over TLS (PROTOCOL.md 4.3).

The client connects with TLS (the printer certificate, ``CN=<serial>``, issued
by the Bambu-shaped CA) and sends one 80-byte authentication packet::

    <IIII 0x40, 0x3000, 0, 0> + b"bblp" NUL-padded to 32 + access code to 32

A wrong packet or access code closes the connection, as printers do. Then
every ``interval`` seconds the server sends a 16-byte header
``<IIII size, 0, 1, 0>`` followed by ``size`` bytes of JPEG.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
import time
from collections.abc import Callable

from tools.client_server import ClientServer

_LOGGER = logging.getLogger(__name__)

AUTH_SIZE = 80
AUTH_HEADER = struct.pack("<IIII", 0x40, 0x3000, 0, 0)
FRAME_HEADER = struct.Struct("<IIII")


def auth_packet(access_code: str, username: str = "bblp") -> bytes:
    """The 80-byte packet a client sends first (also used by tests)."""
    return (
        AUTH_HEADER
        + username.encode("ascii").ljust(32, b"\0")
        + access_code.encode("ascii").ljust(32, b"\0")
    )


def frame_header(size: int) -> bytes:
    """The 16-byte header preceding a JPEG of ``size`` bytes."""
    return FRAME_HEADER.pack(size, 0, 1, 0)


class CameraServer(ClientServer):
    """Serves one printer's camera on 127.0.0.1 (``port`` 0 = ephemeral).

    ``frame`` draws a JPEG (blocking; it runs in the default executor and its
    result is shared by every client for ``interval`` seconds).
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        access_code: str,
        frame: Callable[[], bytes],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        interval: float = 1.0,
        max_clients: int = 4,
        auth_timeout: float = 5.0,
        write_timeout: float = 10.0,
    ) -> None:
        """Configure; nothing listens before :meth:`start`."""
        super().__init__(host=host, port=port, max_clients=max_clients)
        self.ssl_context = ssl_context
        self.access_code = access_code
        self.frame = frame
        self.interval = interval
        self.auth_timeout = auth_timeout
        self.write_timeout = write_timeout
        self.refused = 0
        """How many clients were closed for a bad authentication packet."""
        self.frames_sent = 0
        self._cache: tuple[float, bytes] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Listen for clients."""
        await self._listen(
            ssl=self.ssl_context, ssl_handshake_timeout=self.auth_timeout
        )

    def _check_auth(self, packet: bytes) -> bool:
        expected = auth_packet(self.access_code)
        return len(packet) == AUTH_SIZE and packet == expected

    async def _current_frame(self) -> bytes:
        async with self._lock:
            now = time.monotonic()
            if self._cache is None or now - self._cache[0] >= self.interval * 0.9:
                loop = asyncio.get_running_loop()
                jpeg = await loop.run_in_executor(None, self.frame)
                self._cache = (now, jpeg)
            return self._cache[1]

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Check the authentication packet, then stream frames."""
        async with asyncio.timeout(self.auth_timeout):
            packet = await reader.readexactly(AUTH_SIZE)
        if not self._check_auth(packet):
            self.refused += 1
            _LOGGER.debug("camera: wrong authentication packet, closing")
            return
        while True:
            jpeg = await self._current_frame()
            writer.write(frame_header(len(jpeg)) + jpeg)
            async with asyncio.timeout(self.write_timeout):
                await writer.drain()
            self.frames_sent += 1
            await asyncio.sleep(self.interval)
