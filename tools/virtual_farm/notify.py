"""The farm's ``NOTIFY`` announcements (PROTOCOL.md section 6), on loopback only.

Real printers announce themselves every few seconds with an SSDP-like
datagram, broadcast to UDP 2021 and multicast to 239.255.255.250:1990. The
farm sends the same datagram, but only ever to ``127.0.0.1:<port>``: the
destination address is fixed here, not a parameter, so no configuration can
make the farm broadcast or multicast onto a real network. Home Assistant's
listener on the same host (port 2021 by default, or the port a test
configures) hears it like a printer's.

The ``Location`` header is the bare address, as printers send it. The
farm's LAN brokers listen on other ports than 8883, so a printer found this
way is reached at the port the integration is configured with; the banner and
the demo set-up give the full ``127.0.0.1:<port>`` host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

_LOGGER = logging.getLogger(__name__)

LOOPBACK: Final = "127.0.0.1"
"""The only address the farm ever sends a datagram to."""
DEFAULT_PORT: Final = 2021
"""Where printers broadcast (and where Bambu Studio and the integration listen)."""
NOTIFY_TYPE: Final = "urn:bambulab-com:device:3dprinter:1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Announcement:
    """What one printer says about itself in its ``NOTIFY``."""

    serial: str
    model_id: str
    name: str
    version: str
    connect: str = "lan"
    """``lan`` (LAN-only mode) or ``cloud``."""
    bind: str = "free"
    """``free`` (bound to no account) or ``occupied``."""
    location: str = LOOPBACK
    signal_dbm: int = -45


def notify_datagram(announcement: Announcement) -> bytes:
    """The datagram, header by header as a printer sends it (CRLF, blank end)."""
    headers = (
        ("Host", "239.255.255.250:1990"),
        ("Server", "UPnP/1.0"),
        ("Location", announcement.location),
        ("NT", NOTIFY_TYPE),
        ("NTS", "ssdp:alive"),
        ("USN", announcement.serial),
        ("Cache-Control", "max-age=1800"),
        ("DevModel.bambu.com", announcement.model_id),
        ("DevName.bambu.com", announcement.name),
        ("DevSignal.bambu.com", str(announcement.signal_dbm)),
        ("DevConnect.bambu.com", announcement.connect),
        ("DevBind.bambu.com", announcement.bind),
        ("Devseclink.bambu.com", "secure"),
        ("DevInf.bambu.com", "wlan0"),
        ("DevVersion.bambu.com", announcement.version),
        ("DevCap.bambu.com", "1"),
    )
    lines = ["NOTIFY * HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class NotifySender:
    """Sends every printer's announcement to ``127.0.0.1:port`` every interval.

    ``announcements`` is called before each round, so printers added later
    (or renamed) are announced as they are now. Send errors (nobody listening
    gives ICMP "port unreachable" on loopback) are ignored: printers do not
    care whether anyone hears them.
    """

    def __init__(
        self,
        announcements: Callable[[], Sequence[Announcement]],
        *,
        port: int = DEFAULT_PORT,
        interval: float = 5.0,
    ) -> None:
        """Nothing is sent before :meth:`start`."""
        if not 0 < port < 65536:
            raise ValueError("port must be between 1 and 65535")
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.port = port
        self.interval = interval
        self.sent = 0
        """Datagrams sent so far (for the farm's tests)."""
        self._announcements = announcements
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the socket (connected to loopback) and start announcing."""
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(LOOPBACK, self.port)
        )
        self._task = asyncio.create_task(self._run(), name="farm-notify")

    async def stop(self) -> None:
        """Stop announcing and close the socket."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def announce(self) -> int:
        """Send one round now; returns how many datagrams went out."""
        if self._transport is None:
            return 0
        count = 0
        for announcement in self._announcements():
            try:
                self._transport.sendto(notify_datagram(announcement))
            except OSError as err:
                _LOGGER.debug("NOTIFY for %s not sent: %r", announcement.serial, err)
                continue
            count += 1
        self.sent += count
        return count

    async def _run(self) -> None:
        while True:
            self.announce()
            await asyncio.sleep(self.interval)
