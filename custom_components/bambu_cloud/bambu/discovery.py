"""Printers on the local network: their NOTIFY datagrams (PROTOCOL.md section 6).

Printers announce themselves every few seconds with an SSDP-like
``NOTIFY * HTTP/1.1`` datagram, broadcast to UDP port 2021 (where Bambu
Studio listens) and multicast to 239.255.255.250:1990. ``parse_notify`` turns
one datagram into a ``DiscoveredPrinter``; ``DiscoveryListener`` listens on
both ports with datagram endpoints on the event loop.

Nothing in a datagram is authenticated: UDP senders and payloads are equally
easy to forge. An announced address is therefore only ever used through the
printer's pinned TLS context with SNI and hostname check = serial, so a wrong
address costs a refused connection, never a credential.

Which address: the ``Location`` header, not the datagram's source. Both are
the printer's word (neither is more trustworthy), but a datagram forwarded
between networks by a broadcast or multicast relay (the usual fix when
printers sit on another VLAN) carries the relay's source address, while
``Location`` still names the printer. The source address is the fallback when
``Location`` is missing or unusable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Final

from .config import BambuConfig
from .models import valid_serial

_LOGGER = logging.getLogger(__name__)

MULTICAST_GROUP: Final = "239.255.255.250"
# A real NOTIFY is about 500 bytes; anything far larger is not a printer's.
MAX_DATAGRAM_BYTES: Final = 2048
_MAX_HEADERS: Final = 40
_START_LINE: Final = "NOTIFY * HTTP/1.1"
_NOTIFY_TYPE: Final = "urn:bambulab-com:device:3dprinter:1"
_ALIVE: Final = "ssdp:alive"
# What a value may be at most: far above any real one.
_MAX_NAME: Final = 64
_MAX_TOKEN: Final = 32
CONNECT_MODES: Final = frozenset({"lan", "cloud"})
BIND_STATES: Final = frozenset({"free", "occupied"})


@dataclass(frozen=True, slots=True)
class DiscoveredPrinter:
    """A printer heard on the local network (every field as it announced it).

    ``connect_mode`` is ``"lan"`` (LAN-only mode) or ``"cloud"``, ``bind``
    ``"free"`` (bound to no account) or ``"occupied"``; None when missing or
    unknown.
    """

    serial: str
    host: str
    model_id: str | None = None
    name: str | None = None
    connect_mode: str | None = None
    bind: str | None = None
    version: str | None = None


def usable_address(value: str) -> bool:
    """Whether a string is an IPv4 address a printer can be reached at.

    The unspecified, broadcast, multicast and reserved (class E) addresses
    are not a printer's; loopback is kept (virtual printers in tests).
    """
    try:
        address = ip_address(value)
    except ValueError:
        return False
    return isinstance(address, IPv4Address) and not (
        address.is_unspecified or address.is_multicast or address.is_reserved
    )


def _text(value: str | None, limit: int) -> str | None:
    """A printable, stripped value of at most ``limit`` characters, or None."""
    if value is None:
        return None
    cleaned = "".join(char for char in value if char.isprintable()).strip()
    return cleaned[:limit].strip() or None


def _token(value: str | None) -> str | None:
    """A short word (model id, firmware version): letters, digits, ``.-_``."""
    text = _text(value, _MAX_TOKEN + 1)
    if text is None or len(text) > _MAX_TOKEN:
        return None
    if not all(char.isascii() and (char.isalnum() or char in ".-_") for char in text):
        return None
    return text


def _choice(value: str | None, choices: frozenset[str]) -> str | None:
    word = (value or "").strip().lower()
    return word if word in choices else None


def _headers(data: bytes) -> dict[str, str] | None:
    """The headers of a NOTIFY datagram (names lower-cased), or None."""
    if len(data) > MAX_DATAGRAM_BYTES:
        return None
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not lines or lines[0].strip() != _START_LINE:
        return None
    headers: dict[str, str] = {}
    for line in lines[1 : _MAX_HEADERS + 1]:
        if not line.strip():
            break
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    return headers


def parse_notify(data: bytes, sender_ip: str) -> DiscoveredPrinter | None:
    """The printer a NOTIFY datagram announces; None for anything else.

    Header names are case-insensitive; ``USN`` must be a valid serial;
    another notification type, a ``byebye`` or an oversized datagram is
    not a printer's announcement. Optional values that are missing,
    malformed or absurdly long read as None.
    """
    headers = _headers(data)
    if headers is None:
        return None
    if headers.get("nt", _NOTIFY_TYPE).lower() != _NOTIFY_TYPE:
        return None
    if headers.get("nts", _ALIVE).lower() != _ALIVE:
        return None
    serial = headers.get("usn", "")
    if not valid_serial(serial):
        return None
    location = headers.get("location", "")
    if usable_address(location):
        host = str(ip_address(location))
        if host != sender_ip:
            _LOGGER.debug(
                "%s announces %s from %s (forwarded?); using the announced address",
                serial,
                host,
                sender_ip,
            )
    elif usable_address(sender_ip):
        host = sender_ip
    else:
        return None
    return DiscoveredPrinter(
        serial=serial,
        host=host,
        model_id=_token(headers.get("devmodel.bambu.com")),
        name=_text(headers.get("devname.bambu.com"), _MAX_NAME),
        connect_mode=_choice(headers.get("devconnect.bambu.com"), CONNECT_MODES),
        bind=_choice(headers.get("devbind.bambu.com"), BIND_STATES),
        version=_token(headers.get("devversion.bambu.com")),
    )


class _NotifyProtocol(asyncio.DatagramProtocol):
    """Hands each announcement to the listener's callback; drops the rest."""

    def __init__(self, on_printer: Callable[[DiscoveredPrinter], None]) -> None:
        self._on_printer = on_printer
        # Set once the socket is closed (the port is free again).
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        printer = parse_notify(data, str(addr[0]))
        if printer is None:
            return
        try:
            self._on_printer(printer)
        except Exception:
            _LOGGER.exception("Handling a discovered printer failed")

    def error_received(self, exc: Exception) -> None:
        _LOGGER.debug("Discovery socket error: %r", exc)


def _socket(interface: str, port: int) -> socket.socket:
    """A UDP socket bound to ``interface:port`` that shares the port.

    ``SO_REUSEADDR`` (and ``SO_REUSEPORT`` where the platform has it) lets
    Bambu Studio or another listener on the same host keep receiving: every
    socket bound with them gets its own copy of a broadcast or multicast.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setblocking(False)
        sock.bind((interface, port))
    except BaseException:
        sock.close()
        raise
    return sock


class DiscoveryListener:
    """Listen for NOTIFY datagrams on the broadcast and multicast ports.

    A port that cannot be bound (another program holds it without sharing,
    or no permission) is a debug log: the other port and everything else go
    on. ``stop`` closes whatever was opened and never raises.
    """

    def __init__(
        self,
        config: BambuConfig,
        on_printer: Callable[[DiscoveredPrinter], None],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """Nothing is bound before `start`."""
        self._config = config
        self._on_printer = on_printer
        self._loop = loop
        self._transports: list[tuple[asyncio.DatagramTransport, _NotifyProtocol]] = []

    @property
    def listening(self) -> int:
        """How many of the two ports are bound."""
        return len(self._transports)

    async def start(self) -> None:
        """Bind both ports (what can be bound) and join the multicast group."""
        loop = self._loop or asyncio.get_running_loop()
        interface = self._config.discovery_interface
        ports = self._config.ports
        for port, multicast in (
            (ports.discovery_broadcast, False),
            (ports.discovery_multicast, True),
        ):
            try:
                sock = _socket(interface, port)
            except OSError as err:
                _LOGGER.debug(
                    "Not listening for printers on UDP %s:%s: %r", interface, port, err
                )
                continue
            if multicast:
                self._join(sock, interface)
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _NotifyProtocol(self._on_printer), sock=sock
            )
            self._transports.append((transport, protocol))

    @staticmethod
    def _join(sock: socket.socket, interface: str) -> None:
        """Join the printers' multicast group; failing that, hear unicast only."""
        membership = struct.pack(
            "4s4s",
            socket.inet_aton(MULTICAST_GROUP),
            socket.inet_aton(interface),
        )
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        except OSError as err:
            _LOGGER.debug("Not joining %s: %r", MULTICAST_GROUP, err)

    async def stop(self) -> None:
        """Close every socket; the ports are free when this returns."""
        transports, self._transports = self._transports, []
        for transport, _ in transports:
            transport.close()
        for _, protocol in transports:
            await protocol.closed.wait()
