"""Test helpers: a real paho client, a raw MQTT client and a scripted server.

The paho client runs its network loop in its own thread (``loop_start``), so
tests never block the event loop (where the broker's observer and the virtual
printers run): they poll with ``asyncio.sleep`` instead of waiting on
threading primitives. The scripted server stands in for a broker only where a
real one (mosquitto) would never misbehave that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

WAIT = 5.0
ACCESS_CODE = "12345678"


async def eventually[T](
    probe: Callable[[], T | None], within: float = WAIT, step: float = 0.01
) -> T:
    """Poll ``probe`` until it returns something truthy (or time runs out)."""
    async with asyncio.timeout(within):
        while not (value := probe()):  # noqa: ASYNC110 - paho state lives in a thread
            await asyncio.sleep(step)
        return value


def client_context(ca_pem: str) -> ssl.SSLContext:
    """Client TLS context trusting the test CA (no keyUsage, like BBL CA)."""
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return ctx


class _SniClient(mqtt.Client):
    """paho client sending SNI = ``sni`` while connecting to an IP."""

    sni: str | None = None

    def _ssl_wrap_socket(self, tcp_sock: Any) -> ssl.SSLSocket:
        host = self._host
        if self.sni:
            self._host = self.sni
        try:
            return super()._ssl_wrap_socket(tcp_sock)
        finally:
            self._host = host


class PahoClient:
    """A real paho-mqtt 2.1 client recording what happens to it."""

    def __init__(
        self,
        port: int,
        *,
        client_id: str = "test-client",
        ssl_context: ssl.SSLContext | None = None,
        sni: str | None = None,
        username: str | None = "bblp",
        password: str | None = ACCESS_CODE,
        subscribe: tuple[str, ...] = (),
        qos: int = 0,
        keepalive: int = 10,
        insecure: bool = False,
    ) -> None:
        self.port = port
        self.keepalive = keepalive
        self.subscribe_to = subscribe
        self.qos = qos
        self.connects: list[ReasonCode] = []
        self.disconnects: list[ReasonCode] = []
        self.subacks: list[list[ReasonCode]] = []
        self.messages: list[mqtt.MQTTMessage] = []
        client = _SniClient(CallbackAPIVersion.VERSION2, client_id=client_id)
        client.sni = sni
        if ssl_context is not None:
            client.tls_set_context(ssl_context)
            client.tls_insecure_set(insecure)
        if username is not None:
            client.username_pw_set(username, password)
        client.reconnect_delay_set(1, 2)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any
    ) -> None:
        self.connects.append(rc)
        if not rc.is_failure and self.subscribe_to:
            client.subscribe([(topic, self.qos) for topic in self.subscribe_to])

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any
    ) -> None:
        self.disconnects.append(rc)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        self.subacks.append(codes)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.append(msg)

    def start(self) -> PahoClient:
        """Connect asynchronously in paho's own thread."""
        self.client.connect_async("127.0.0.1", self.port, self.keepalive)
        self.client.loop_start()
        return self

    def close(self) -> None:
        """Disconnect and join paho's thread (no lingering threads)."""
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def successful_connects(self) -> int:
        """How many CONNACKs accepted this client."""
        return sum(1 for rc in self.connects if not rc.is_failure)

    async def ready(self, count: int = 1) -> None:
        """Wait for ``count`` accepted connects with their SUBACKs."""
        await eventually(lambda: self.successful_connects >= count)
        if self.subscribe_to:
            await eventually(lambda: len(self.subacks) >= count)

    def publish_json(
        self, topic: str, message: Any, qos: int = 0
    ) -> mqtt.MQTTMessageInfo:
        """Publish ``message`` as JSON."""
        return self.client.publish(topic, json.dumps(message), qos=qos)

    def json_messages(self, topic: str | None = None) -> list[dict[str, Any]]:
        """Decoded payloads received so far (on ``topic``)."""
        return [
            json.loads(m.payload)
            for m in list(self.messages)
            if topic is None or m.topic == topic
        ]

    async def next_json(
        self, match: Callable[[dict[str, Any]], bool], within: float = WAIT
    ) -> dict[str, Any]:
        """First received JSON message for which ``match`` is true."""
        return await eventually(
            lambda: next((m for m in self.json_messages() if match(m)), None), within
        )


# -- a raw MQTT client, for protocol edge cases paho will not produce ---------


def mqtt_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(raw)) + raw


def packet(first: int, body: bytes = b"") -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([first]) + bytes(encoded) + body


def connect_packet(
    client_id: str = "raw",
    *,
    username: str | None = None,
    password: str | None = None,
    keepalive: int = 30,
    clean: bool = True,
    will: tuple[str, bytes, int] | None = None,
    protocol: str = "MQTT",
    level: int = 4,
    extra_flags: int = 0,
    trailer: bytes = b"",
) -> bytes:
    flags = extra_flags | (0x02 if clean else 0)
    payload = mqtt_string(client_id)
    if will is not None:
        flags |= 0x04 | will[2] << 3
        payload += mqtt_string(will[0]) + mqtt_string(will[1])
    if username is not None:
        flags |= 0x80
        payload += mqtt_string(username)
    if password is not None:
        flags |= 0x40
        payload += mqtt_string(password)
    header = (
        mqtt_string(protocol) + bytes([level, flags]) + struct.pack("!H", keepalive)
    )
    return packet(0x10, header + payload + trailer)


def subscribe_packet(
    packet_id: int, *filters: tuple[str, int], flags: int = 2
) -> bytes:
    body = struct.pack("!H", packet_id)
    for topic_filter, qos in filters:
        body += mqtt_string(topic_filter) + bytes([qos])
    return packet(0x80 | flags, body)


def publish_packet(
    topic: str, payload: bytes, qos: int = 0, packet_id: int = 1
) -> bytes:
    body = mqtt_string(topic) + (struct.pack("!H", packet_id) if qos else b"")
    return packet(0x30 | qos << 1, body + payload)


class RawClient:
    """Bytes in, packets out, over plain TCP."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, first: bytes | None = None) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        if first is not None:
            client.send(first)
        return client

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_packet(self, within: float = WAIT) -> tuple[int, bytes]:
        """``(first byte, body)``; raises IncompleteReadError on close."""
        async with asyncio.timeout(within):
            first = (await self.reader.readexactly(1))[0]
            length, shift = 0, 0
            while True:
                byte = (await self.reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            return first, await self.reader.readexactly(length)

    async def closed_by_peer(self, within: float = WAIT) -> bool:
        """True once the broker has closed the connection (EOF)."""
        async with asyncio.timeout(within):
            try:
                while await self.reader.read(4096):
                    pass
            except ConnectionResetError:
                pass  # closed with our unread bytes pending: an RST
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


# -- a scripted server, for faults a real broker never commits ----------------


class ScriptedBroker:
    """A deliberately tiny MQTT 3.1.1 server on 127.0.0.1 (TLS when given one).

    Real-broker behaviour comes from mosquitto; this exists only for what
    mosquitto would never do: answer CONNECT with ``connack`` (0 accepts),
    ignore PINGREQ (``answer_pings=False``), drop a client ``hold`` seconds
    after accepting it, or write arbitrary bytes (:meth:`send`, e.g. a PUBLISH
    with a non-UTF-8 topic, or many packets in one write). SUBSCRIBE is
    acknowledged; nothing is routed.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        connack: int = 0,
        answer_pings: bool = True,
        hold: float | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.connack = connack
        self.answer_pings = answer_pings
        self.hold = hold
        self.port = 0
        self.accepted_at: list[float] = []
        """Loop time of every accepted CONNECT."""
        self.refusals = 0
        self.clients: dict[str, list[str]] = {}
        """Connected client ids and the filters each subscribed."""
        self._server: asyncio.Server | None = None
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in self._writers.values():
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def send(self, data: bytes) -> None:
        """Write raw bytes to every connected client, in one write each."""
        for writer in self._writers.values():
            writer.write(data)

    def publish(self, topic: str, payload: bytes) -> None:
        """A QoS 0 PUBLISH to every connected client (subscribed or not)."""
        self.send(publish_packet(topic, payload))

    async def wait_for_client(
        self, client_id: str | None = None, *, subscribed_to: str | None = None
    ) -> str:
        """Wait until a (given) client is connected (and subscribed)."""
        return await eventually(
            lambda: next(
                (
                    cid
                    for cid, filters in self.clients.items()
                    if client_id in (None, cid)
                    and (subscribed_to is None or subscribed_to in filters)
                ),
                None,
            )
        )

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        client = RawClient(reader, writer)
        client_id = ""
        try:
            first, body = await client.read_packet()
            if first >> 4 != 1:
                return
            client_id = _connect_client_id(body)
            client.send(packet(0x20, bytes([0, self.connack])))
            if self.connack:
                self.refusals += 1
                await writer.drain()
                return
            self.accepted_at.append(asyncio.get_running_loop().time())
            self.clients[client_id] = []
            self._writers[client_id] = writer
            if self.hold is not None:
                await asyncio.sleep(self.hold)
                return
            while True:
                first, body = await client.read_packet(within=3600)
                if first == 0x82:  # SUBSCRIBE
                    filters = _subscribe_filters(body)
                    granted = bytes(min(qos, 1) for _, qos in filters)
                    client.send(packet(0x90, body[:2] + granted))
                    self.clients[client_id] += [name for name, _ in filters]
                elif first == 0xC0 and self.answer_pings:
                    client.send(packet(0xD0))
                elif first == 0xE0:
                    return
        except (asyncio.IncompleteReadError, OSError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            if self._writers.get(client_id) is writer:
                del self._writers[client_id]
                del self.clients[client_id]
            writer.transport.abort()


def _connect_client_id(body: bytes) -> str:
    """The client id of a CONNECT body (after the 10-byte variable header)."""
    size = struct.unpack("!H", body[10:12])[0]
    return body[12 : 12 + size].decode()


def _subscribe_filters(body: bytes) -> list[tuple[str, int]]:
    """``(filter, qos)`` pairs of a SUBSCRIBE body (after the packet id)."""
    filters, pos = [], 2
    while pos < len(body):
        size = struct.unpack("!H", body[pos : pos + 2])[0]
        filters.append((body[pos + 2 : pos + 2 + size].decode(), body[pos + 2 + size]))
        pos += 3 + size
    return filters
