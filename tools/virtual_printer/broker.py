"""A small asyncio MQTT 3.1.1 broker for tests and the virtual printer farm.

Why our own broker: integration tests must talk to a REAL broker over TLS on
127.0.0.1 (like a printer's port 8883) while keeping full control of it from
the test: refuse credentials, kick clients, restart on the same port, see the
SNI each client sent and inject reports from the "printer" side.

Scope (what Bambu clients use, nothing more): CONNECT with username/password,
clean sessions only, SUBSCRIBE/UNSUBSCRIBE with ``+``/``#`` filters, PUBLISH
QoS 0 and 1, PINGREQ, DISCONNECT, will messages and keepalive (1.5x).
QoS 2 and retained messages are not supported: a QoS 2 PUBLISH closes the
connection and the retain flag is ignored. Any protocol violation closes the
connection. Every buffer is bounded (packet size, clients, subscriptions,
logs, per-client write buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import ssl
import struct
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_LOGGER = logging.getLogger(__name__)

type Authenticator = Callable[[str | None, str | None], bool]
"""``(username, password) -> allowed``; ``None`` when the flag was absent."""
type PublishHook = Callable[[str, bytes, str], None]
"""``(topic, payload, client_id)`` for every PUBLISH received from a client."""
type Payload = bytes | str | Mapping[str, Any]

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

RC_ACCEPTED = 0
RC_BAD_PROTOCOL = 1
RC_BAD_CLIENT_ID = 2
RC_NOT_AUTHORISED = 5
SUBACK_FAILURE = 0x80

_CLOSE_TIMEOUT = 2.0


class MalformedPacketError(Exception):
    """A client broke the protocol; the connection is closed."""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Snapshot of one connected client, for assertions in tests."""

    client_id: str
    username: str | None
    sni: str | None
    """TLS server name the client sent (None without TLS or without SNI)."""
    peer: str
    keepalive: int
    subscriptions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Message:
    """One routed message; ``client_id`` is None when the broker injected it."""

    topic: str
    payload: bytes
    qos: int
    client_id: str | None


@dataclass(slots=True)
class _Session:
    client_id: str
    username: str | None
    sni: str | None
    peer: str
    keepalive: int
    writer: asyncio.StreamWriter
    will: Message | None
    subscriptions: dict[str, int] = field(default_factory=dict)
    packet_ids: itertools.cycle[int] = field(
        default_factory=lambda: itertools.cycle(range(1, 65536))
    )

    def info(self) -> ClientInfo:
        return ClientInfo(
            self.client_id,
            self.username,
            self.sni,
            self.peer,
            self.keepalive,
            tuple(self.subscriptions),
        )


class _Body:
    """Cursor over a packet body; running past the end is a protocol error."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        if self._pos + size > len(self._data):
            raise MalformedPacketError("packet too short")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("!H", self.take(2))[0]
        return value

    def binary(self) -> bytes:
        return self.take(self.u16())

    def string(self) -> str:
        try:
            text = self.binary().decode("utf-8")
        except UnicodeDecodeError as err:
            raise MalformedPacketError("string is not UTF-8") from err
        if "\x00" in text:
            raise MalformedPacketError("string contains U+0000")
        return text

    def rest(self) -> bytes:
        return self.take(len(self._data) - self._pos)

    def more(self) -> bool:
        return self._pos < len(self._data)


def _encode_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _packet(first: int, body: bytes = b"") -> bytes:
    return bytes([first]) + _encode_length(len(body)) + body


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def valid_topic_filter(topic_filter: str) -> bool:
    """MQTT filter rules: ``#`` only as the last level, wildcards fill a level."""
    if not topic_filter or "\x00" in topic_filter:
        return False
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def valid_topic_name(topic: str) -> bool:
    """Topic names (what is published to) are non-empty and wildcard-free."""
    return bool(topic) and not any(c in topic for c in "+#\x00")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Match per MQTT 3.1.1 4.7, including the ``$`` topic exception."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    parts = topic.split("/")
    filter_parts = topic_filter.split("/")
    for index, part in enumerate(filter_parts):
        if part == "#":
            return True
        if index >= len(parts) or part not in ("+", parts[index]):
            return False
    return len(filter_parts) == len(parts)


def encode_payload(payload: Payload) -> bytes:
    """Bytes as is, text as UTF-8, mappings as compact JSON (like printers)."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


class MqttBroker:
    """MQTT 3.1.1 broker on 127.0.0.1, TLS when given a server SSLContext.

    ``users`` (username -> password) and ``authenticate`` both gate CONNECT;
    with neither, everyone is allowed. A refused client gets CONNACK 5.
    ``authorize_subscribe(client_id, topic_filter)`` may deny single filters
    (SUBACK 0x80), e.g. to mimic the cloud broker refusing ``#``.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        authenticate: Authenticator | None = None,
        authorize_subscribe: Callable[[str, str], bool] | None = None,
        max_packet_size: int = 1 << 20,
        max_connections: int = 64,
        max_subscriptions: int = 64,
        max_write_buffer: int = 4 << 20,
        connect_timeout: float = 10.0,
        log_size: int = 1000,
    ) -> None:
        self.ssl_context = ssl_context
        self.host = host
        self.users: dict[str, str] | None = None if users is None else dict(users)
        self.authenticate = authenticate
        self.authorize_subscribe = authorize_subscribe
        self.max_packet_size = max_packet_size
        self.max_connections = max_connections
        self.max_subscriptions = max_subscriptions
        self.max_write_buffer = max_write_buffer
        self.connect_timeout = connect_timeout
        self.on_publish: list[PublishHook] = []
        self.messages: deque[Message] = deque(maxlen=log_size)
        """Every routed message, newest last (bounded)."""
        self.sni_names_seen: deque[str | None] = deque(maxlen=log_size)
        """Server names of every TLS ClientHello, in order (bounded)."""
        self.refused: deque[tuple[str | None, str]] = deque(maxlen=log_size)
        """``(username, reason)`` of refused CONNECTs, newest last (bounded)."""
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: dict[str, _Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sni_by_conn: weakref.WeakKeyDictionary[object, str | None] = (
            weakref.WeakKeyDictionary()
        )
        self._sni_installed = False
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------

    @property
    def port(self) -> int:
        """Listening port; the ephemeral one is kept across stop()/start()."""
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server socket is open."""
        return self._server is not None

    async def start(self) -> None:
        """Listen; after a stop(), rebind the same port (restart tests)."""
        if self._server is not None:
            raise RuntimeError("broker already running")
        if self.ssl_context is not None and not self._sni_installed:
            self._install_sni_callback(self.ssl_context)
        self._stopping = False
        self._server = await asyncio.start_server(
            self._handle,
            self.host,
            self._port,
            ssl=self.ssl_context,
            ssl_handshake_timeout=self.connect_timeout if self.ssl_context else None,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        _LOGGER.debug("MQTT broker listening on %s:%s", self.host, self._port)

    async def stop(self) -> None:
        """Close the listener and every connection (no wills are sent)."""
        self._stopping = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
            server.abort_clients()
        for session in list(self._sessions.values()):
            session.writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        self._sessions.clear()

    async def disconnect_all(self) -> int:
        """Drop every client like a network failure; returns how many."""
        sessions = list(self._sessions.values())
        tasks = list(self._tasks)
        for session in sessions:
            session.writer.transport.abort()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT)
        return len(sessions)

    async def disconnect(self, client_id: str) -> bool:
        """Drop one client by id; False if it is not connected."""
        session = self._sessions.get(client_id)
        if session is None:
            return False
        session.writer.transport.abort()
        for _ in range(int(_CLOSE_TIMEOUT / 0.01)):
            if self._sessions.get(client_id) is not session:
                break
            await asyncio.sleep(0.01)
        return True

    async def __aenter__(self) -> MqttBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- observation -------------------------------------------------------

    @property
    def connected_clients(self) -> list[ClientInfo]:
        """Snapshot of the connected clients, in connection order."""
        return [session.info() for session in self._sessions.values()]

    async def wait_for_client(
        self,
        client_id: str | None = None,
        *,
        subscribed_to: str | None = None,
        within: float = 5.0,
    ) -> ClientInfo:
        """Wait until a (given) client is connected (and holds a filter)."""
        async with asyncio.timeout(within):
            while True:
                for info in self.connected_clients:
                    if client_id not in (None, info.client_id):
                        continue
                    if subscribed_to is None or subscribed_to in info.subscriptions:
                        return info
                await asyncio.sleep(0.01)

    def add_publish_hook(self, hook: PublishHook) -> Callable[[], None]:
        """Register ``hook`` for client PUBLISHes; returns the remover."""
        self.on_publish.append(hook)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self.on_publish.remove(hook)

        return remove

    # -- injection ---------------------------------------------------------

    def publish(self, topic: str, payload: Payload, qos: int = 0) -> int:
        """Route a message from the broker side; returns the deliveries made.

        Publish hooks are NOT called for these, so a printer can answer
        requests without seeing its own reports.
        """
        if not valid_topic_name(topic):
            raise ValueError(f"invalid topic {topic!r}")
        if qos not in (0, 1):
            raise ValueError("only QoS 0 and 1 are supported")
        return self._route(Message(topic, encode_payload(payload), qos, None))

    # -- internals ---------------------------------------------------------

    def _install_sni_callback(self, ctx: ssl.SSLContext) -> None:
        """Chain onto the context's sni_callback to learn each server name."""
        original = ctx.sni_callback

        def record(
            sslobj: ssl.SSLObject, name: str, context: ssl.SSLContext
        ) -> int | None:
            self.sni_names_seen.append(name)
            with contextlib.suppress(TypeError):
                self._sni_by_conn[sslobj] = name
            return None if original is None else original(sslobj, name, context)

        ctx.sni_callback = record  # name is None at runtime when no SNI sent
        self._sni_installed = True

    def _authorised(self, username: str | None, password: str | None) -> bool:
        if self.users is not None and (
            username is None or self.users.get(username) != password
        ):
            return False
        return self.authenticate is None or self.authenticate(username, password)

    async def _read_packet(
        self, reader: asyncio.StreamReader, idle_limit: float | None
    ) -> tuple[int, int, bytes]:
        async with asyncio.timeout(idle_limit):
            first = (await reader.readexactly(1))[0]
            length = 0
            for shift in range(0, 28, 7):
                byte = (await reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
            else:
                raise MalformedPacketError("remaining length too long")
            if length > self.max_packet_size:
                raise MalformedPacketError(f"packet of {length} bytes")
            body = await reader.readexactly(length)
        return first >> 4, first & 0x0F, body

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:  # always true: asyncio runs handlers as tasks
            self._tasks.add(task)
        session: _Session | None = None
        clean_exit = False
        try:
            if len(self._tasks) > self.max_connections:
                _LOGGER.warning("MQTT broker: too many connections")
                return
            session = await self._handshake(reader, writer)
            if session is not None:
                clean_exit = await self._serve(session, reader)
        except MalformedPacketError as err:
            _LOGGER.debug("MQTT broker: closing on protocol error: %s", err)
        except TimeoutError:
            _LOGGER.debug("MQTT broker: keepalive/connect timeout")
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            if session is not None:
                self._drop(session, publish_will=not clean_exit)
            await self._close(writer)

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        """Flush (a refused CONNACK must arrive) then close; abort if stuck."""
        if writer.transport.is_closing():
            writer.transport.abort()
            return
        writer.close()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            writer.transport.abort()

    def _drop(self, session: _Session, *, publish_will: bool) -> None:
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]
        _LOGGER.debug("MQTT broker: %s disconnected", session.client_id)
        if publish_will and session.will is not None and not self._stopping:
            self._route(session.will)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Session | None:
        packet_type, _flags, data = await self._read_packet(
            reader, self.connect_timeout
        )
        if packet_type != CONNECT:
            raise MalformedPacketError("first packet is not CONNECT")
        body = _Body(data)
        protocol, level = body.string(), body.u8()
        if protocol not in ("MQTT", "MQIsdp"):
            raise MalformedPacketError(f"protocol name {protocol!r}")
        if level != 4:
            writer.write(_packet(CONNACK << 4, bytes([0, RC_BAD_PROTOCOL])))
            self.refused.append((None, f"protocol level {level}"))
            return None
        flags, keepalive = body.u8(), body.u16()
        if flags & 0x01:
            raise MalformedPacketError("reserved CONNECT flag set")
        client_id = body.string()
        will: Message | None = None
        if flags & 0x04:
            will_qos = (flags >> 3) & 0x03
            if will_qos == 3:
                raise MalformedPacketError("will QoS 3")
            will = Message(body.string(), body.binary(), min(will_qos, 1), client_id)
        elif flags & 0x38:
            raise MalformedPacketError("will flags without a will")
        if flags & 0x40 and not flags & 0x80:
            raise MalformedPacketError("password without username")
        username = body.string() if flags & 0x80 else None
        password = body.binary().decode("utf-8", "replace") if flags & 0x40 else None
        if body.more():
            raise MalformedPacketError("trailing bytes after CONNECT payload")
        if not client_id:
            if not flags & 0x02:
                writer.write(_packet(CONNACK << 4, bytes([0, RC_BAD_CLIENT_ID])))
                self.refused.append((username, "empty client id"))
                return None
            client_id = f"auto-{id(writer):x}"
        if not self._authorised(username, password):
            writer.write(_packet(CONNACK << 4, bytes([0, RC_NOT_AUTHORISED])))
            self.refused.append((username, "not authorised"))
            _LOGGER.debug("MQTT broker: refused %s (%s)", client_id, username)
            return None
        if (previous := self._sessions.pop(client_id, None)) is not None:
            previous.writer.transport.abort()  # same id: the newcomer wins
        ssl_object = writer.get_extra_info("ssl_object")
        sni = None if ssl_object is None else self._sni_by_conn.get(ssl_object)
        peer = writer.get_extra_info("peername")
        session = _Session(
            client_id=client_id,
            username=username,
            sni=sni,
            peer=f"{peer[0]}:{peer[1]}" if peer else "",
            keepalive=keepalive,
            writer=writer,
            will=will,
        )
        self._sessions[client_id] = session
        writer.write(_packet(CONNACK << 4, bytes([0, RC_ACCEPTED])))
        _LOGGER.debug("MQTT broker: %s connected (sni=%s)", client_id, sni)
        return session

    async def _serve(self, session: _Session, reader: asyncio.StreamReader) -> bool:
        """Process packets until DISCONNECT (True) or an error (raises)."""
        timeout = session.keepalive * 1.5 if session.keepalive else None
        while True:
            packet_type, flags, data = await self._read_packet(reader, timeout)
            if packet_type == PUBLISH:
                self._on_client_publish(session, flags, data)
            elif packet_type == PUBACK and flags == 0 and len(data) == 2:
                pass  # we never retransmit, so nothing to release
            elif packet_type == SUBSCRIBE and flags == 0x02:
                self._on_subscribe(session, _Body(data))
            elif packet_type == UNSUBSCRIBE and flags == 0x02:
                self._on_unsubscribe(session, _Body(data))
            elif packet_type == PINGREQ and flags == 0 and not data:
                self._send(session, _packet(PINGRESP << 4))
            elif packet_type == DISCONNECT and flags == 0 and not data:
                return True
            else:
                raise MalformedPacketError(f"unexpected packet {packet_type}/{flags}")

    def _on_client_publish(self, session: _Session, flags: int, data: bytes) -> None:
        qos = (flags >> 1) & 0x03
        if qos > 1:
            raise MalformedPacketError(f"PUBLISH QoS {qos} is not supported")
        body = _Body(data)
        topic = body.string()
        if not valid_topic_name(topic):
            raise MalformedPacketError(f"invalid topic name {topic!r}")
        if qos:
            packet_id = body.u16()
            if not packet_id:
                raise MalformedPacketError("packet id 0")
            self._send(session, _packet(PUBACK << 4, struct.pack("!H", packet_id)))
        payload = body.rest()
        self._route(Message(topic, payload, qos, session.client_id))
        for hook in list(self.on_publish):
            try:
                hook(topic, payload, session.client_id)
            except Exception:
                _LOGGER.exception("MQTT broker: publish hook failed on %s", topic)

    def _on_subscribe(self, session: _Session, body: _Body) -> None:
        packet_id = body.u16()
        granted = bytearray()
        while body.more():
            topic_filter, requested = body.string(), body.u8()
            if requested > 2:
                raise MalformedPacketError("SUBSCRIBE options")
            allowed = (
                valid_topic_filter(topic_filter)
                and (
                    topic_filter in session.subscriptions
                    or len(session.subscriptions) < self.max_subscriptions
                )
                and (
                    self.authorize_subscribe is None
                    or self.authorize_subscribe(session.client_id, topic_filter)
                )
            )
            if allowed:
                session.subscriptions[topic_filter] = min(requested, 1)
                granted.append(min(requested, 1))
            else:
                granted.append(SUBACK_FAILURE)
        if not granted:
            raise MalformedPacketError("SUBSCRIBE without filters")
        self._send(
            session, _packet(SUBACK << 4, struct.pack("!H", packet_id) + granted)
        )

    def _on_unsubscribe(self, session: _Session, body: _Body) -> None:
        packet_id = body.u16()
        if not body.more():
            raise MalformedPacketError("UNSUBSCRIBE without filters")
        while body.more():
            session.subscriptions.pop(body.string(), None)
        self._send(session, _packet(UNSUBACK << 4, struct.pack("!H", packet_id)))

    def _route(self, message: Message) -> int:
        self.messages.append(message)
        deliveries = 0
        for session in list(self._sessions.values()):
            granted = [
                qos
                for topic_filter, qos in session.subscriptions.items()
                if topic_matches(topic_filter, message.topic)
            ]
            if not granted:
                continue
            qos = min(message.qos, max(granted))
            variable = _string(message.topic)
            if qos:
                variable += struct.pack("!H", next(session.packet_ids))
            self._send(
                session, _packet(PUBLISH << 4 | qos << 1, variable + message.payload)
            )
            deliveries += 1
        return deliveries

    def _send(self, session: _Session, data: bytes) -> None:
        """Queue bytes; a client that stops reading is dropped (bounded)."""
        transport = session.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() + len(data) > self.max_write_buffer:
            _LOGGER.warning("MQTT broker: %s is not reading", session.client_id)
            transport.abort()
            return
        session.writer.write(data)
