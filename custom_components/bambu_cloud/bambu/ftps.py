"""Read a printer's storage over FTPS (PROTOCOL.md section 4.5).

Printers serve their SD card / internal storage over FTP with *implicit* TLS
on port 990: the TLS handshake comes first, before any FTP line. The user is
``bblp`` and the password the printer's LAN access code, so the access code
is sent only on a connection whose handshake verified the printer against
the pinned context (``tls.printer_context``) with the hostname set to the
printer's serial (printers carry it in the certificate's CN), never its IP.

Data connections are passive and protected too (``PROT P``), wrapped with the
same context and the control connection's TLS session: printers, like
vsftpd with ``require_ssl_reuse``, refuse a data connection that does not
resume it. The address of a ``PASV`` answer is ignored (ftplib connects to
the control connection's peer), so a printer cannot send us elsewhere.

Everything here is blocking except the ``async_`` methods of
:class:`PrinterStorage`, which run the blocking work in the loop's default
executor. Each operation opens its own session and finishes within the
configured ``timeouts.file_transfer``; printers accept very few FTP sessions,
so callers serialise them per printer (``BambuHub`` does).

Nothing here imports Home Assistant.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ftplib
import functools
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .errors import BambuError
from .models import valid_serial
from .tls import classify_tls_error

_LOGGER = logging.getLogger(__name__)

USER: Final = "bblp"
# Where printers keep project files: the storage root, the files Bambu
# Studio sends ("cache") and the files printed from MakerWorld ("model").
FOLDERS: Final = ("/", "/cache", "/model")
PROJECT_SUFFIX: Final = ".3mf"
# A job's .3mf holds the G-code, thumbnails and settings of every plate: a
# few MB usually, tens for big multi-plate projects.
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
# A folder listing of a few hundred files is a few tens of kilobytes.
MAX_LISTING_BYTES: Final = 1024 * 1024
MAX_PATH_CHARS: Final = 1024
MAX_NAME_CHARS: Final = 255
_CHUNK: Final = 64 * 1024
# Saying goodbye is a courtesy: it never holds an operation up for long.
_QUIT_TIMEOUT: Final = 2.0

_UNIX_LIST = re.compile(
    r"^(?P<kind>[-dlbcps])\S{9}\S*\s+\d+\s+\S+\s+\S+\s+(?P<size>\d+)\s+"
    r"(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<when>\d{1,2}:\d{2}|\d{4})"
    r" (?P<name>.+)$"
)
_MONTHS: Final = "janfebmaraprmayjunjulaugsepoctnovdec"


class StorageErrorReason(StrEnum):
    """Why the printer's storage could not be read; each one a user can act on."""

    # No LAN address or access code: LAN access is off or not set up.
    NO_ADDRESS = "no_address"
    # Nothing answered at the address (refused, unreachable, reset, busy).
    CONNECTION = "connection"
    # The printer's certificate was refused (``detail``: unknown_ca, ...).
    TLS = "tls"
    # The printer refused the access code.
    AUTH = "auth"
    TIMEOUT = "timeout"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    # A path with "..", control characters or no file name.
    INVALID_PATH = "invalid_path"
    # An answer no FTP server should give.
    PROTOCOL = "protocol"


class StorageError(BambuError):
    """Reading the printer's storage failed; ``reason`` says why.

    ``detail`` is a short code of ours (a TLS error kind, an FTP reply code),
    never text from the printer and never a credential, so it may be logged.
    """

    def __init__(self, reason: StorageErrorReason, detail: str | None = None) -> None:
        """Keep the reason and the optional detail code."""
        super().__init__(reason.value if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteFile:
    """A file on the printer's storage."""

    # Absolute, checked with ``checked_path``.
    path: str
    size: int | None = None
    # UTC; listings without a year or zone are read as UTC, best effort.
    modified: dt.datetime | None = None

    @property
    def name(self) -> str:
        """The file name without its folder."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        """The folder holding the file ("/" for the storage root)."""
        return self.path.rsplit("/", 1)[0] or "/"


def checked_path(path: str) -> str:
    """Return ``path`` as a clean absolute path, or raise INVALID_PATH.

    A path becomes an FTP command argument: control characters would end
    the command line early (and smuggle another), and ".." could leave the
    folder the caller meant. Empty and "." segments are dropped.
    """
    if (
        not isinstance(path, str)
        or not path
        or len(path) > MAX_PATH_CHARS
        or "\\" in path
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in path)
    ):
        raise StorageError(StorageErrorReason.INVALID_PATH)
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if any(part == ".." or len(part) > MAX_NAME_CHARS for part in parts):
        raise StorageError(StorageErrorReason.INVALID_PATH)
    return "/" + "/".join(parts)


def _file_name(name: str) -> str | None:
    """A listed name if it is a plain project file name, else None."""
    name = name.rsplit("/", 1)[-1]
    if (
        not name
        or name in (".", "..")
        or len(name) > MAX_NAME_CHARS
        or "\\" in name
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in name)
        or not name.lower().endswith(PROJECT_SUFFIX)
    ):
        return None
    return name


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def _mlsd_time(value: str | None) -> dt.datetime | None:
    """``YYYYMMDDHHMMSS[.sss]`` (UTC, RFC 3659) as an aware datetime."""
    if value is None:
        return None
    try:
        return dt.datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def parse_mlsd(lines: Iterable[str], folder: str) -> list[RemoteFile]:
    """Project files of an MLSD listing (``fact=value;... name``)."""
    found: list[RemoteFile] = []
    for line in lines:
        facts_text, sep, raw_name = line.partition(" ")
        if not sep or (name := _file_name(raw_name)) is None:
            continue
        facts: dict[str, str] = {}
        for fact in facts_text.split(";"):
            key, eq, value = fact.partition("=")
            if eq:
                facts[key.strip().lower()] = value.strip()
        if facts.get("type", "file").lower() != "file":
            continue
        size = facts.get("size", "")
        found.append(
            RemoteFile(
                path=_join(folder, name),
                size=int(size) if size.isascii() and size.isdigit() else None,
                modified=_mlsd_time(facts.get("modify")),
            )
        )
    return found


def _list_time(month: str, day: str, when: str, now: dt.datetime) -> dt.datetime | None:
    """The time of a Unix listing line; a date without a year is in the past year."""
    position = _MONTHS.find(month.lower())
    if position < 0 or position % 3:
        return None
    number = position // 3 + 1
    try:
        if ":" in when:
            hour, minute = (int(part) for part in when.split(":"))
            moment = dt.datetime(
                now.year, number, int(day), hour, minute, tzinfo=dt.UTC
            )
            if moment > now + dt.timedelta(days=1):
                moment = moment.replace(year=now.year - 1)
            return moment
        return dt.datetime(int(when), number, int(day), tzinfo=dt.UTC)
    except ValueError:
        return None


def parse_list(
    lines: Iterable[str], folder: str, *, now: dt.datetime | None = None
) -> list[RemoteFile] | None:
    """Project files of a Unix ``LIST``; None when no line had that format."""
    now = now or dt.datetime.now(dt.UTC)
    found: list[RemoteFile] = []
    understood = False
    for line in lines:
        match = _UNIX_LIST.match(line)
        if match is None:
            continue
        understood = True
        if match["kind"] != "-" or (name := _file_name(match["name"])) is None:
            continue
        found.append(
            RemoteFile(
                path=_join(folder, name),
                size=int(match["size"]),
                modified=_list_time(match["month"], match["day"], match["when"], now),
            )
        )
    return found if understood else None


def parse_nlst(lines: Iterable[str], folder: str) -> list[RemoteFile]:
    """Project files of an ``NLST`` (names, sometimes with their folder)."""
    return [
        RemoteFile(path=_join(folder, name))
        for line in lines
        if (name := _file_name(line)) is not None
    ]


class _Deadline:
    """One operation's time budget, handed to every blocking socket call."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left


class _Ftps(ftplib.FTP):
    """ftplib's FTP with implicit TLS and protected, resumed data connections.

    Only the transport changes: ftplib still parses replies, PASV and
    multi-line answers. ``FTP_TLS`` is not used because it negotiates
    explicit TLS (``AUTH TLS``), which printers do not speak.
    """

    def __init__(
        self, context: ssl.SSLContext, serial: str, deadline: _Deadline
    ) -> None:
        super().__init__()
        self._context = context
        self._serial = serial
        self._deadline = deadline
        self._tls: ssl.SSLSocket | None = None

    def open(self, host: str, port: int) -> None:
        """Connect, verify the printer, then read its greeting."""
        timeout = self._deadline.remaining()
        self.host, self.port, self.timeout = host, port, timeout
        raw = socket.create_connection((host, port), timeout)
        try:
            # The handshake happens here, with SNI and the hostname check set
            # to the serial; it raises before any FTP line when the printer is
            # not the one we trust.
            tls = self._context.wrap_socket(raw, server_hostname=self._serial)
        except BaseException:
            raw.close()
            raise
        self._tls = tls
        self.sock = tls
        self.af = tls.family
        self.file = tls.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()

    def sendcmd(self, cmd: str) -> str:
        """Send a command within the operation's time budget."""
        self._budget()
        return super().sendcmd(cmd)

    def _budget(self) -> None:
        remaining = self._deadline.remaining()
        self.timeout = remaining
        if self.sock is not None:
            self.sock.settimeout(remaining)

    def _open_data(self, cmd: str) -> ssl.SSLSocket:
        """Open the data connection and resume the control session's TLS on it."""
        self._budget()
        conn, _ = self.ntransfercmd(cmd)
        if self._tls is None:  # pragma: no cover - open() always ran first
            conn.close()
            raise StorageError(StorageErrorReason.PROTOCOL, "not connected")
        try:
            return self._context.wrap_socket(
                conn, server_hostname=self._serial, session=self._tls.session
            )
        except BaseException:
            conn.close()
            raise

    def read_data(self, cmd: str, limit: int) -> bytes:
        """Run a transfer command; the data, at most ``limit`` bytes.

        More than ``limit`` bytes raise TOO_LARGE at once (the data
        connection is dropped, the session is not used again).
        """
        conn = self._open_data(cmd)
        chunks: list[bytes] = []
        total = 0
        with conn:
            while True:
                conn.settimeout(self._deadline.remaining())
                chunk = conn.recv(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise StorageError(StorageErrorReason.TOO_LARGE)
                chunks.append(chunk)
            with contextlib.suppress(OSError):
                conn.unwrap()
        self._budget()
        self.voidresp()
        return b"".join(chunks)

    def goodbye(self) -> None:
        """Say QUIT if time allows, then close; never raises."""
        try:
            if self.sock is not None:
                self.sock.settimeout(min(_QUIT_TIMEOUT, self._deadline.remaining()))
                self.voidcmd("QUIT")
        except (OSError, EOFError, ftplib.Error):
            pass
        finally:
            self.close()


class PrinterStorage:
    """One printer's storage: list project files and read one.

    ``context`` must be the printer's verifying context (pinned anchors,
    hostname check on); ``host`` its LAN address. Every call opens its own
    FTPS session and closes it; ``timeout`` bounds each whole call.
    """

    def __init__(
        self,
        *,
        host: str,
        serial: str,
        access_code: str,
        context: ssl.SSLContext,
        port: int = 990,
        timeout: float = 30.0,
    ) -> None:
        """Keep where and how to connect; nothing connects yet."""
        if not valid_serial(serial):
            raise ValueError("printer serial must be ASCII letters and digits")
        if not context.check_hostname or context.verify_mode != ssl.CERT_REQUIRED:
            # The access code goes only to a verified printer.
            raise ValueError("the printer context must verify the printer")
        self.host = host
        self.port = port
        self.serial = serial
        self._access_code = access_code
        self._context = context
        self.timeout = timeout

    def __repr__(self) -> str:
        """Where the storage is, never the access code."""
        return f"PrinterStorage({self.serial} at {self.host}:{self.port})"

    # ------------------------------------------------------------- async

    async def async_list_files(
        self, folders: Iterable[str] = FOLDERS
    ) -> tuple[RemoteFile, ...]:
        """``list_files`` in the executor."""
        return await asyncio.get_running_loop().run_in_executor(
            None, self.list_files, tuple(folders)
        )

    async def async_read_file(
        self, path: str, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> bytes:
        """``read_file`` in the executor."""
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.read_file, path, max_bytes=max_bytes)
        )

    # ---------------------------------------------------------- blocking

    def list_files(self, folders: Iterable[str] = FOLDERS) -> tuple[RemoteFile, ...]:
        """The project files (``.3mf``) of the folders; missing folders are skipped.

        Blocking. Raises StorageError.
        """
        checked = [checked_path(folder) for folder in folders]
        found: dict[str, RemoteFile] = {}
        with self._session() as ftp:
            features = _features(ftp)
            for folder in checked:
                for remote in _list_folder(ftp, folder, mlsd="MLST" in features):
                    found.setdefault(remote.path, remote)
        return tuple(found.values())

    def read_file(self, path: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        """The content of one file, at most ``max_bytes``.

        Blocking. Raises StorageError: NOT_FOUND, TOO_LARGE (announced by
        ``SIZE`` or found while reading), INVALID_PATH, ...
        """
        path = checked_path(path)
        if path == "/":
            raise StorageError(StorageErrorReason.INVALID_PATH)
        with self._session() as ftp:
            size = _size(ftp, path)
            if size is not None and size > max_bytes:
                raise StorageError(StorageErrorReason.TOO_LARGE)
            data = ftp.read_data(f"RETR {path}", max_bytes)
        if size is not None and len(data) != size:
            # The transfer was cut short (a TCP close without TLS close_notify).
            raise StorageError(StorageErrorReason.PROTOCOL, "short")
        return data

    @contextlib.contextmanager
    def _session(self) -> Iterator[_Ftps]:
        """A logged-in session, closed afterwards; failures as StorageError."""
        ftp = _Ftps(self._context, self.serial, _Deadline(self.timeout))
        try:
            with _translated(self.serial):
                ftp.open(self.host, self.port)
                ftp.login(USER, self._access_code)
                ftp.voidcmd("PBSZ 0")
                ftp.voidcmd("PROT P")
                ftp.voidcmd("TYPE I")
                yield ftp
        finally:
            ftp.goodbye()


@contextlib.contextmanager
def _translated(serial: str) -> Iterator[None]:
    """Map socket, TLS and FTP failures to StorageError."""
    try:
        yield
    except StorageError as err:
        _LOGGER.debug("%s: storage: %s", serial, err)
        raise
    except TimeoutError as err:
        _LOGGER.debug("%s: storage timed out", serial)
        raise StorageError(StorageErrorReason.TIMEOUT) from err
    except ssl.SSLCertVerificationError as err:
        kind = classify_tls_error(err)
        _LOGGER.debug("%s: storage certificate refused (%s)", serial, kind)
        raise StorageError(StorageErrorReason.TLS, kind) from err
    except ssl.SSLError as err:
        _LOGGER.debug("%s: storage TLS failed: %s", serial, err.reason)
        raise StorageError(StorageErrorReason.TLS, "other") from err
    except OSError as err:
        _LOGGER.debug("%s: storage unreachable: %s", serial, type(err).__name__)
        raise StorageError(StorageErrorReason.CONNECTION) from err
    except (ftplib.error_perm, ftplib.error_temp) as err:
        raise _reply_error(err) from err
    except (ftplib.Error, EOFError, UnicodeError, ValueError) as err:
        _LOGGER.debug("%s: storage answered oddly: %s", serial, type(err).__name__)
        raise StorageError(StorageErrorReason.PROTOCOL) from err


def _reply_code(err: ftplib.Error) -> str:
    text = str(err.args[0]) if err.args else ""
    return text[:3] if text[:3].isdigit() else ""


def _reply_error(err: ftplib.Error) -> StorageError:
    """An FTP error reply as StorageError (the reply code as detail)."""
    code = _reply_code(err)
    if code == "530":
        return StorageError(StorageErrorReason.AUTH, code)
    if code == "421":
        # Too many sessions, or the printer is going away: try again later.
        return StorageError(StorageErrorReason.CONNECTION, code)
    if code in ("450", "550"):
        return StorageError(StorageErrorReason.NOT_FOUND, code)
    return StorageError(StorageErrorReason.PROTOCOL, code or None)


def _features(ftp: _Ftps) -> frozenset[str]:
    """What ``FEAT`` lists (first word of each line, upper case)."""
    try:
        reply = ftp.sendcmd("FEAT")
    except ftplib.error_perm:
        return frozenset()
    return frozenset(
        line.split()[0].upper() for line in reply.splitlines()[1:-1] if line.strip()
    )


def _size(ftp: _Ftps, path: str) -> int | None:
    """``SIZE`` of a file; None when the server does not say (not an error)."""
    try:
        reply = ftp.sendcmd(f"SIZE {path}")
    except ftplib.error_perm as err:
        if _reply_code(err) == "550":
            raise StorageError(StorageErrorReason.NOT_FOUND, "550") from err
        return None
    value = reply[3:].strip()
    return int(value) if reply.startswith("213") and value.isdigit() else None


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines()


def _list_folder(ftp: _Ftps, folder: str, *, mlsd: bool) -> list[RemoteFile]:
    """One folder's project files: MLSD if offered, else LIST, else NLST.

    A missing folder (550) has none: printers differ in the folders they have.
    """
    try:
        if mlsd:
            try:
                data = ftp.read_data(f"MLSD {folder}", MAX_LISTING_BYTES)
                return parse_mlsd(_lines(data), folder)
            except ftplib.error_perm as err:
                if _reply_code(err) == "550":
                    raise
        data = ftp.read_data(f"LIST {folder}", MAX_LISTING_BYTES)
        listed = parse_list(_lines(data), folder)
        if listed is not None:
            return listed
        data = ftp.read_data(f"NLST {folder}", MAX_LISTING_BYTES)
        return parse_nlst(_lines(data), folder)
    except ftplib.error_perm as err:
        if _reply_code(err) == "550":
            return []
        raise
    except StorageError as err:
        # The only one read_data raises: TOO_LARGE, for a listing absurd.
        raise StorageError(StorageErrorReason.PROTOCOL, "listing") from err


__all__ = [
    "DEFAULT_MAX_BYTES",
    "FOLDERS",
    "PrinterStorage",
    "RemoteFile",
    "StorageError",
    "StorageErrorReason",
    "checked_path",
    "parse_list",
    "parse_mlsd",
    "parse_nlst",
]
