"""A real MQTT broker for tests and the virtual farm: mosquitto in a subprocess.

Why mosquitto (Debian's ``mosquitto`` package) and not a broker of our own or
``amqtt``: Bambu printers and Bambu's cloud are MQTT 3.1.1 brokers behind TLS
with username/password logins, and mosquitto is the maintained reference
implementation of exactly that; its TLS is OpenSSL's, like the printers'. It
starts in about 10 ms, so every test gets its own broker with a generated
configuration: a TLS listener on a free 127.0.0.1 port (certificate chain and
key from the test PKI, no SAN needed on the broker side), a password file,
``allow_anonymous false`` and a per-start temporary directory.

What the tests need to see and do, and how:

* observe: mosquitto's own log (``log_dest stderr``; connections, logins
  refused, subscriptions) is parsed into :attr:`MqttBroker.connected_clients`
  and :attr:`MqttBroker.refused`;
* act: an internal client on a second, plain listener (127.0.0.1 only)
  publishes from the broker side (:meth:`MqttBroker.publish`), records every
  message (:attr:`MqttBroker.messages`) and drops a client by taking over its
  client id (:meth:`MqttBroker.disconnect`), which is what any broker does
  when the same id logs in again. The virtual printers connect there too;
  clients of the internal listener are not listed as connected clients;
* the front door: clients reach mosquitto through a small TCP front on
  :attr:`MqttBroker.port` that pipes bytes unchanged (TLS stays mosquitto's).
  It reads each TLS ClientHello on the way, because mosquitto does not log
  the server name (SNI) a client sent, and it opens only once the broker's
  own side is back after a restart: a printer is subscribed before any client
  can send it a request, as on a real printer, whose broker it is.

Credentials changed with :meth:`MqttBroker.set_users` are reloaded with
SIGHUP; like a real broker, mosquitto then drops clients whose login no longer
holds. If mosquitto is not installed, :meth:`MqttBroker.start` raises
:class:`MosquittoNotFoundError` (the test suite turns it into a skip).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import getpass
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tools.test_pki import IssuedCert

from .client import MessageHandler, MqttClient

_LOGGER = logging.getLogger(__name__)

type Payload = bytes | str | Mapping[str, Any]

MOSQUITTO_PATHS = ("mosquitto", "/usr/sbin/mosquitto")
BINARY_ENV = "BAMBU_MOSQUITTO"
"""Another mosquitto build to use (a path that does not exist: tests skip)."""
HOST = "127.0.0.1"
SERVICE_USER = "test-bench-service"
"""The internal account of the observer, the printers and take-overs."""
OBSERVER_ID = "test-bench-observer"
_START_TIMEOUT = 10.0
_LOG_TYPES = ("error", "warning", "notice", "information", "subscribe", "unsubscribe")


class MosquittoNotFoundError(RuntimeError):
    """The mosquitto binary is not installed (``apt-get install mosquitto``)."""


def find_mosquitto(candidates: Sequence[str] = MOSQUITTO_PATHS) -> str | None:
    """Path of the mosquitto binary (``$PATH``, then /usr/sbin), or None."""
    for candidate in candidates:
        if path := shutil.which(candidate):
            return path
    return None


def encode_payload(payload: Payload) -> bytes:
    """Bytes as is, text as UTF-8, mappings as compact JSON (like printers)."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def password_hash(password: str) -> str:
    """A mosquitto password-file hash (``$7$``: PBKDF2-SHA512, 101 rounds)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, 101)
    return (
        f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Snapshot of one connected client, for assertions in tests."""

    client_id: str
    username: str | None
    sni: str | None
    """TLS server name the client sent (None without TLS or without SNI)."""
    peer: str
    """``host:port`` mosquitto saw (the front's end of the pipe)."""
    keepalive: int
    subscriptions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Message:
    """One message routed by the broker, as its observer received it."""

    topic: str
    payload: bytes
    qos: int


@dataclass(slots=True)
class _Client:
    info: ClientInfo
    internal: bool
    subscriptions: dict[str, int] = field(default_factory=dict)


# mosquitto 2.0 log lines (``log_timestamp false``).
_NEW_CONNECTION = re.compile(r"^New connection from (.+):(\d+) on port (\d+)\.$")
_CONNECTED = re.compile(
    r"^New client connected from (.+):(\d+) as (.*) "
    r"\(p\d+, c\d+, k(\d+)(?:, u'(.*)')?\)\.$"
)
_TAKEN_OVER = re.compile(r"^Client (.*) already connected, closing old connection\.$")
_REFUSED = re.compile(r"^Client (.*) disconnected, not authorised\.$")
_GONE = re.compile(
    r"^(?:Client|Socket error on client|Bad socket read/write on client) (.*?)"
    r"(?: disconnected| closed its connection| has exceeded timeout| been"
    r" disconnected|, disconnecting|: )"
)
_SUBSCRIBED = re.compile(r"^([0-2]) (.+)$")


class MqttBroker:
    """mosquitto on 127.0.0.1 for one test (or the farm), observed and steered.

    ``certificate`` (a leaf of :mod:`tools.test_pki`, presented with its
    chain) makes the listener TLS; without it the listener is plain TCP.
    ``users`` maps usernames to passwords; ``None`` lets anyone in.
    ``restrict_topics`` gives the logins of ``users`` only what Bambu's cloud
    gives an account: reading ``device/+/report`` and writing
    ``device/+/request`` (a ``#`` subscription then receives nothing else).
    """

    def __init__(
        self,
        certificate: IssuedCert | None = None,
        *,
        users: Mapping[str, str] | None = None,
        port: int = 0,
        restrict_topics: bool = False,
        log_size: int = 1000,
        binary: str | None = None,
    ) -> None:
        """Configure; nothing runs before :meth:`start`."""
        self.certificate = certificate
        self.binary = binary or os.environ.get(BINARY_ENV) or None
        """The mosquitto executable; by default ``$BAMBU_MOSQUITTO`` or the
        one installed."""
        self.restrict_topics = restrict_topics
        self._users = None if users is None else dict(users)
        self._port = port
        self._service_password = secrets.token_urlsafe(16)
        self.messages: deque[Message] = deque(maxlen=log_size)
        """Every message routed while running, newest last (bounded)."""
        self.refused: deque[str] = deque(maxlen=log_size)
        """The reason of every refused login, newest last (bounded)."""
        self._sni_names: deque[str | None] = deque(maxlen=log_size)
        self._sni_by_port: dict[int, str | None] = {}
        self._internal_port = 0
        self._mosquitto_port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._directory: Path | None = None
        self._reader: asyncio.Task[None] | None = None
        self._front: _Front | None = None
        self._observer: MqttClient | None = None
        self._own_clients: weakref.WeakSet[MqttClient] = weakref.WeakSet()
        self._clients: dict[str, _Client] = {}
        self._pending: dict[str, int] = {}
        self._log_tail: deque[str] = deque(maxlen=50)
        self._reloads = 0

    # -- lifecycle -----------------------------------------------------------

    @property
    def port(self) -> int:
        """Where clients connect; kept across stop()/start()."""
        return self._port

    @property
    def internal_port(self) -> int:
        """The plain listener of the broker's own side (printers, observer)."""
        return self._internal_port

    @property
    def running(self) -> bool:
        """Whether mosquitto is running."""
        return self._process is not None and self._process.returncode is None

    @property
    def service_login(self) -> tuple[str, str]:
        """``(username, password)`` of the internal account."""
        return SERVICE_USER, self._service_password

    @property
    def users(self) -> dict[str, str] | None:
        """The logins clients may use (a copy; change with set_users)."""
        return None if self._users is None else dict(self._users)

    async def start(self) -> None:
        """Run mosquitto; after a stop(), on the same port (restart tests)."""
        if self._process is not None:
            raise RuntimeError("broker already running")
        binary = find_mosquitto((self.binary,) if self.binary else MOSQUITTO_PATHS)
        if binary is None:
            raise MosquittoNotFoundError(
                f"no mosquitto at {self.binary}"
                if self.binary
                else "mosquitto is not installed (scripts/setup installs it when root)"
            )
        loop = asyncio.get_running_loop()
        self._directory = Path(
            await loop.run_in_executor(None, tempfile.mkdtemp, "", "mosquitto-")
        )
        try:
            await self._start(binary)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, binary: str) -> None:
        for _attempt in range(5):
            # mosquitto's own ports are chosen again on every start (a port
            # freed by a stop may be taken meanwhile); the front's is kept.
            self._mosquitto_port = free_port()
            self._internal_port = free_port()
            if await self._spawn(binary):
                break
        else:
            raise RuntimeError("mosquitto did not start:\n" + self.log_tail())
        self._observer = self.own_client(
            OBSERVER_ID, subscriptions=[("#", 2)], on_message=self._observe
        )
        await self._observer.start(_START_TIMEOUT)
        # After a restart the printers log in again before the door opens.
        async with asyncio.timeout(_START_TIMEOUT):
            for client in list(self._own_clients):
                if client.started:
                    await client.wait_ready(_START_TIMEOUT)
        self._front = _Front(
            lambda: self._mosquitto_port,
            tls=self.certificate is not None,
            on_hello=self._hello,
        )
        self._port = await self._front.start(self._port)
        _LOGGER.debug("mosquitto listening on %s:%s", HOST, self._port)

    def own_client(
        self,
        client_id: str,
        *,
        subscriptions: Sequence[tuple[str, int]] = (),
        on_message: MessageHandler | None = None,
    ) -> MqttClient:
        """A client of the broker's own side (internal listener, service login).

        It follows the broker across restarts; :meth:`start` waits for the
        started ones to be back before clients can connect.
        """
        username, password = self.service_login
        client = MqttClient(
            lambda: self._internal_port,
            client_id=client_id,
            username=username,
            password=password,
            subscriptions=subscriptions,
            on_message=on_message,
        )
        self._own_clients.add(client)
        return client

    async def _spawn(self, binary: str) -> bool:
        """Start mosquitto; False when a port was taken (try other ports)."""
        if (directory := self._directory) is None:
            raise RuntimeError("no configuration directory")
        loop = asyncio.get_running_loop()
        config = await loop.run_in_executor(None, self._write_files, directory)
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        if (stream := self._process.stderr) is None:
            raise RuntimeError("mosquitto's log is not piped")
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                while line := await stream.readline():
                    text = line.decode("utf-8", "replace").rstrip("\n")
                    self._log_tail.append(text)
                    if text.startswith("mosquitto version") and text.endswith(
                        "running"
                    ):
                        self._reader = asyncio.create_task(
                            self._read_log(stream), name="mosquitto-log"
                        )
                        return True
        except TimeoutError:
            pass
        await self._kill()
        if any("Address already in use" in line for line in self._log_tail):
            return False
        raise RuntimeError("mosquitto did not start:\n" + self.log_tail())

    def _write_files(self, directory: Path) -> Path:
        """Config, password and ACL files (blocking: run in the executor)."""
        self._write_passwords(directory)
        lines = [
            "per_listener_settings false",
            f"allow_anonymous {'true' if self._users is None else 'false'}",
            f"password_file {directory / 'passwords'}",
            f"acl_file {directory / 'acl'}",
            "persistence false",
            "log_dest stderr",
            *(f"log_type {kind}" for kind in _LOG_TYPES),
            "log_timestamp false",
            "connection_messages true",
            # Never drop to the "mosquitto" user: it could not read the
            # owner-only key files of the test PKI.
            f"user {getpass.getuser()}",
            "max_keepalive 65535",
            f"listener {self._mosquitto_port} {HOST}",
        ]
        if self.certificate is not None:
            lines += [
                f"certfile {self.certificate.chain_path}",
                f"keyfile {self.certificate.key_path}",
            ]
        lines.append(f"listener {self._internal_port} {HOST}")
        acl = [f"user {SERVICE_USER}", "topic readwrite #", ""]
        if self.restrict_topics:
            acl += ["pattern read device/+/report", "pattern write device/+/request"]
        else:
            acl += ["pattern readwrite #"]
        (directory / "acl").write_text("\n".join(acl) + "\n")
        config = directory / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _write_passwords(self, directory: Path) -> None:
        logins = {**(self._users or {}), SERVICE_USER: self._service_password}
        path = directory / "passwords"
        path.touch(mode=0o600)
        path.write_text(
            "".join(f"{user}:{password_hash(pw)}\n" for user, pw in logins.items())
        )

    async def stop(self) -> None:
        """Stop mosquitto (every client is dropped, no will is sent)."""
        front, self._front = self._front, None
        if front is not None:
            await front.stop()
        observer, self._observer = self._observer, None
        if observer is not None:
            await observer.stop()
        await self._kill()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._clients.clear()
        self._pending.clear()
        self._sni_by_port.clear()
        directory, self._directory = self._directory, None
        if directory is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: shutil.rmtree(directory, ignore_errors=True)
            )

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        # Nothing to save (no persistence), and a broker that goes away is
        # what the tests mean by it: SIGKILL, not SIGTERM, which mosquitto
        # notices only at its next 100 ms loop turn (on every test's teardown).
        process.kill()
        await process.wait()

    async def __aenter__(self) -> MqttBroker:
        """Start the broker."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the broker."""
        await self.stop()

    async def set_users(self, users: Mapping[str, str] | None) -> None:
        """New logins; clients whose login no longer holds are dropped.

        Returns once mosquitto has reloaded them: a login attempted after
        this call is checked against the new list.
        """
        self._users = None if users is None else dict(users)
        if self._directory is None or not self.running:
            return  # written at the next start
        directory = self._directory
        await asyncio.get_running_loop().run_in_executor(
            None, self._write_files, directory
        )
        reloads = self._reloads
        if self._process is not None:
            self._process.send_signal(signal.SIGHUP)
        await self._until(lambda: self._reloads > reloads)

    # -- observation ---------------------------------------------------------

    @property
    def connected_clients(self) -> list[ClientInfo]:
        """Snapshot of the connected clients (not the broker's own side)."""
        return [
            replace(client.info, subscriptions=tuple(client.subscriptions))
            for client in self._clients.values()
            if not client.internal
        ]

    @property
    def sni_names_seen(self) -> list[str | None]:
        """Server names of every TLS ClientHello, in order (bounded)."""
        return list(self._sni_names)

    async def wait_for_client(
        self,
        client_id: str | None = None,
        *,
        subscribed_to: str | None = None,
        within: float = 5.0,
    ) -> ClientInfo:
        """Wait until a (given) client is connected (and holds a filter)."""

        def find() -> ClientInfo | None:
            for info in self.connected_clients:
                if client_id not in (None, info.client_id):
                    continue
                if subscribed_to is None or subscribed_to in info.subscriptions:
                    return info
            return None

        info = await self._until(find, within)
        if info is None:  # pragma: no cover - _until returns only a found one
            raise RuntimeError("no client")
        return info

    async def _until[T](self, probe: Callable[[], T], within: float = 5.0) -> T:
        """Poll what the log reader keeps up to date (bounded)."""
        async with asyncio.timeout(within):
            while not (value := probe()):  # noqa: ASYNC110 - fed by the log reader
                await asyncio.sleep(0.005)
            return value

    def log_tail(self) -> str:
        """The last lines mosquitto logged (for failure messages)."""
        return "\n".join(self._log_tail)

    # -- acting --------------------------------------------------------------

    def publish(self, topic: str, payload: Payload, qos: int = 0) -> bool:
        """Publish from the broker's side; False while the broker is down."""
        observer = self._observer
        if observer is None:
            return False
        return observer.publish(topic, encode_payload(payload), qos)

    async def disconnect(self, client_id: str) -> bool:
        """Drop one client like a network failure; False if not connected.

        The broker's own side logs in with the same client id, so mosquitto
        closes the old connection (MQTT 3.1.1 3.1.4-2), then leaves.
        """
        client = self._clients.get(client_id)
        if client is None or client.internal:
            return False
        username, password = self.service_login
        taker = MqttClient(
            lambda: self._internal_port,
            client_id=client_id,
            username=username,
            password=password,
        )
        try:
            await taker.start()
        finally:
            await taker.stop()
        await self._until(
            lambda: (
                self._clients.get(client_id) is None
                or not self._clients[client_id].internal
            )
        )
        return True

    async def disconnect_all(self) -> int:
        """Drop every client (not the broker's own side); returns how many."""
        dropped = 0
        for info in self.connected_clients:
            dropped += await self.disconnect(info.client_id)
        return dropped

    # -- internals -----------------------------------------------------------

    def _hello(self, upstream_port: int, name: str | None) -> None:
        """The front piped a connection (its SNI, when TLS, on the way)."""
        if self.certificate is not None:
            self._sni_names.append(name)
        _bounded_put(self._sni_by_port, upstream_port, name)

    def _observe(self, topic: str, payload: bytes, qos: int) -> None:
        self.messages.append(Message(topic, payload, qos))

    async def _read_log(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            self._log_tail.append(text)
            try:
                self._parse(text)
            except Exception:
                _LOGGER.exception("mosquitto log line not understood: %s", text)

    def _parse(self, line: str) -> None:
        if match := _NEW_CONNECTION.match(line):
            _bounded_put(self._pending, f"{match[1]}:{match[2]}", int(match[3]))
        elif match := _CONNECTED.match(line):
            peer = f"{match[1]}:{match[2]}"
            listener = self._pending.pop(peer, self._mosquitto_port)
            sni = self._sni_by_port.pop(int(match[2]), None)
            self._clients[match[3]] = _Client(
                ClientInfo(
                    client_id=match[3],
                    username=match[5],
                    sni=sni,
                    peer=peer,
                    keepalive=int(match[4]),
                    subscriptions=(),
                ),
                internal=listener == self._internal_port,
            )
        elif match := _TAKEN_OVER.match(line):
            self._clients.pop(match[1], None)
        elif match := _REFUSED.match(line):
            self.refused.append("not authorised")
            self._clients.pop(match[1], None)
        elif match := _GONE.match(line):
            self._clients.pop(match[1], None)
        elif line == "Reloading config.":
            self._reloads += 1
        else:
            self._parse_subscription(line)

    def _parse_subscription(self, line: str) -> None:
        """``<id> <qos> <filter>`` (subscribe) or ``<id> <filter>`` (unsubscribe)."""
        for client_id in sorted(self._clients, key=len, reverse=True):
            if not line.startswith(client_id + " "):
                continue
            rest = line[len(client_id) + 1 :]
            client = self._clients[client_id]
            if match := _SUBSCRIBED.match(rest):
                client.subscriptions[match[2]] = int(match[1])
            else:
                client.subscriptions.pop(rest, None)
            return


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: a broker whose test process was killed (-9) stops too."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _bounded_put[K, V](table: dict[K, V], key: K, value: V, limit: int = 256) -> None:
    """Remember ``value``; the oldest entries go (connections never completed)."""
    table[key] = value
    while len(table) > limit:
        del table[next(iter(table))]


class _Front:
    """The broker's front door: pipes to mosquitto, records each TLS SNI."""

    def __init__(
        self,
        upstream_port: Callable[[], int],
        *,
        tls: bool,
        on_hello: Callable[[int, str | None], None],
    ) -> None:
        """``on_hello(upstream local port, SNI)`` for every connection piped."""
        self._upstream_port = upstream_port
        self._tls = tls
        self._on_hello = on_hello
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, port: int) -> int:
        """Listen on ``port`` (0: any); returns the port."""
        self._server = await asyncio.start_server(self._handle, HOST, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the door and every piped connection, however far it got.

        A connection accepted just before ``close()`` may get its handler
        only after the first sweep; ``wait_closed`` waits for every client,
        so sweep until none is left, and abort the server's own transports.
        """
        server, self._server = self._server, None
        if server is not None:
            server.close()
        while True:
            if server is not None:
                server.abort_clients()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)
            if not self._tasks and not self._writers:
                break
        if server is not None:
            async with asyncio.timeout(5):
                await server.wait_closed()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._server is None:  # accepted while stopping
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:  # always: asyncio runs handlers as tasks
            self._tasks.add(task)
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            hello, name = b"", None
            if self._tls:
                hello = await _read_tls_record(reader)
                name = server_name(hello)
            up_reader, upstream = await asyncio.open_connection(
                HOST, self._upstream_port()
            )
            self._writers.add(upstream)
            self._on_hello(upstream.get_extra_info("sockname")[1], name)
            upstream.write(hello)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            for stream in (writer, upstream):
                if stream is not None:
                    self._writers.discard(stream)
                    stream.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then close the other side's writing half too."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        if writer.can_write_eof() and not writer.transport.is_closing():
            with contextlib.suppress(OSError):
                writer.write_eof()


async def _read_tls_record(reader: asyncio.StreamReader) -> bytes:
    """One TLS record (header included): the ClientHello."""
    header = await reader.readexactly(5)
    if header[0] != 0x16:  # handshake
        raise ValueError("not a TLS handshake")
    length = int.from_bytes(header[3:5])
    return header + await reader.readexactly(length)


def server_name(record: bytes) -> str | None:
    """The SNI host name of a TLS ClientHello record, or None without one.

    RFC 8446 4.1.2 / RFC 6066 3; raises ValueError for a record that is not a
    well-formed ClientHello.
    """
    if len(record) < 9 or record[0] != 0x16 or record[5] != 0x01:
        raise ValueError("not a TLS ClientHello")
    body = memoryview(record)[9:]
    pos = 2 + 32  # legacy_version, random
    pos += 1 + body[pos]  # legacy_session_id
    pos += 2 + int.from_bytes(body[pos : pos + 2])  # cipher_suites
    pos += 1 + body[pos]  # legacy_compression_methods
    end = pos + 2 + int.from_bytes(body[pos : pos + 2])
    pos += 2
    if end > len(body):
        raise ValueError("truncated ClientHello")
    while pos + 4 <= end:
        kind = int.from_bytes(body[pos : pos + 2])
        size = int.from_bytes(body[pos + 2 : pos + 4])
        data = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if kind != 0:  # server_name
            continue
        # server_name_list: length, then (type, length, name) entries.
        index = 2
        while index + 3 <= len(data):
            name_type = data[index]
            name_length = int.from_bytes(data[index + 1 : index + 3])
            name = bytes(data[index + 3 : index + 3 + name_length])
            index += 3 + name_length
            if name_type == 0:
                return name.decode("ascii")
    return None
