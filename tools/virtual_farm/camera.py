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


class CameraServer:
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
        self.ssl_context = ssl_context
        self.access_code = access_code
        self.frame = frame
        self.host = host
        self.interval = interval
        self.max_clients = max_clients
        self.auth_timeout = auth_timeout
        self.write_timeout = write_timeout
        self.refused = 0
        """How many clients were closed for a bad authentication packet."""
        self.frames_sent = 0
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._cache: tuple[float, bytes] | None = None
        self._lock = asyncio.Lock()

    @property
    def port(self) -> int:
        """The listening port (the chosen one once started)."""
        return self._port

    async def start(self) -> None:
        """Listen for clients."""
        self._server = await asyncio.start_server(
            self._handle,
            self.host,
            self._port,
            ssl=self.ssl_context,
            ssl_handshake_timeout=self.auth_timeout,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every client; no task is left behind."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            server.abort_clients()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

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

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if len(self._tasks) > self.max_clients:
                return
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
        except (TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close politely (TLS close_notify, so the client reads EOF); abort if stuck."""
    if writer.transport.is_closing():
        writer.transport.abort()
        return
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()
