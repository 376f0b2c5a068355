"""Loopback relay that carries a camera stream into verified TLS.

Home Assistant's stream worker (FFmpeg) and go2rtc play RTSPS without checking
the printer's certificate, and the RTSP URL carries the LAN access code, which
gives full control of the printer. Handing them the printer's own RTSPS URL would
send that code to anyone who answers at the printer's address.

``RtspRelay`` listens on 127.0.0.1 (a random port). For every local
connection it first opens TLS to ``<printer>:322`` with the printer's pinned
context (SNI and hostname check = serial, the same context the LAN MQTT
session uses), and only once that handshake has verified the printer does it
read a single byte from the local side. From then on it copies bytes both
ways, with bounded buffers and back-pressure (``drain``); when either side
ends, both are closed. A printer that fails verification never gets a byte:
the local connection is closed, ``on_tls_failure`` is told why, and later
local connections are refused without dialling until a back-off has passed
(60 s, doubling up to an hour, as the hub re-probes an untrusted printer);
then the next local connection tries the printer again, with full
verification, so a printer whose trust was recovered plays again without a
reload.

The relay does not look at the bytes and never sees the access code as such:
the client authenticates to the printer itself, inside the verified TLS. That
keeps the printer's own RTSP authentication as the gate, so the loopback port
is no open door for other local processes, and the relay needs no RTSP parser.
The credential crosses only the loopback interface in clear text.

Nothing here imports Home Assistant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Final

from .hub import TrustError
from .streams import CLOSE_TIMEOUT, close_stream
from .tls import classify_tls_error

_LOGGER = logging.getLogger(__name__)

LOOPBACK: Final = "127.0.0.1"
# Read size and the buffer bound per direction: a StreamReader pauses its
# socket above twice its limit, a writer's drain waits above the high mark.
CHUNK_BYTES: Final = 64 * 1024
BUFFER_BYTES: Final = 256 * 1024
MAX_CONNECTIONS: Final = 8
CONNECT_TIMEOUT: Final = 10.0
# After a verification failure: refuse without dialling for this long,
# doubling per failure up to the maximum; reset by a verified connection.
REFUSE_MIN: Final = 60.0
REFUSE_MAX: Final = 3600.0

type SslContextFactory = Callable[[], Awaitable[ssl.SSLContext]]
type TlsFailureCallback = Callable[[str], None]


class RtspRelay:
    """A loopback listener piping each connection into verified TLS."""

    def __init__(
        self,
        host: str,
        port: int,
        serial: str,
        context_factory: SslContextFactory,
        *,
        on_tls_failure: TlsFailureCallback | None = None,
        on_verified: Callable[[], None] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        refuse_for: tuple[float, float] = (REFUSE_MIN, REFUSE_MAX),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare the relay; nothing listens until ``start``."""
        self.host = host
        self.remote_port = port
        self.serial = serial
        self._context_factory = context_factory
        self._on_tls_failure = on_tls_failure
        self._on_verified = on_verified
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._start_lock = asyncio.Lock()
        self._handlers: set[asyncio.Task[object]] = set()
        self._port = 0
        self._refuse_min, self._refuse_max = refuse_for
        self._refuse_delay = 0.0
        self._refused_until = 0.0
        self._clock = clock
        self.tls_failure: str | None = None
        self.connections = 0
        self.forwarded = 0

    def __repr__(self) -> str:
        """Name the printer and the ports; there is no secret to hide."""
        return (
            f"RtspRelay(serial={self.serial!r}, remote={self.host}:"
            f"{self.remote_port}, local_port={self.port})"
        )

    @property
    def port(self) -> int | None:
        """The loopback port while listening, else None."""
        return self._port if self._server is not None else None

    @property
    def refusing(self) -> bool:
        """Whether the printer failed verification and the back-off runs."""
        return self.tls_failure is not None and self._clock() < self._refused_until

    @property
    def active(self) -> int:
        """How many local connections are open right now."""
        return len(self._handlers)

    async def start(self) -> int:
        """Listen (once) and return the loopback port."""
        async with self._start_lock:
            if self._server is None:
                server = await asyncio.start_server(
                    self._accept, LOOPBACK, 0, limit=BUFFER_BYTES
                )
                self._port = int(server.sockets[0].getsockname()[1])
                self._server = server
                _LOGGER.debug("%s: camera relay on port %d", self.serial, self._port)
            return self._port

    async def stop(self) -> None:
        """Stop listening and end every relayed connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await server.wait_closed()

    # ----------------------------------------------------------- internals

    async def _accept(
        self, local_reader: asyncio.StreamReader, local_writer: asyncio.StreamWriter
    ) -> None:
        """Serve one local connection; never raises into asyncio's server."""
        if (
            self._server is None
            or self.refusing
            or len(self._handlers) >= self._max_connections
        ):
            _LOGGER.debug("%s: camera relay refused a connection", self.serial)
            await close_stream(local_writer)
            return
        # asyncio runs every client_connected_cb coroutine in its own task.
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self.connections += 1
        try:
            remote = await self._open_remote()
            if remote is None:
                return
            self.forwarded += 1
            await _pipe_both(local_reader, local_writer, *remote)
        except Exception:
            _LOGGER.exception("%s: camera relay failed", self.serial)
        finally:
            if task is not None:
                self._handlers.discard(task)
            await close_stream(local_writer)

    async def _open_remote(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Verified TLS to the printer, or None (and the reason reported)."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                context = await self._context_factory()
                reader, writer = await asyncio.open_connection(
                    self.host,
                    self.remote_port,
                    ssl=context,
                    server_hostname=self.serial,
                    ssl_handshake_timeout=self._connect_timeout,
                    limit=BUFFER_BYTES,
                )
        except TrustError as err:
            self._tls_failed(err.kind)
            return None
        except ssl.SSLCertVerificationError as err:
            self._tls_failed(classify_tls_error(err))
            return None
        except (OSError, TimeoutError) as err:
            # Includes other TLS errors: the port is closed while LAN live
            # view is off (H2), or the printer is away. The client retries.
            _LOGGER.debug(
                "%s: camera relay cannot reach the printer: %r", self.serial, err
            )
            return None
        self.tls_failure = None
        self._refuse_delay = 0.0
        if self._on_verified is not None:
            self._on_verified()
        return reader, writer

    def _tls_failed(self, kind: str) -> None:
        if self.tls_failure is None:
            _LOGGER.warning(
                "%s: refusing the camera's TLS certificate (%s); no live view",
                self.serial,
                kind,
            )
        self.tls_failure = kind
        self._refuse_delay = min(
            max(self._refuse_delay * 2, self._refuse_min), self._refuse_max
        )
        self._refused_until = self._clock() + self._refuse_delay
        if self._on_tls_failure is not None:
            self._on_tls_failure(kind)


async def _pipe_both(
    local_reader: asyncio.StreamReader,
    local_writer: asyncio.StreamWriter,
    remote_reader: asyncio.StreamReader,
    remote_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until one side ends, then close both."""
    for writer in (local_writer, remote_writer):
        writer.transport.set_write_buffer_limits(high=BUFFER_BYTES)
    upstream = asyncio.ensure_future(_copy(local_reader, remote_writer))
    downstream = asyncio.ensure_future(_copy(remote_reader, local_writer))
    try:
        await asyncio.wait((upstream, downstream), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (upstream, downstream):
            task.cancel()
        await asyncio.wait((upstream, downstream))
        await close_stream(remote_writer)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Forward chunks, waiting for the far side to take each one."""
    with contextlib.suppress(OSError):
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
