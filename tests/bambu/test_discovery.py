"""Tests for the NOTIFY parser and listener (custom_components/.../bambu/discovery.py).

The datagrams are written here after PROTOCOL.md section 6 (the keys and
shapes printers send), not copied from captures. The listener binds
127.0.0.1 on free ports and hears datagrams sent to 127.0.0.1: nothing is
broadcast or multicast beyond the loopback interface.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest

from custom_components.bambu_cloud.bambu.config import BambuConfig, Ports
from custom_components.bambu_cloud.bambu.const import REGIONS, Region
from custom_components.bambu_cloud.bambu.discovery import (
    MAX_DATAGRAM_BYTES,
    DiscoveredPrinter,
    DiscoveryListener,
    parse_notify,
    usable_address,
)

SERIAL = "01P00A391800123"


def notify(
    *,
    serial: str = SERIAL,
    location: str | None = "192.168.1.23",
    start: str = "NOTIFY * HTTP/1.1",
    extra: dict[str, str] | None = None,
    newline: str = "\r\n",
) -> bytes:
    """A printer's announcement, shaped as PROTOCOL.md section 6 describes."""
    headers = {
        "Host": "239.255.255.250:1990",
        "Server": "UPnP/1.0",
        "Location": location,
        "NT": "urn:bambulab-com:device:3dprinter:1",
        "NTS": "ssdp:alive",
        "USN": serial,
        "Cache-Control": "max-age=1800",
        "DevModel.bambu.com": "C12",
        "DevName.bambu.com": "Garage P1S",
        "DevSignal.bambu.com": "-52",
        "DevConnect.bambu.com": "lan",
        "DevBind.bambu.com": "free",
        "Devseclink.bambu.com": "secure",
        "DevInf.bambu.com": "wlan0",
        "DevVersion.bambu.com": "01.08.02.00",
        "DevCap.bambu.com": "1",
        **(extra or {}),
    }
    lines = [start] + [f"{k}: {v}" for k, v in headers.items() if v is not None]
    return (newline.join(lines) + newline + newline).encode()


def test_parse_realistic_notify() -> None:
    """Every field the contract names is read."""
    assert parse_notify(notify(), "192.168.1.23") == DiscoveredPrinter(
        serial=SERIAL,
        host="192.168.1.23",
        model_id="C12",
        name="Garage P1S",
        connect_mode="lan",
        bind="free",
        version="01.08.02.00",
    )


def test_header_names_are_case_insensitive() -> None:
    """Lower-case, upper-case and bare LF lines are all the same datagram."""
    text = notify(extra={"DevBind.bambu.com": "occupied"}).decode()
    lower = "\r\n".join(
        line.split(":", 1)[0].lower() + ":" + line.split(":", 1)[1]
        if ":" in line and not line.startswith("NOTIFY")
        else line
        for line in text.split("\r\n")
    )
    parsed = parse_notify(lower.encode(), "10.0.0.9")
    assert parsed is not None
    assert parsed.bind == "occupied"
    assert parsed.model_id == "C12"
    assert parse_notify(notify(newline="\n"), "10.0.0.9") == parse_notify(
        notify(), "10.0.0.9"
    )


def test_location_is_preferred_over_the_sender(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A relayed datagram still names the printer's own address."""
    caplog.set_level(logging.DEBUG)
    parsed = parse_notify(notify(location="192.168.5.7"), "192.168.1.1")
    assert parsed is not None
    assert parsed.host == "192.168.5.7"
    assert "using the announced address" in caplog.text


@pytest.mark.parametrize("location", [None, "", "http://1.2.3.4/", "0.0.0.0", "::1"])  # noqa: S104
def test_sender_when_location_unusable(location: str | None) -> None:
    """No usable Location: the datagram's source address."""
    parsed = parse_notify(notify(location=location), "192.168.1.40")
    assert parsed is not None
    assert parsed.host == "192.168.1.40"


def test_optional_fields_missing_or_odd() -> None:
    """Unknown words, bad tokens and control characters read as None or cleaned."""
    parsed = parse_notify(
        notify(
            extra={
                "DevModel.bambu.com": "C12; rm -rf",
                "DevName.bambu.com": "  Bob\x07 the Builder " + "x" * 100,
                "DevConnect.bambu.com": "CLOUD",
                "DevBind.bambu.com": "maybe",
                "DevVersion.bambu.com": "1" * 40,
            }
        ),
        "192.168.1.23",
    )
    assert parsed is not None
    assert parsed.model_id is None
    assert parsed.name is not None
    assert parsed.name.startswith("Bob the Builder x")
    assert len(parsed.name) == 64
    assert parsed.connect_mode == "cloud"
    assert parsed.bind is None
    assert parsed.version is None
    bare = b"NOTIFY * HTTP/1.1\r\nUSN: " + SERIAL.encode() + b"\r\n\r\n"
    assert parse_notify(bare, "192.168.1.23") == DiscoveredPrinter(
        serial=SERIAL, host="192.168.1.23"
    )


def test_utf8_name() -> None:
    """Printer names may be any language."""
    parsed = parse_notify(
        notify(extra={"DevName.bambu.com": "车间打印机"}), "192.168.1.23"
    )
    assert parsed is not None
    assert parsed.name == "车间打印机"


@pytest.mark.parametrize(
    ("datagram", "sender"),
    [
        (b"", "192.168.1.2"),
        (b"\xff\xfe\x00garbage", "192.168.1.2"),
        (notify(start="M-SEARCH * HTTP/1.1"), "192.168.1.2"),
        (notify(start="HTTP/1.1 200 OK"), "192.168.1.2"),
        (notify(serial="01P00A/#"), "192.168.1.2"),
        (notify(serial=""), "192.168.1.2"),
        (notify(serial="x" * 40), "192.168.1.2"),
        (notify(extra={"NT": "upnp:rootdevice"}), "192.168.1.2"),
        (notify(extra={"NTS": "ssdp:byebye"}), "192.168.1.2"),
        (notify(location=None), "not an address"),
        (notify(location="255.255.255.255"), "239.255.255.250"),
        (notify(extra={"X-Pad": "a" * MAX_DATAGRAM_BYTES}), "192.168.1.2"),
        (b"NOTIFY * HTTP/1.1\r\nno colon here\r\n\r\n", "192.168.1.2"),
    ],
)
def test_garbage_is_none(datagram: bytes, sender: str) -> None:
    """Anything that is not a printer's announcement is dropped."""
    assert parse_notify(datagram, sender) is None


def test_headers_after_the_blank_line_are_ignored() -> None:
    """The datagram ends at its blank line."""
    datagram = b"NOTIFY * HTTP/1.1\r\nLocation: 192.168.1.9\r\n\r\nUSN: %s" % (
        SERIAL.encode()
    )
    assert parse_notify(datagram, "192.168.1.9") is None


@pytest.mark.parametrize(
    ("value", "usable"),
    [
        ("192.168.1.2", True),
        ("127.0.0.1", True),
        ("0.0.0.0", False),  # noqa: S104
        ("255.255.255.255", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("fe80::1", False),
        ("printer.local", False),
    ],
)
def test_usable_address(value: str, usable: bool) -> None:
    """Only a unicast IPv4 address can be a printer's."""
    assert usable_address(value) is usable


# ------------------------------------------------------------------ listener


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _config(broadcast: int, multicast: int) -> BambuConfig:
    return BambuConfig(
        endpoints=REGIONS[Region.GLOBAL],
        ports=Ports(discovery_broadcast=broadcast, discovery_multicast=multicast),
        discovery_interface="127.0.0.1",
    )


type Heard = tuple[DiscoveryListener, asyncio.Queue[DiscoveredPrinter], int, int]


@pytest.fixture
async def heard(socket_enabled: None) -> AsyncIterator[Heard]:
    """A listener on two free loopback ports and what it hears."""
    queue: asyncio.Queue[DiscoveredPrinter] = asyncio.Queue()
    broadcast, multicast = _free_udp_port(), _free_udp_port()
    listener = DiscoveryListener(_config(broadcast, multicast), queue.put_nowait)
    await listener.start()
    try:
        yield listener, queue, broadcast, multicast
    finally:
        await listener.stop()


def _send(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, ("127.0.0.1", port))


async def test_listener_hears_both_ports(
    heard: Heard,
) -> None:
    """A datagram to either port reaches the callback; garbage does not."""
    listener, queue, broadcast, multicast = heard
    assert listener.listening == 2
    _send(broadcast, b"garbage")
    _send(broadcast, notify(location="127.0.0.1"))
    async with asyncio.timeout(5):
        printer = await queue.get()
    assert printer.serial == SERIAL
    assert printer.host == "127.0.0.1"
    _send(multicast, notify(serial="03W00X123456789", location=None))
    async with asyncio.timeout(5):
        printer = await queue.get()
    assert printer.serial == "03W00X123456789"
    assert printer.host == "127.0.0.1"
    assert queue.empty()


async def test_listener_shares_the_port(socket_enabled: None) -> None:
    """Another program sharing the port (like Bambu Studio) keeps hearing it."""
    port = _free_udp_port()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("127.0.0.1", port))
    queue: asyncio.Queue[DiscoveredPrinter] = asyncio.Queue()
    listener = DiscoveryListener(_config(port, _free_udp_port()), queue.put_nowait)
    try:
        await listener.start()
        assert listener.listening == 2
    finally:
        await listener.stop()
        other.close()


async def test_port_taken_is_a_debug_log(
    socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A port held without sharing: debug log, the other port still listens."""
    caplog.set_level(logging.DEBUG)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    taken = holder.getsockname()[1]
    queue: asyncio.Queue[DiscoveredPrinter] = asyncio.Queue()
    free = _free_udp_port()
    listener = DiscoveryListener(_config(taken, free), queue.put_nowait)
    try:
        await listener.start()
        assert listener.listening == 1
        assert f"Not listening for printers on UDP 127.0.0.1:{taken}" in caplog.text
        assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
        _send(free, notify())
        async with asyncio.timeout(5):
            assert (await queue.get()).serial == SERIAL
    finally:
        await listener.stop()
        holder.close()
    assert listener.listening == 0


async def test_failing_callback_is_logged(
    socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises does not stop the listener."""
    seen: list[DiscoveredPrinter] = []
    event = asyncio.Event()

    def on_printer(printer: DiscoveredPrinter) -> None:
        seen.append(printer)
        event.set()
        if len(seen) == 1:
            raise RuntimeError("boom")

    port = _free_udp_port()
    listener = DiscoveryListener(_config(port, _free_udp_port()), on_printer)
    await listener.start()
    try:
        _send(port, notify())
        async with asyncio.timeout(5):
            await event.wait()
        event.clear()
        _send(port, notify())
        async with asyncio.timeout(5):
            await event.wait()
    finally:
        await listener.stop()
    assert len(seen) == 2
    assert "Handling a discovered printer failed" in caplog.text


def test_multicast_join_failure_is_a_debug_log(
    socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """An interface that cannot join the group: debug log, no exception."""
    caplog.set_level(logging.DEBUG)
    # An address no local interface has (TEST-NET-1): the join fails locally.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        DiscoveryListener._join(sock, "192.0.2.1")
    assert "Not joining 239.255.255.250" in caplog.text


def test_socket_error_is_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    """An ICMP error on the socket is not an error of the integration."""
    from custom_components.bambu_cloud.bambu.discovery import (  # noqa: PLC0415
        _NotifyProtocol,
    )

    caplog.set_level(logging.DEBUG)
    _NotifyProtocol(lambda _: None).error_received(OSError("unreachable"))
    assert "Discovery socket error" in caplog.text
