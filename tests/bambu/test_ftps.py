"""Tests for the printer storage client (custom_components/.../bambu/ftps.py).

A real FTPS server on 127.0.0.1 (tools/virtual_printer/ftps.py): implicit TLS
with a Bambu-shaped test PKI (CA without key usage, leaf CN = serial, no
SAN) whose CA is the only pin of the client's context; it checks the access
code only after the handshake and requires TLS session reuse on data
connections. The hub's file methods run against the same server. Every
server and hub is stopped at the end of its test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ftplib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from custom_components.bambu_cloud.bambu import ftps, tls
from custom_components.bambu_cloud.bambu.config import BambuConfig, Ports, Timeouts
from custom_components.bambu_cloud.bambu.const import RegionEndpoints, lookup_model
from custom_components.bambu_cloud.bambu.ftps import (
    PrinterStorage,
    RemoteFile,
    StorageError,
    StorageErrorReason,
    checked_path,
    parse_list,
    parse_mlsd,
    parse_nlst,
)
from custom_components.bambu_cloud.bambu.hub import (
    BambuHub,
    PrinterSpec,
    TrustError,
    lan_address,
)
from custom_components.bambu_cloud.bambu.mqtt import RetryPolicy
from tools.test_pki import PrinterPKI
from tools.virtual_printer.ftps import FtpsServer, FtpsSite
from tools.virtual_printer.mosquitto import free_port
from tools.virtual_printer.project_files import sample_project

pytestmark = pytest.mark.usefixtures("socket_enabled")

SERIAL = "01P00A451600002"
OTHER_SERIAL = "00M09A350100001"
CODE = "12345678"
MODIFIED = dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC)
PROJECT = sample_project("Benchy")
FILES = {
    "/Benchy.gcode.3mf": PROJECT,
    "/notes.txt": b"not a project",
    "/cache/Cable clip x12.gcode.3mf": b"x" * 3000,
    "/cache/sub/deep.3mf": b"deeper than we look",
    "/timelapse/video.mp4": b"\0" * 10,
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PrinterPKI:
    """The printer's PKI: Bambu-shaped CA, leaf CN = SERIAL."""
    return PrinterPKI.create(tmp_path_factory.mktemp("ftps-pki"), serial=SERIAL)


@pytest.fixture
def context(pki: PrinterPKI) -> ssl.SSLContext:
    """The client's pinned context (the printer CA is the only anchor)."""
    return tls.build_printer_context([pki.root.der], pins=pki.pins)


ServerFactory = Callable[..., Awaitable[FtpsServer]]


@pytest.fixture
async def make_server(pki: PrinterPKI) -> AsyncIterator[ServerFactory]:
    """Start FTPS servers for the printer; all stopped at the end."""
    servers: list[FtpsServer] = []

    async def make(files: Any = None, **options: Any) -> FtpsServer:
        site = FtpsSite(
            SERIAL, pki.server_context(), CODE, FILES if files is None else files
        )
        server = FtpsServer([site], modified=MODIFIED, **options)
        servers.append(server)
        await server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            await server.stop()


@pytest.fixture
async def server(make_server: ServerFactory) -> FtpsServer:
    """The printer's FTPS server with the default files."""
    return await make_server()


def storage(
    port: int,
    context: ssl.SSLContext,
    *,
    serial: str = SERIAL,
    code: str = CODE,
    timeout: float = 5.0,
) -> PrinterStorage:
    """A client for the server on 127.0.0.1."""
    return PrinterStorage(
        host="127.0.0.1",
        port=port,
        serial=serial,
        access_code=code,
        context=context,
        timeout=timeout,
    )


# ----------------------------------------------------------------- listing


async def test_lists_project_files_of_every_folder(
    server: FtpsServer, context: ssl.SSLContext
) -> None:
    """MLSD of /, /cache and /model: .3mf files only, /model missing is fine."""
    files = await storage(server.port, context).async_list_files()

    assert files == (
        RemoteFile(path="/Benchy.gcode.3mf", size=len(PROJECT), modified=MODIFIED),
        RemoteFile(
            path="/cache/Cable clip x12.gcode.3mf", size=3000, modified=MODIFIED
        ),
    )
    assert files[1].name == "Cable clip x12.gcode.3mf"
    assert files[1].folder == "/cache"
    assert files[0].folder == "/"
    verbs = server.verbs(SERIAL)
    # The access code follows the verified handshake; data is protected.
    assert verbs[:5] == ["USER", "PASS", "PBSZ", "PROT", "TYPE"]
    assert verbs.count("MLSD") == 3
    assert "LIST" not in verbs
    # Every data connection resumed the control connection's TLS session.
    assert server.data_session_reused
    assert all(server.data_session_reused)
    assert all(c.argument == "***" for c in server.commands if c.verb == "PASS")


async def test_lists_with_list_when_mlsd_is_missing(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """Without MLST in FEAT, LIST (Unix format) gives the same files."""
    server = await make_server(mlsd=False)

    files = await storage(server.port, context).async_list_files()

    assert [f.path for f in files] == [
        "/Benchy.gcode.3mf",
        "/cache/Cable clip x12.gcode.3mf",
    ]
    assert files[1].size == 3000
    assert files[1].modified is not None
    assert "MLSD" not in server.verbs()
    assert server.verbs().count("LIST") == 3


async def test_lists_with_list_when_feat_and_mlsd_fail(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """No FEAT answer: MLSD is not tried, LIST works."""
    server = await make_server(feat=False)

    files = await storage(server.port, context).async_list_files()

    assert len(files) == 2
    assert "MLSD" not in server.verbs()


async def test_lists_with_nlst_when_list_is_unreadable(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """A LIST in a foreign format falls back to NLST names (no sizes)."""
    server = await make_server(mlsd=False, unix_list=False)

    files = await storage(server.port, context).async_list_files()

    assert files == (
        RemoteFile(path="/Benchy.gcode.3mf"),
        RemoteFile(path="/cache/Cable clip x12.gcode.3mf"),
    )
    # /model is missing: its LIST is refused, so no NLST follows.
    assert server.verbs().count("NLST") == 2


async def test_listing_refused(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """A folder the printer refuses to list (not 550): PROTOCOL, with the code."""
    server = await make_server(mlsd=False, refuse={"LIST"})

    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_list_files()

    assert caught.value.reason is StorageErrorReason.PROTOCOL
    assert caught.value.detail == "502"


async def test_clear_data_connection_is_refused(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """Data must come over TLS: a clear data connection fails the transfer."""
    server = await make_server(clear_data=True)

    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_read_file("/Benchy.gcode.3mf")

    assert caught.value.reason is StorageErrorReason.TLS


async def test_list_of_an_empty_storage(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """No file anywhere: nothing listed, no error."""
    server = await make_server({})

    assert await storage(server.port, context).async_list_files() == ()


async def test_oversized_listing_is_a_protocol_error(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """A listing beyond MAX_LISTING_BYTES is refused, not read to the end."""
    name = "n" * 200
    files = {f"/{name}{number:05d}.3mf": b"" for number in range(6000)}
    server = await make_server(files)

    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_list_files()

    assert caught.value.reason is StorageErrorReason.PROTOCOL
    assert caught.value.detail == "listing"


# ----------------------------------------------------------------- reading


async def test_reads_a_file(server: FtpsServer, context: ssl.SSLContext) -> None:
    """RETR over a protected data connection; SIZE is asked first."""
    data = await storage(server.port, context).async_read_file("/Benchy.gcode.3mf")

    assert data == PROJECT
    verbs = server.verbs()
    assert verbs.index("SIZE") < verbs.index("RETR")
    assert all(server.data_session_reused)


async def test_reads_a_file_without_size(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """A server without SIZE still serves the file."""
    server = await make_server(size=False)

    data = await storage(server.port, context).async_read_file(
        "cache//./Cable clip x12.gcode.3mf"
    )

    assert data == b"x" * 3000
    assert any(
        c.verb == "RETR" and c.argument == "/cache/Cable clip x12.gcode.3mf"
        for c in server.commands
    )


async def test_missing_file(server: FtpsServer, context: ssl.SSLContext) -> None:
    """550 on SIZE is NOT_FOUND; nothing is retrieved."""
    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_read_file("/nope.3mf")

    assert caught.value.reason is StorageErrorReason.NOT_FOUND
    assert "RETR" not in server.verbs()


async def test_missing_file_without_size(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """550 on RETR is NOT_FOUND as well."""
    server = await make_server(size=False)

    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_read_file("/nope.3mf")

    assert caught.value.reason is StorageErrorReason.NOT_FOUND
    assert caught.value.detail == "550"


async def test_size_limit_announced(
    server: FtpsServer, context: ssl.SSLContext
) -> None:
    """A file SIZE says is too large is not retrieved at all."""
    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_read_file(
            "/cache/Cable clip x12.gcode.3mf", max_bytes=2999
        )

    assert caught.value.reason is StorageErrorReason.TOO_LARGE
    assert "RETR" not in server.verbs()


async def test_size_limit_while_reading(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """Without SIZE, the read stops as soon as the limit is passed."""
    server = await make_server({"/big.3mf": b"b" * 500_000}, size=False)

    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_read_file(
            "/big.3mf", max_bytes=100_000
        )

    assert caught.value.reason is StorageErrorReason.TOO_LARGE
    assert "RETR" in server.verbs()


class Shrinking(dict[str, bytes]):
    """Files whose content is shorter by the time it is retrieved."""

    def __init__(self, content: bytes) -> None:
        super().__init__({"/a.3mf": content})
        self.reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        value = super().get(key, default)
        return value if self.reads == 1 or value is None else value[:-10]


async def test_short_transfer_is_a_protocol_error(
    make_server: ServerFactory, context: ssl.SSLContext
) -> None:
    """Fewer bytes than SIZE announced: the transfer was cut, not accepted."""
    server = await make_server(Shrinking(b"z" * 1000))

    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_read_file("/a.3mf")

    assert caught.value.reason is StorageErrorReason.PROTOCOL
    assert caught.value.detail == "short"


@pytest.mark.parametrize(
    "path",
    ["", "/", "/../etc/passwd", "/cache/../../x", "/a\r\nDELE /b", "/a\0b", "a\\b"],
)
async def test_invalid_paths_never_connect(
    server: FtpsServer, context: ssl.SSLContext, path: str
) -> None:
    """Bad paths are refused before any connection."""
    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_read_file(path)

    assert caught.value.reason is StorageErrorReason.INVALID_PATH
    assert server.commands == []


async def test_invalid_folder_never_connects(
    server: FtpsServer, context: ssl.SSLContext
) -> None:
    """A folder to list goes through the same check."""
    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_list_files(["/../x"])

    assert caught.value.reason is StorageErrorReason.INVALID_PATH
    assert server.commands == []


# ------------------------------------------------------ trust and refusals


async def test_wrong_access_code(server: FtpsServer, context: ssl.SSLContext) -> None:
    """530 after PASS: AUTH."""
    with pytest.raises(StorageError) as caught:
        await storage(server.port, context, code="87654321").async_list_files()

    assert caught.value.reason is StorageErrorReason.AUTH
    assert caught.value.detail == "530"
    assert server.verbs() == ["USER", "PASS", "QUIT"]


async def test_wrong_serial_refused_before_the_access_code(
    server: FtpsServer, context: ssl.SSLContext
) -> None:
    """A certificate for another serial: TLS refused, the server saw nothing."""
    with pytest.raises(StorageError) as caught:
        await storage(server.port, context, serial=OTHER_SERIAL).async_list_files()

    assert caught.value.reason is StorageErrorReason.TLS
    assert caught.value.detail == "serial_mismatch"
    assert server.commands == []
    await asyncio.sleep(0.05)
    assert server.handshake_failures == 1


async def test_unpinned_ca_refused_before_the_access_code(
    server: FtpsServer, tmp_path: Path
) -> None:
    """A context pinning another CA refuses the printer: no USER, no PASS."""
    other = PrinterPKI.create(tmp_path / "other", serial=SERIAL)
    context = tls.build_printer_context([other.root.der], pins=other.pins)

    with pytest.raises(StorageError) as caught:
        await storage(server.port, context).async_read_file("/Benchy.gcode.3mf")

    assert caught.value.reason is StorageErrorReason.TLS
    assert caught.value.detail == "unknown_ca"
    assert server.commands == []


async def test_unverifying_context_is_refused(pki: PrinterPKI) -> None:
    """The access code is never handed to a client that would not verify."""
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE

    with pytest.raises(ValueError, match="verify"):
        storage(990, unverified)


def test_invalid_serial_is_refused(context: ssl.SSLContext) -> None:
    """The serial becomes the TLS server name: an IP or junk never does."""
    with pytest.raises(ValueError, match="serial"):
        storage(990, context, serial="127.0.0.1")


def test_repr_hides_the_access_code(context: ssl.SSLContext) -> None:
    """Where the storage is, never how to log in."""
    text = repr(storage(990, context, code="SECRET99"))

    assert "SECRET99" not in text
    assert SERIAL in text


async def test_timeout(make_server: ServerFactory, context: ssl.SSLContext) -> None:
    """A printer that stops answering: TIMEOUT within the configured time."""
    server = await make_server(hang={"RETR"}, size=False)
    started = asyncio.get_running_loop().time()

    with pytest.raises(StorageError) as caught:
        await storage(server.port, context, timeout=0.5).async_read_file(
            "/Benchy.gcode.3mf"
        )

    assert caught.value.reason is StorageErrorReason.TIMEOUT
    assert asyncio.get_running_loop().time() - started < 4.0


async def test_connection_refused(context: ssl.SSLContext) -> None:
    """Nothing listening: CONNECTION."""
    with pytest.raises(StorageError) as caught:
        await storage(free_port(), context).async_list_files()

    assert caught.value.reason is StorageErrorReason.CONNECTION


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """Start a raw (TLS or plain) server answering with a script."""
    servers: list[asyncio.Server] = []

    async def start(greeting: bytes, ssl_context: ssl.SSLContext | None) -> int:
        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            try:
                writer.write(greeting)
                await writer.drain()
                if greeting:
                    await reader.read(100)
            except OSError:
                pass
            finally:
                writer.transport.abort()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(srv)
        return int(srv.sockets[0].getsockname()[1])

    try:
        yield start
    finally:
        for srv in servers:
            srv.close()
            srv.abort_clients()
            await srv.wait_closed()


@pytest.mark.parametrize(
    ("greeting", "reason", "detail"),
    [
        (b"421 Too many connections\r\n", StorageErrorReason.CONNECTION, "421"),
        (b"hello there\r\n", StorageErrorReason.PROTOCOL, None),
        (b"", StorageErrorReason.PROTOCOL, None),
        (b"220 hi\r\n500 what\r\n", StorageErrorReason.PROTOCOL, "500"),
    ],
)
async def test_odd_servers(
    raw_server: Callable[..., Awaitable[int]],
    pki: PrinterPKI,
    context: ssl.SSLContext,
    greeting: bytes,
    reason: StorageErrorReason,
    detail: str | None,
) -> None:
    """Busy, garbled, silent or refusing servers map to typed errors."""
    port = await raw_server(greeting, pki.server_context())

    with pytest.raises(StorageError) as caught:
        await storage(port, context).async_list_files()

    assert caught.value.reason is reason
    assert caught.value.detail == detail


async def test_plain_server_is_a_tls_error(
    raw_server: Callable[..., Awaitable[int]], context: ssl.SSLContext
) -> None:
    """A server without TLS on the port: TLS (other), no credential sent."""
    port = await raw_server(b"220 plain FTP\r\n", None)

    with pytest.raises(StorageError) as caught:
        await storage(port, context).async_list_files()

    assert caught.value.reason is StorageErrorReason.TLS
    assert caught.value.detail == "other"


def test_reply_errors() -> None:
    """Reply codes map to reasons; text from the printer is never kept."""
    auth = ftps._reply_error(ftplib.error_perm("530 no"))  # noqa: S321
    busy = ftps._reply_error(ftplib.error_temp("450 busy"))  # noqa: S321
    odd = ftps._reply_error(ftplib.error_reply("weird"))  # noqa: S321
    refused = ftps._reply_error(ftplib.error_perm("553 x"))  # noqa: S321

    assert auth.reason is StorageErrorReason.AUTH
    assert busy.reason is StorageErrorReason.NOT_FOUND
    assert odd.reason is StorageErrorReason.PROTOCOL
    assert odd.detail is None
    assert str(refused) == "protocol: 553"


# ------------------------------------------------------------------ parsers


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a.3mf", "/a.3mf"),
        ("a.3mf", "/a.3mf"),
        ("//cache/./b.3mf", "/cache/b.3mf"),
        ("/", "/"),
        ("/cache/", "/cache"),
    ],
)
def test_checked_path(path: str, expected: str) -> None:
    """Paths are made absolute and clean."""
    assert checked_path(path) == expected


@pytest.mark.parametrize(
    "path", ["", "/..", "/a/../b", "/a\tb", "/a\x7fb", "/" + "n" * 256, "/" * 1025]
)
def test_checked_path_refuses(path: str) -> None:
    """Traversal, control characters and absurd lengths are refused."""
    with pytest.raises(StorageError) as caught:
        checked_path(path)
    assert caught.value.reason is StorageErrorReason.INVALID_PATH


def test_parse_mlsd() -> None:
    """Files only, facts case-insensitive, odd sizes and times dropped."""
    lines = [
        "type=file;size=12;modify=20260102030405; a.gcode.3mf",
        "Type=File;Size=x;Modify=bad; b.3MF",
        "type=dir;modify=20260102030405; c.3mf",
        "type=cdir; .",
        "type=file;size=1; notes.txt",
        "garbage-without-space",
        "size=3; ../evil.3mf",
        "size=4;junk; d.3mf",
    ]

    assert parse_mlsd(lines, "/cache") == [
        RemoteFile(
            path="/cache/a.gcode.3mf",
            size=12,
            modified=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        ),
        RemoteFile(path="/cache/b.3MF"),
        RemoteFile(path="/cache/evil.3mf", size=3),
        RemoteFile(path="/cache/d.3mf", size=4),
    ]


def test_parse_list() -> None:
    """Unix lines: regular files only; a date without year is in the past."""
    now = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    lines = [
        "-rw-r--r--    1 root root   1234 Jan 31 23:59 a b.3mf",
        "-rw-r--r--    1 root root   99 Dec 24 10:00 xmas.3mf",
        "-rw-r--r--    1 root root   7 Mar  3  2024 old.3mf",
        "-rw-r--r--    1 root root   7 Feb 30  2024 bad-date.3mf",
        "-rw-r--r--    1 root root   7 Foo  3  2024 bad-month.3mf",
        "drwxr-xr-x    2 root root   4096 Jan 31 23:59 dir.3mf",
        "lrwxrwxrwx    1 root root   4 Jan 31 23:59 link.3mf -> a b.3mf",
        "-rw-r--r--    1 root root   5 Jan 31 23:59 readme.md",
        "total 3",
    ]

    assert parse_list(lines, "/", now=now) == [
        RemoteFile(
            path="/a b.3mf",
            size=1234,
            modified=dt.datetime(2026, 1, 31, 23, 59, tzinfo=dt.UTC),
        ),
        RemoteFile(
            path="/xmas.3mf",
            size=99,
            modified=dt.datetime(2025, 12, 24, 10, 0, tzinfo=dt.UTC),
        ),
        RemoteFile(
            path="/old.3mf", size=7, modified=dt.datetime(2024, 3, 3, tzinfo=dt.UTC)
        ),
        RemoteFile(path="/bad-date.3mf", size=7),
        RemoteFile(path="/bad-month.3mf", size=7),
    ]
    assert parse_list(["01-02-26  12:34PM  5 a.3mf"], "/") is None
    assert parse_list([], "/") is None
    assert parse_list(["-rw-r--r-- 1 a b 1 Jan 1 00:00 x.3mf"], "/")


def test_parse_nlst() -> None:
    """Names with or without their folder; the rest is dropped."""
    lines = ["a.3mf", "/cache/b.gcode.3mf", "c.txt", "", "..", "bad\x01.3mf"]

    assert parse_nlst(lines, "/cache") == [
        RemoteFile(path="/cache/a.3mf"),
        RemoteFile(path="/cache/b.gcode.3mf"),
    ]


# --------------------------------------------------------------------- hub


def test_lan_address() -> None:
    """The address alone, from the LAN host option."""
    assert lan_address("192.168.1.5") == "192.168.1.5"
    assert lan_address("192.168.1.5:8883") == "192.168.1.5"
    assert lan_address("[fd00::1]:8883") == "fd00::1"
    assert lan_address("[fd00::1") == "fd00::1"
    assert lan_address("printer.lan") == "printer.lan"


class Trust:
    """The hub's context factory: the pinned context, or a chosen failure."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.failure: Exception | None = None
        self.calls: list[tuple[str, str]] = []

    async def __call__(
        self, serial: str, host: str, *, refresh: bool = False
    ) -> ssl.SSLContext:
        self.calls.append((serial, host))
        if self.failure is not None:
            raise self.failure
        return self.context


HubFactory = Callable[[int], Awaitable[tuple[BambuHub, Trust]]]


@pytest.fixture
async def hub_factory(context: ssl.SSLContext) -> AsyncIterator[HubFactory]:
    """LAN-only hubs whose printer storage is the test server; all stopped."""
    hubs: list[BambuHub] = []

    async def make(ftps_port: int) -> tuple[BambuHub, Trust]:
        trust = Trust(context)
        config = BambuConfig(
            endpoints=RegionEndpoints(
                api_url="http://127.0.0.1:1",
                web_url="http://127.0.0.1:1",
                mqtt_host="127.0.0.1",
                mqtt_port=1,
            ),
            ports=Ports(ftps=ftps_port),
            timeouts=Timeouts(file_transfer=5.0),
            retry=RetryPolicy(minimum=30.0, maximum=30.0),
            probe_retry=RetryPolicy(minimum=30.0, maximum=30.0),
        )
        hub = BambuHub(
            asyncio.get_running_loop(),
            None,
            config=config,
            printer_context=trust,
            on_problem=lambda problem: None,
        )
        hubs.append(hub)
        return hub, trust

    try:
        yield make
    finally:
        for hub in hubs:
            await hub.stop()


# The printer's MQTT port: nothing listens there (the LAN session retries
# slowly in the background while the tests use the storage).
MQTT_HOST = f"127.0.0.1:{free_port()}"


def lan_spec(
    *, lan_host: str | None = MQTT_HOST, code: str | None = CODE
) -> PrinterSpec:
    """The printer, reached over LAN (its MQTT port has nothing listening)."""
    return PrinterSpec(
        serial=SERIAL,
        model=lookup_model(serial=SERIAL),
        name="P1S",
        access_code=code,
        lan_host=lan_host,
    )


async def test_hub_lists_and_reads(
    server: FtpsServer,
    hub_factory: HubFactory,
) -> None:
    """The hub reaches the storage at the LAN host with the pinned context."""
    hub, trust = await hub_factory(server.port)
    try:
        spec = lan_spec()
        hub.set_printers({SERIAL: spec})

        files, data = await asyncio.gather(
            hub.async_list_files(SERIAL),
            hub.async_read_file(SERIAL, "/Benchy.gcode.3mf"),
        )

        assert [f.path for f in files] == [
            "/Benchy.gcode.3mf",
            "/cache/Cable clip x12.gcode.3mf",
        ]
        assert data == PROJECT
        assert (SERIAL, spec.lan_host) in trust.calls
        # One session at a time: the second logged in after the first quit.
        verbs = server.verbs()
        assert verbs.index("PASS", verbs.index("QUIT")) > verbs.index("QUIT")
        with pytest.raises(StorageError) as caught:
            await hub.async_read_file(SERIAL, "/Benchy.gcode.3mf", max_bytes=10)
        assert caught.value.reason is StorageErrorReason.TOO_LARGE
    finally:
        await hub.stop()


@pytest.mark.parametrize(
    "spec",
    [
        None,
        lan_spec(lan_host=None),
        lan_spec(code=None),
    ],
)
async def test_hub_without_lan_address(
    hub_factory: HubFactory,
    spec: PrinterSpec | None,
) -> None:
    """Unknown printer, LAN off or no access code: NO_ADDRESS, no connection."""
    hub, _ = await hub_factory(free_port())
    try:
        if spec is not None:
            hub.set_printers({SERIAL: spec})
        with pytest.raises(StorageError) as caught:
            await hub.async_list_files(SERIAL)
        assert caught.value.reason is StorageErrorReason.NO_ADDRESS
        with pytest.raises(StorageError) as caught:
            await hub.async_read_file(SERIAL, "/a.3mf")
        assert caught.value.reason is StorageErrorReason.NO_ADDRESS
    finally:
        await hub.stop()


@pytest.mark.parametrize(
    ("failure", "reason", "detail"),
    [
        (TrustError("unknown_ca"), StorageErrorReason.TLS, "unknown_ca"),
        (ConnectionRefusedError(), StorageErrorReason.CONNECTION, None),
    ],
)
async def test_hub_trust_failures(
    server: FtpsServer,
    hub_factory: HubFactory,
    failure: Exception,
    reason: StorageErrorReason,
    detail: str | None,
) -> None:
    """No trusted context: a typed error, and the server never hears of us."""
    hub, trust = await hub_factory(server.port)
    try:
        hub.set_printers({SERIAL: lan_spec()})
        trust.failure = failure
        with pytest.raises(StorageError) as caught:
            await hub.async_list_files(SERIAL)
        assert caught.value.reason is reason
        assert caught.value.detail == detail
        assert server.commands == []
    finally:
        await hub.stop()
