"""LAN camera of Bambu Lab printers: the RTSP relay URL and the JPEG stream.

X1, P2S, H2 and X2D printers stream H.264 over RTSPS (port 322). Home
Assistant's stream component and go2rtc do not verify the printer, so they
get ``relay_url``: a loopback relay (``relay.RtspRelay``) that carries the
stream into TLS verified against the pinned CAs. P1 and A1
printers instead send JPEG frames over TLS (port 6000, PROTOCOL.md 4.3):
the client sends an 80-byte auth packet, then reads frames of a 16-byte
little-endian header (payload size, itrack, flags, reserved) followed by
exactly ``size`` bytes of JPEG.

``JpegStreamClient`` keeps that connection open only while someone views the
stream (``async with client.viewing()``); outside viewing ``async_still``
fetches one fresh frame at most once a minute. TLS uses the same pinned
context as the printer's MQTT session: SNI and hostname check = serial.

Nothing here imports Home Assistant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from .hub import split_host_port
from .mqtt import Backoff
from .relay import LOOPBACK
from .streams import close_stream

_LOGGER = logging.getLogger(__name__)

RTSPS_PATH: Final = "/streaming/live/1"
USER: Final = "bblp"
RTSP_DISABLED: Final = "disable"

AUTH_PAYLOAD_SIZE: Final = 0x40
AUTH_TYPE: Final = 0x3000
AUTH_FIELD_BYTES: Final = 32
HEADER: Final = struct.Struct("<IIII")
MAX_FRAME_BYTES: Final = 4 * 1024 * 1024
JPEG_SOI: Final = b"\xff\xd8"
JPEG_EOI: Final = b"\xff\xd9"

STILL_INTERVAL: Final = 60.0
STILL_TIMEOUT: Final = 10.0
AUTH_RETRY: Final = 300.0
CONNECT_TIMEOUT: Final = 10.0
FRAME_TIMEOUT: Final = 30.0
BACKOFF_MIN: Final = 1.0
BACKOFF_MAX: Final = 60.0

type SslContextFactory = Callable[[], Awaitable[ssl.SSLContext]]


class CameraError(Exception):
    """The camera connection failed."""


class CameraAuthError(CameraError):
    """The printer closed the stream right after auth: wrong access code."""


class CameraProtocolError(CameraError):
    """The printer sent something that is not a frame stream."""


def lan_address(host: str) -> str:
    """The printer's address from the host option ("ip" or "ip:mqtt_port")."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return split_host_port(host)[0]


def liveview_disabled(reported_url: str | None) -> bool:
    """Whether the printer reports LAN live view off (``rtsp_url: disable``)."""
    return reported_url is not None and reported_url.strip().lower() == RTSP_DISABLED


def relay_url(port: int, access_code: str) -> str:
    """The plain RTSP URL of the loopback relay (``relay.RtspRelay``).

    The printer's own address is never in it: the relay dials the configured
    LAN host, never the address in the printer's report, which is sometimes
    wrong. The access code stays in the URL because the printer checks it
    (inside the relay's verified TLS); it crosses only the loopback interface.
    """
    code = quote(access_code, safe="")
    return f"rtsp://{USER}:{code}@{LOOPBACK}:{port}{RTSPS_PATH}"


def _field(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > AUTH_FIELD_BYTES:
        raise ValueError("camera credentials are limited to 32 bytes")
    return raw.ljust(AUTH_FIELD_BYTES, b"\0")


def auth_packet(access_code: str) -> bytes:
    """The 80-byte auth packet of the port-6000 JPEG stream."""
    return (
        HEADER.pack(AUTH_PAYLOAD_SIZE, AUTH_TYPE, 0, 0)
        + _field(USER)
        + _field(access_code)
    )


def is_jpeg(data: bytes) -> bool:
    """Whether a payload looks like one whole JPEG image."""
    return data.startswith(JPEG_SOI) and data.endswith(JPEG_EOI)


@dataclass(frozen=True, slots=True)
class Frame:
    """One JPEG frame, when it arrived (monotonic) and its running number."""

    data: bytes
    timestamp: float
    sequence: int


class JpegStreamClient:
    """Port-6000 JPEG stream of one printer, connected only while needed."""

    def __init__(
        self,
        host: str,
        serial: str,
        access_code: str,
        context_factory: SslContextFactory,
        *,
        port: int,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        still_interval: float = STILL_INTERVAL,
        auth_retry: float = AUTH_RETRY,
        connect_timeout: float = CONNECT_TIMEOUT,
        frame_timeout: float = FRAME_TIMEOUT,
    ) -> None:
        """Prepare the client; nothing connects until a frame is wanted."""
        self.host = lan_address(host)
        self.port = port
        self.serial = serial
        self._auth = auth_packet(access_code)
        self._context_factory = context_factory
        self._clock = clock
        self._backoff = backoff or Backoff(BACKOFF_MIN, BACKOFF_MAX)
        self._still_interval = still_interval
        self._auth_retry = auth_retry
        self._connect_timeout = connect_timeout
        self._frame_timeout = frame_timeout
        self._frame: Frame | None = None
        self._sequence = 0
        self._changed = asyncio.Event()
        self._viewers = 0
        self._still_waiters = 0
        self._last_still: float | None = None
        self._auth_failed_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.connected = False
        self.connections = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------- public

    @property
    def frame(self) -> Frame | None:
        """The newest frame, if any arrived yet."""
        return self._frame

    @property
    def auth_failed(self) -> bool:
        """Whether the printer refused the access code on the last attempt."""
        return self._auth_failed_at is not None

    @property
    def viewers(self) -> int:
        """How many viewers keep the stream connected."""
        return self._viewers

    @contextlib.asynccontextmanager
    async def viewing(self) -> AsyncIterator[None]:
        """Keep the stream connected while the block runs (reference counted)."""
        self._viewers += 1
        self._ensure_running()
        try:
            yield
        finally:
            self._viewers -= 1
            await self._release()

    async def next_frame(
        self, after: int = 0, within: float | None = None
    ) -> Frame | None:
        """The first frame newer than sequence ``after``.

        None after ``within`` seconds, once the access code was refused, or
        after ``stop``. It does not connect by itself: use ``viewing`` or
        ``async_still``.
        """
        try:
            async with asyncio.timeout(within):
                while True:
                    frame = self._frame
                    if frame is not None and frame.sequence > after:
                        return frame
                    if self._stopped or self._auth_blocked():
                        return None
                    await self._changed.wait()
        except TimeoutError:
            return None

    async def async_still(self, within: float = STILL_TIMEOUT) -> bytes | None:
        """A recent JPEG.

        While viewing: the newest frame. Otherwise a fresh frame is fetched
        (connect, one frame, disconnect) at most once per ``still_interval``;
        in between, and when fetching fails, the cached frame is returned.
        """
        cached = self._frame
        if self._viewers:
            if cached is None:
                cached = await self.next_frame(0, within)
            return None if cached is None else cached.data
        if not self._still_waiters:
            now = self._clock()
            if (
                self._stopped
                or self._auth_blocked()
                or (
                    self._last_still is not None
                    and now - self._last_still < self._still_interval
                )
            ):
                return None if cached is None else cached.data
            self._last_still = now
        self._still_waiters += 1
        self._ensure_running()
        try:
            frame = await self.next_frame(
                0 if cached is None else cached.sequence, within
            )
        finally:
            self._still_waiters -= 1
            await self._release()
        if frame is None:
            frame = self._frame
        return None if frame is None else frame.data

    async def stop(self) -> None:
        """Disconnect for good; wakes every waiter, leaves no task behind."""
        self._stopped = True
        self._notify()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait() does not swallow a cancellation of the caller itself.
            await asyncio.wait([task])

    # ----------------------------------------------------------- internals

    def _auth_blocked(self) -> bool:
        return (
            self._auth_failed_at is not None
            and self._clock() - self._auth_failed_at < self._auth_retry
        )

    def _wanted(self) -> bool:
        return (
            not self._stopped
            and (self._viewers > 0 or self._still_waiters > 0)
            and not self._auth_blocked()
        )

    def _ensure_running(self) -> None:
        if self._wanted() and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"bambu camera {self.serial}"
            )

    async def _release(self) -> None:
        """Disconnect once nobody wants frames any more."""
        task = self._task
        if task is not None and not self._wanted():
            self._task = None
            task.cancel()
            await asyncio.wait([task])
        # A viewer may have arrived while the old connection closed.
        self._ensure_running()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _run(self) -> None:
        """Connect, read frames, reconnect with back-off while wanted."""
        while self._wanted():
            try:
                await self._connection()
            except CameraAuthError:
                if not self.auth_failed:
                    _LOGGER.warning(
                        "%s: the camera closed the stream after auth; "
                        "the LAN access code is probably wrong",
                        self.serial,
                    )
                self._auth_failed_at = self._clock()
                self.last_error = "auth"
                self._notify()
                return
            except (CameraError, OSError, TimeoutError, EOFError) as err:
                self.last_error = f"{type(err).__name__}: {err}"
                _LOGGER.debug("%s: camera stream failed: %r", self.serial, err)
            if not self._wanted():
                return
            await asyncio.sleep(self._backoff.next())

    async def _connection(self) -> None:
        """One connection: auth, then frames until unwanted or broken."""
        try:
            context = await self._context_factory()
        except Exception as err:
            raise CameraError(f"no TLS context: {err}") from err
        async with asyncio.timeout(self._connect_timeout):
            reader, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=context,
                server_hostname=self.serial,
                ssl_handshake_timeout=self._connect_timeout,
            )
        try:
            self.connected = True
            self.connections += 1
            writer.write(self._auth)
            await writer.drain()
            await self._read_frames(reader)
        finally:
            self.connected = False
            await close_stream(writer)

    async def _read_frames(self, reader: asyncio.StreamReader) -> None:
        received = False
        while True:
            try:
                async with asyncio.timeout(self._frame_timeout):
                    header = await reader.readexactly(HEADER.size)
            except (asyncio.IncompleteReadError, ConnectionResetError) as err:
                partial = getattr(err, "partial", b"")
                if not received and not partial:
                    raise CameraAuthError("closed after auth") from err
                raise
            received = True
            size, _itrack, _flags, _reserved = HEADER.unpack(header)
            if size > MAX_FRAME_BYTES:
                raise CameraProtocolError(f"frame of {size} bytes")
            async with asyncio.timeout(self._frame_timeout):
                payload = await reader.readexactly(size)
            if not is_jpeg(payload):
                _LOGGER.debug(
                    "%s: dropped a camera frame that is not a JPEG (%d bytes)",
                    self.serial,
                    size,
                )
                continue
            self._publish(payload)
            if not self._wanted():
                return

    def _publish(self, data: bytes) -> None:
        self._sequence += 1
        self._frame = Frame(data, self._clock(), self._sequence)
        self._backoff.reset()
        self._auth_failed_at = None
        self.last_error = None
        self._notify()
