"""An FTPS server shaped like a printer's storage (PROTOCOL.md 4.5).

Implicit TLS: the handshake comes first, before the greeting, with the
printer certificate (``CN=<serial>``, no SAN) of the Bambu-shaped test CA.
Only then does the server read ``USER bblp`` / ``PASS <access code>`` and
answer 530 to a wrong code. Data connections are passive and must be TLS
too (``PBSZ 0`` + ``PROT P`` first) and, like the printers' server, must
resume the control connection's TLS session (``require_session_reuse``).

One server can serve several printers: the client's SNI (the serial it
expects) picks the printer's certificate, access code and files, so a farm of
printers sharing 127.0.0.1 shares one port. A printer's files are an
in-memory ``{absolute path: content}`` mapping owned by its caller (e.g.
``VirtualPrinter.storage``), read at each command, so changes show at once.

What a test needs to look at: ``commands`` (every command received, the
password never recorded), ``handshake_failures``, ``data_session_reused``.
Knobs: ``mlsd``/``size``/``feat`` turn those commands off and ``refuse``
names more (a server answering 502), ``unix_list`` False answers ``LIST``
in the Windows format, ``clear_data`` sends data without TLS (a broken
server), ``hang`` lists commands never answered (timeouts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import posixpath
import ssl
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from tools.client_server import ClientServer, close

_LOGGER = logging.getLogger(__name__)

USER = "bblp"
_MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec"
_BEFORE_LOGIN = frozenset(
    {"USER", "PASS", "QUIT", "FEAT", "SYST", "NOOP", "OPTS", "PBSZ", "PROT", "AUTH"}
)


@dataclass(slots=True)
class FtpsSite:
    """One printer behind the server: its certificate, access code and files."""

    serial: str
    context: ssl.SSLContext
    access_code: str = field(repr=False)
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Received:
    """A command the server read (``PASS`` arguments are never kept)."""

    serial: str
    verb: str
    argument: str


class FtpsServer(ClientServer):
    """Serves printers' storage on ``host`` (``port`` 0 = ephemeral).

    The first site's context is the one a client without a known SNI gets;
    the contexts are the server's from then on (it sets an SNI callback).
    """

    def __init__(
        self,
        sites: Sequence[FtpsSite],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        mlsd: bool = True,
        size: bool = True,
        feat: bool = True,
        unix_list: bool = True,
        refuse: Collection[str] = (),
        clear_data: bool = False,
        require_session_reuse: bool = True,
        hang: Collection[str] = (),
        modified: dt.datetime | None = None,
        handshake_timeout: float = 5.0,
        idle_timeout: float = 30.0,
        max_clients: int = 8,
    ) -> None:
        """Configure; nothing listens before :meth:`start`."""
        if not sites:
            raise ValueError("an FTPS server needs at least one printer")
        super().__init__(host=host, port=port, max_clients=max_clients)
        self.sites = {site.serial: site for site in sites}
        self.mlsd = mlsd
        self.size = size
        self.feat = feat
        self.unix_list = unix_list
        self.refuse = frozenset(verb.upper() for verb in refuse)
        self.clear_data = clear_data
        self.require_session_reuse = require_session_reuse
        self.hang = frozenset(verb.upper() for verb in hang)
        self.modified = modified or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.commands: list[Received] = []
        self.handshake_failures = 0
        self.data_session_reused: list[bool] = []
        self._context = sites[0].context
        self._context.sni_callback = self._pick_site

    def verbs(self, serial: str | None = None) -> list[str]:
        """The verbs received (for one printer), oldest first."""
        return [c.verb for c in self.commands if serial in (None, c.serial)]

    async def start(self) -> None:
        """Listen for clients (TLS comes first, with the SNI's certificate)."""
        await self._listen()

    async def __aenter__(self) -> FtpsServer:
        """Start listening."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop."""
        await self.stop()

    # -- TLS ---------------------------------------------------------------

    def _pick_site(
        self, ssl_object: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object
    ) -> None:
        """SNI: present the certificate of the printer the client asks for."""
        site = self.sites.get(name or "")
        if site is not None and site.context is not ssl_object.context:
            ssl_object.context = site.context

    def _site_of(self, writer: asyncio.StreamWriter) -> FtpsSite:
        ssl_object = writer.get_extra_info("ssl_object")
        context = getattr(ssl_object, "context", None)
        return next(
            (s for s in self.sites.values() if s.context is context),
            next(iter(self.sites.values())),
        )

    async def upgrade(self, writer: asyncio.StreamWriter, *, data: bool) -> bool:
        """The implicit TLS handshake; False when it fails.

        Failures of control connections are counted; a data connection the
        client gives up on (a 550 answer after it connected) is not.
        """
        try:
            await writer.start_tls(
                self._context, ssl_handshake_timeout=self.handshake_timeout
            )
        except (OSError, TimeoutError):
            if not data:
                self.handshake_failures += 1
            writer.transport.abort()
            return False
        return True

    # -- control connections -----------------------------------------------

    def _turn_away(self, writer: asyncio.StreamWriter) -> None:
        """Too many clients: dropped before the handshake."""
        writer.transport.abort()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Handshake, then one control session."""
        if not await self.upgrade(writer, data=False):
            return
        session = _Session(self, self._site_of(writer), reader, writer)
        await session.run()


class _Session:
    """One logged-in (or logging-in) client."""

    def __init__(
        self,
        server: FtpsServer,
        site: FtpsSite,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.site = site
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.logged_in = False
        self.pbsz = False
        self.protected = False
        self.cwd = "/"
        self.data: _Passive | None = None

    async def reply(self, code: int, text: str) -> None:
        self.writer.write(f"{code} {text}\r\n".encode())
        await self.writer.drain()

    async def run(self) -> None:
        await self.reply(220, "Bambu-shaped FTPS test server ready")
        try:
            while True:
                async with asyncio.timeout(self.server.idle_timeout):
                    raw = await self.reader.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb, _, argument = line.partition(" ")
                verb = verb.upper()
                self.server.commands.append(
                    Received(
                        self.site.serial, verb, "***" if verb == "PASS" else argument
                    )
                )
                if verb in self.server.hang:
                    await asyncio.sleep(self.server.idle_timeout)
                    return
                if not await self.command(verb, argument):
                    return
        finally:
            if self.data is not None:
                self.data.close()

    async def command(self, verb: str, argument: str) -> bool:
        """Answer one command; False ends the session."""
        if verb == "QUIT":
            await self.reply(221, "Goodbye.")
            return False
        if not self.logged_in and verb not in _BEFORE_LOGIN:
            await self.reply(530, "Please login with USER and PASS.")
            return True
        handler = getattr(self, f"cmd_{verb.lower()}", None)
        off = {"SIZE": self.server.size, "FEAT": self.server.feat}
        if handler is None or not off.get(verb, True) or verb in self.server.refuse:
            await self.reply(502, "Command not implemented.")
            return True
        await handler(argument)
        return True

    # -- login and TLS settings --------------------------------------------

    async def cmd_user(self, argument: str) -> None:
        self.user = argument
        self.logged_in = False
        await self.reply(331, "Please specify the password.")

    async def cmd_pass(self, argument: str) -> None:
        if self.user == USER and argument == self.site.access_code:
            self.logged_in = True
            await self.reply(230, "Login successful.")
        else:
            self.user = None
            await self.reply(530, "Login incorrect.")

    async def cmd_auth(self, argument: str) -> None:
        await self.reply(534, "Already protected (implicit TLS).")

    async def cmd_pbsz(self, argument: str) -> None:
        self.pbsz = True
        await self.reply(200, "PBSZ set to 0.")

    async def cmd_prot(self, argument: str) -> None:
        if not self.pbsz:
            await self.reply(503, "PBSZ first.")
        elif argument.upper() == "P":
            self.protected = True
            await self.reply(200, "PROT now Private.")
        else:
            await self.reply(536, "Only PROT P is accepted.")

    async def cmd_feat(self, argument: str) -> None:
        features = ["EPSV", "PASV", "PBSZ", "PROT", "UTF8"]
        if self.server.mlsd:
            features.append("MLST type*;size*;modify*;")
        if self.server.size:
            features.append("SIZE")
        body = "".join(f" {feature}\r\n" for feature in sorted(features))
        self.writer.write(f"211-Features:\r\n{body}211 End\r\n".encode())
        await self.writer.drain()

    async def cmd_syst(self, argument: str) -> None:
        await self.reply(215, "UNIX Type: L8")

    async def cmd_noop(self, argument: str) -> None:
        await self.reply(200, "NOOP ok.")

    async def cmd_opts(self, argument: str) -> None:
        await self.reply(200, "Always in UTF8 mode.")

    async def cmd_type(self, argument: str) -> None:
        if argument.upper() in ("I", "A", "L 8"):
            await self.reply(200, f"Switching to {argument.upper()} mode.")
        else:
            await self.reply(504, "Unknown TYPE.")

    # -- navigation --------------------------------------------------------

    def resolve(self, argument: str) -> str:
        path = posixpath.normpath(posixpath.join(self.cwd, argument or "."))
        return "/" + path.lstrip("/")

    def entries(self, folder: str) -> dict[str, int | None] | None:
        """A folder's children (size, None for a folder); None if missing."""
        prefix = folder.rstrip("/") + "/"
        found = folder == "/"
        entries: dict[str, int | None] = {}
        for path, content in list(self.site.files.items()):
            if not path.startswith(prefix):
                continue
            found = True
            rest = path[len(prefix) :]
            if "/" in rest:
                entries[rest.split("/", 1)[0]] = None
            elif rest:
                entries[rest] = len(content)
        return entries if found else None

    async def cmd_pwd(self, argument: str) -> None:
        await self.reply(257, f'"{self.cwd}" is the current directory')

    async def cmd_cwd(self, argument: str) -> None:
        path = self.resolve(argument)
        if self.entries(path) is None:
            await self.reply(550, "Failed to change directory.")
        else:
            self.cwd = path
            await self.reply(250, "Directory successfully changed.")

    async def cmd_size(self, argument: str) -> None:
        content = self.site.files.get(self.resolve(argument))
        if content is None:
            await self.reply(550, "Could not get file size.")
        else:
            await self.reply(213, str(len(content)))

    # -- data connections --------------------------------------------------

    async def cmd_pasv(self, argument: str) -> None:
        port = await self.open_data()
        numbers = self.server.host.replace(".", ",")
        await self.reply(
            227, f"Entering Passive Mode ({numbers},{port >> 8},{port & 0xFF})."
        )

    async def cmd_epsv(self, argument: str) -> None:
        port = await self.open_data()
        await self.reply(229, f"Entering Extended Passive Mode (|||{port}|)")

    async def open_data(self) -> int:
        if self.data is not None:
            self.data.close()
        self.data = _Passive(self.server)
        return await self.data.start()

    async def send_data(self, payload: bytes) -> None:
        """Send one transfer's data on the passive connection, then 226."""
        data, self.data = self.data, None
        if data is None:
            await self.reply(425, "Use PORT or PASV first.")
            return
        try:
            if not self.protected:
                await self.reply(522, "Data connections must be encrypted.")
                return
            await self.reply(150, "Here comes the data.")
            try:
                writer = await data.connection()
            except (TimeoutError, OSError):
                await self.reply(425, "Failed to establish connection.")
                return
            if writer is None:
                await self.reply(522, "SSL connection failed: session reuse required")
                return
            try:
                writer.write(payload)
                await writer.drain()
            finally:
                await close(writer)
            await self.reply(226, "Transfer complete.")
        finally:
            data.close()

    def listing(self, argument: str) -> tuple[str, dict[str, int | None] | None]:
        # Options such as "-a" are not paths.
        words = [word for word in argument.split(" ") if not word.startswith("-")]
        folder = self.resolve(" ".join(words))
        return folder, self.entries(folder)

    async def cmd_mlsd(self, argument: str) -> None:
        if not self.server.mlsd:
            await self.reply(502, "Command not implemented.")
            return
        folder, entries = self.listing(argument)
        if entries is None:
            await self.reply(550, f"{folder}: no such folder.")
            return
        stamp = self.server.modified.strftime("%Y%m%d%H%M%S")
        lines = [
            f"type=dir;modify={stamp}; {name}"
            if size is None
            else f"type=file;size={size};modify={stamp}; {name}"
            for name, size in sorted(entries.items())
        ]
        await self.send_data("".join(f"{line}\r\n" for line in lines).encode())

    async def cmd_list(self, argument: str) -> None:
        folder, entries = self.listing(argument)
        if entries is None:
            await self.reply(550, f"{folder}: no such folder.")
            return
        when = self.server.modified
        if self.server.unix_list:
            month = _MONTHS[3 * when.month - 3 : 3 * when.month]
            stamp = f"{month} {when.day:2d} {when:%H:%M}"
            lines = [
                f"drwxr-xr-x    2 root     root         4096 {stamp} {name}"
                if size is None
                else f"-rw-r--r--    1 root     root     {size:8d} {stamp} {name}"
                for name, size in sorted(entries.items())
            ]
        else:
            # The format of Windows servers, which no printer uses.
            stamp = f"{when:%m-%d-%y  %I:%M%p}"
            lines = [
                f"{stamp}       <DIR>          {name}"
                if size is None
                else f"{stamp}       {size:>14d} {name}"
                for name, size in sorted(entries.items())
            ]
        await self.send_data("".join(f"{line}\r\n" for line in lines).encode())

    async def cmd_nlst(self, argument: str) -> None:
        folder, entries = self.listing(argument)
        if entries is None:
            await self.reply(550, f"{folder}: no such folder.")
            return
        names = "".join(f"{name}\r\n" for name in sorted(entries))
        await self.send_data(names.encode())

    async def cmd_retr(self, argument: str) -> None:
        content = self.site.files.get(self.resolve(argument))
        if content is None:
            await self.reply(550, "Failed to open file.")
            return
        await self.send_data(content)


class _Passive:
    """A passive data listener waiting for its one connection."""

    def __init__(self, server: FtpsServer) -> None:
        self.server = server
        self._listener: asyncio.Server | None = None
        self._ready: asyncio.Future[asyncio.StreamWriter | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        self._listener = await asyncio.start_server(self._accept, self.server.host, 0)
        return int(self._listener.sockets[0].getsockname()[1])

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._ready.done():
            writer.transport.abort()
            return
        self._task = asyncio.current_task()
        if self.server.clear_data:
            # A broken server: clear data after PROT P.
            self._ready.set_result(writer)
            return
        if not await self.server.upgrade(writer, data=True):
            if not self._ready.done():
                self._ready.set_exception(ConnectionError("data handshake failed"))
            return
        ssl_object = writer.get_extra_info("ssl_object")
        reused = bool(getattr(ssl_object, "session_reused", False))
        self.server.data_session_reused.append(reused)
        if self._ready.done():  # pragma: no cover - closed meanwhile
            writer.transport.abort()
            return
        if self.server.require_session_reuse and not reused:
            writer.transport.abort()
            self._ready.set_result(None)
            return
        self._ready.set_result(writer)

    async def connection(self) -> asyncio.StreamWriter | None:
        """The data connection (None: refused for not resuming the session)."""
        async with asyncio.timeout(self.server.handshake_timeout):
            return await asyncio.shield(self._ready)

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if not self._ready.done():
            self._ready.cancel()
        elif not self._ready.cancelled() and self._ready.exception() is None:
            writer = self._ready.result()
            if writer is not None and not writer.transport.is_closing():
                writer.transport.abort()


__all__ = ["FtpsServer", "FtpsSite", "Received"]
