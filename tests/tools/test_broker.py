"""The test MQTT broker, driven by a real paho client over TLS and raw bytes."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bambu.certs import PrinterPKI
from tools.virtual_printer.broker import (
    MqttBroker,
    encode_payload,
    topic_matches,
    valid_topic_filter,
)

from . import (
    ACCESS_CODE,
    PahoClient,
    RawClient,
    client_context,
    connect_packet,
    eventually,
    mqtt_string,
    packet,
    publish_packet,
    subscribe_packet,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

SERIAL = "00M09A000000001"

type MakePaho = Callable[..., PahoClient]
type MakeRaw = Callable[..., Awaitable[RawClient]]


@pytest.fixture
def pki(tmp_path: Path) -> PrinterPKI:
    return PrinterPKI.create(tmp_path, SERIAL)


@pytest.fixture
def client_ctx(pki: PrinterPKI) -> ssl.SSLContext:
    return client_context(pki.ca_pem)


@pytest.fixture
async def tls_broker(pki: PrinterPKI) -> AsyncIterator[MqttBroker]:
    broker = MqttBroker(pki.server_context(), users={"bblp": ACCESS_CODE})
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def broker() -> AsyncIterator[MqttBroker]:
    async with MqttBroker(connect_timeout=2.0) as plain:
        yield plain


@pytest.fixture
def paho() -> Iterator[MakePaho]:
    clients: list[PahoClient] = []

    def make(port: int, **kwargs: Any) -> PahoClient:
        client = PahoClient(port, **kwargs)
        clients.append(client)
        return client.start()

    yield make
    for client in clients:
        client.close()


@pytest.fixture
async def raw() -> AsyncIterator[MakeRaw]:
    clients: list[RawClient] = []

    async def make(port: int, first: bytes | None = None) -> RawClient:
        client = await RawClient.open(port, first)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


# -- pure functions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("device/+/report", "device/X/report", True),
        ("device/+/report", "device/X/request", False),
        ("device/#", "device/X/report", True),
        ("device/#", "device", True),
        ("#", "device/X/report", True),
        ("#", "$SYS/broker", False),
        ("+/x", "$SYS/x", False),
        ("$SYS/#", "$SYS/broker", True),
        ("device/X/report", "device/X/report", True),
        ("device/X", "device/X/report", False),
        ("device/X/report/more", "device/X/report", False),
        ("+/+", "a/b", True),
        ("+", "a/b", False),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    ("topic_filter", "valid"),
    [
        ("device/+/report", True),
        ("#", True),
        ("a/#", True),
        ("", False),
        ("a/#/b", False),
        ("a#", False),
        ("a+/b", False),
        ("a/\x00", False),
    ],
)
def test_valid_topic_filter(topic_filter: str, valid: bool) -> None:
    assert valid_topic_filter(topic_filter) is valid


def test_encode_payload() -> None:
    assert encode_payload(b"\x01") == b"\x01"
    assert encode_payload("é") == "é".encode()
    assert encode_payload({"a": [1, 2]}) == b'{"a":[1,2]}'


# -- paho over TLS ---------------------------------------------------------------


async def test_tls_connect_records_sni_and_client(
    tls_broker: MqttBroker, client_ctx: ssl.SSLContext, paho: MakePaho
) -> None:
    client = paho(
        tls_broker.port,
        client_id="ha-1",
        ssl_context=client_ctx,
        sni=SERIAL,
        password=ACCESS_CODE,
        subscribe=(f"device/{SERIAL}/report",),
    )
    await client.ready()
    info = await tls_broker.wait_for_client(
        "ha-1", subscribed_to=f"device/{SERIAL}/report"
    )
    assert info.username == "bblp"
    assert info.sni == SERIAL
    assert info.keepalive == 10
    assert info.peer.startswith("127.0.0.1:")
    assert SERIAL in tls_broker.sni_names_seen
    assert tls_broker.running
    assert client.subacks == [[0]]


async def test_bad_password_gets_rc5(
    tls_broker: MqttBroker, client_ctx: ssl.SSLContext, paho: MakePaho
) -> None:
    client = paho(tls_broker.port, ssl_context=client_ctx, sni=SERIAL, password="wrong")
    rc = await eventually(lambda: client.connects and client.connects[0])
    assert rc.is_failure
    assert rc == "Not authorized"  # paho maps MQTT 3.1.1 rc 5 to reason 135
    assert rc.value == 135
    assert tls_broker.connected_clients == []
    assert tls_broker.refused[0] == ("bblp", "not authorised")


async def test_missing_username_refused(
    tls_broker: MqttBroker, client_ctx: ssl.SSLContext, paho: MakePaho
) -> None:
    client = paho(tls_broker.port, ssl_context=client_ctx, sni=SERIAL, username=None)
    rc = await eventually(lambda: client.connects and client.connects[0])
    assert rc == "Not authorized"


async def test_raw_refusal_is_connack_5(raw: MakeRaw) -> None:
    async with MqttBroker(users={"bblp": ACCESS_CODE}) as broker:
        client = await raw(broker.port, connect_packet(username="bblp", password="x"))
        assert await client.read_packet() == (0x20, b"\x00\x05")
        assert await client.closed_by_peer()


async def test_authenticate_hook(paho: MakePaho) -> None:
    seen: list[tuple[str | None, str | None]] = []

    def authenticate(username: str | None, password: str | None) -> bool:
        seen.append((username, password))
        return password == "token"

    async with MqttBroker(authenticate=authenticate) as broker:
        good = paho(broker.port, client_id="good", username="u_1", password="token")
        bad = paho(broker.port, client_id="bad", username="u_1", password="nope")
        await good.ready()
        rc = await eventually(lambda: bad.connects and bad.connects[0])
        assert rc == "Not authorized"
        assert ("u_1", "token") in seen
        good.close()
        bad.close()


async def test_roundtrip_qos0_and_qos1(
    tls_broker: MqttBroker, client_ctx: ssl.SSLContext, paho: MakePaho
) -> None:
    kwargs: dict[str, Any] = {"ssl_context": client_ctx, "sni": SERIAL}
    listener = paho(
        tls_broker.port,
        client_id="listener",
        subscribe=("device/+/report",),
        qos=1,
        **kwargs,
    )
    sender = paho(tls_broker.port, client_id="sender", **kwargs)
    await listener.ready()
    await sender.ready()
    assert listener.subacks == [[1]]

    sender.publish_json("device/A/report", {"n": 0}, qos=0)
    info = sender.publish_json("device/B/report", {"n": 1}, qos=1)
    sender.publish_json("device/A/request", {"n": 2}, qos=1)
    await eventually(lambda: len(listener.messages) >= 2)
    await eventually(info.is_published)
    await asyncio.sleep(0.05)
    got = [(m.topic, m.qos, m.payload) for m in listener.messages]
    assert got == [
        ("device/A/report", 0, b'{"n": 0}'),
        ("device/B/report", 1, b'{"n": 1}'),
    ]
    assert [m.client_id for m in tls_broker.messages] == ["sender"] * 3


async def test_wildcard_routing_and_unsubscribe(
    broker: MqttBroker, paho: MakePaho
) -> None:
    everything = paho(broker.port, client_id="all", subscribe=("#",), qos=1)
    reports = paho(broker.port, client_id="reports", subscribe=("device/+/report",))
    one = paho(broker.port, client_id="one", subscribe=("device/S1/#",))
    for client in (everything, reports, one):
        await client.ready()

    assert broker.publish("device/S1/report", {"a": 1}, qos=1) == 3
    assert broker.publish("device/S2/report", b"x") == 2
    assert broker.publish("device/S1/request", "y") == 2
    assert broker.publish("other", "z") == 1
    await eventually(lambda: len(everything.messages) == 4)
    await eventually(lambda: len(reports.messages) == 2 and len(one.messages) == 2)
    assert everything.messages[0].qos == 1
    assert reports.messages[0].qos == 0  # granted QoS caps delivery

    one.client.unsubscribe("device/S1/#")
    await eventually(
        lambda: (
            not next(
                c for c in broker.connected_clients if c.client_id == "one"
            ).subscriptions
        )
    )
    assert broker.publish("device/S1/report", b"after") == 2


async def test_publish_hooks(
    broker: MqttBroker, paho: MakePaho, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, bytes, str]] = []

    def boom(_topic: str, _payload: bytes, _client_id: str) -> None:
        raise RuntimeError("hook failure must not kill the connection")

    remove = broker.add_publish_hook(lambda *args: seen.append(args))
    broker.add_publish_hook(boom)
    client = paho(broker.port, client_id="pub")
    await client.ready()
    with caplog.at_level(logging.ERROR):
        client.client.publish("device/S/request", b"hello", qos=1)
        await eventually(lambda: seen)
    assert seen == [("device/S/request", b"hello", "pub")]
    assert "publish hook failed" in caplog.text

    remove()
    remove()  # idempotent
    client.client.publish("device/S/request", b"again", qos=1)
    await eventually(lambda: len(broker.messages) == 2)
    assert len(seen) == 1
    assert broker.connected_clients[0].client_id == "pub"
    assert broker.publish("device/S/report", b"injected") == 0


async def test_restart_on_same_port_client_reconnects(
    tls_broker: MqttBroker, client_ctx: ssl.SSLContext, paho: MakePaho
) -> None:
    client = paho(
        tls_broker.port,
        ssl_context=client_ctx,
        sni=SERIAL,
        subscribe=("device/#",),
    )
    await client.ready()
    port = tls_broker.port

    await tls_broker.stop()
    assert not tls_broker.running
    assert tls_broker.connected_clients == []
    await eventually(lambda: client.disconnects)
    await tls_broker.start()
    assert tls_broker.port == port

    await client.ready(count=2)
    await tls_broker.wait_for_client(subscribed_to="device/#", within=10)
    assert tls_broker.publish("device/x/report", b"back") == 1
    await eventually(lambda: client.messages)
    with pytest.raises(RuntimeError):
        await tls_broker.start()


async def test_disconnect_all_and_one(broker: MqttBroker, paho: MakePaho) -> None:
    first = paho(broker.port, client_id="c1")
    second = paho(broker.port, client_id="c2")
    await first.ready()
    await second.ready()
    assert (await broker.wait_for_client("c2")).client_id == "c2"
    assert await broker.disconnect("c1")
    assert not await broker.disconnect("missing")
    await eventually(lambda: first.disconnects)
    assert await broker.disconnect_all() >= 1
    await first.ready(count=2)
    await second.ready(count=2)


async def test_wait_for_client_times_out(broker: MqttBroker) -> None:
    with pytest.raises(TimeoutError):
        await broker.wait_for_client("nobody", within=0.05)


def test_publish_rejects_bad_arguments() -> None:
    broker = MqttBroker()
    with pytest.raises(ValueError, match="invalid topic"):
        broker.publish("device/+/report", b"")
    with pytest.raises(ValueError, match="QoS"):
        broker.publish("device/x/report", b"", qos=2)


# -- raw protocol edge cases ---------------------------------------------------


async def test_ping_puback_and_clean_disconnect(
    broker: MqttBroker, raw: MakeRaw
) -> None:
    client = await raw(broker.port, connect_packet("raw", will=("wills", b"gone", 1)))
    assert await client.read_packet() == (0x20, b"\x00\x00")
    client.send(packet(0xC0))
    assert await client.read_packet() == (0xD0, b"")
    client.send(packet(0x40, b"\x00\x07"))  # PUBACK for a delivery: ignored
    client.send(packet(0xE0))
    assert await client.closed_by_peer()
    await eventually(lambda: not broker.connected_clients)
    assert not [m for m in broker.messages if m.topic == "wills"]


async def test_will_published_on_abrupt_close(
    broker: MqttBroker, raw: MakeRaw, paho: MakePaho
) -> None:
    watcher = paho(broker.port, client_id="watcher", subscribe=("wills",))
    await watcher.ready()
    client = await raw(broker.port, connect_packet("dying", will=("wills", b"bye", 1)))
    await client.read_packet()
    client.writer.transport.abort()
    await eventually(lambda: watcher.messages)
    assert watcher.messages[0].payload == b"bye"


async def test_raw_subscribe_publish_qos1(broker: MqttBroker, raw: MakeRaw) -> None:
    client = await raw(broker.port, connect_packet("raw"))
    await client.read_packet()
    broker.authorize_subscribe = lambda _cid, topic_filter: topic_filter != "denied/x"
    client.send(
        subscribe_packet(9, ("a/+", 2), ("bad/#/x", 0), ("denied/x", 1), ("a/+", 1))
    )
    first, body = await client.read_packet()
    assert first == 0x90
    assert body == b"\x00\x09" + bytes([1, 0x80, 0x80, 1])
    client.send(publish_packet("a/b", b"payload", qos=1, packet_id=77))
    assert await client.read_packet() == (0x40, b"\x00\x4d")  # PUBACK 77
    first, body = await client.read_packet()  # routed back to ourselves
    assert first == 0x32
    assert body == mqtt_string("a/b") + b"\x00\x01" + b"payload"
    client.send(packet(0xA2, b"\x00\x0a" + mqtt_string("a/+")))
    assert await client.read_packet() == (0xB0, b"\x00\x0a")
    assert broker.connected_clients[0].subscriptions == ()


async def test_max_subscriptions(raw: MakeRaw) -> None:
    async with MqttBroker(max_subscriptions=1) as broker:
        client = await raw(broker.port, connect_packet("raw"))
        await client.read_packet()
        client.send(subscribe_packet(1, ("a", 0), ("b", 0), ("a", 1)))
        assert await client.read_packet() == (0x90, b"\x00\x01\x00\x80\x01")


async def test_protocol_level_and_client_id(broker: MqttBroker, raw: MakeRaw) -> None:
    old = await raw(broker.port, connect_packet(protocol="MQIsdp", level=3))
    assert await old.read_packet() == (0x20, b"\x00\x01")
    assert await old.closed_by_peer()

    empty = await raw(broker.port, connect_packet("", clean=False))
    assert await empty.read_packet() == (0x20, b"\x00\x02")

    auto = await raw(broker.port, connect_packet(""))
    assert await auto.read_packet() == (0x20, b"\x00\x00")
    assert broker.connected_clients[0].client_id.startswith("auto-")
    assert [reason for _, reason in broker.refused] == [
        "protocol level 3",
        "empty client id",
    ]


async def test_same_client_id_takes_over(broker: MqttBroker, raw: MakeRaw) -> None:
    first = await raw(broker.port, connect_packet("twin"))
    await first.read_packet()
    second = await raw(broker.port, connect_packet("twin"))
    await second.read_packet()
    assert await first.closed_by_peer()
    second.send(packet(0xC0))
    assert await second.read_packet() == (0xD0, b"")
    assert [c.client_id for c in broker.connected_clients] == ["twin"]


async def test_keepalive_timeout(broker: MqttBroker, raw: MakeRaw) -> None:
    client = await raw(broker.port, connect_packet("sleepy", keepalive=1))
    await client.read_packet()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await client.closed_by_peer(within=4)
    assert 1.2 <= loop.time() - started < 3.5  # 1.5 x keepalive


async def test_connect_timeout(raw: MakeRaw) -> None:
    async with MqttBroker(connect_timeout=0.2) as broker:
        client = await raw(broker.port)
        assert await client.closed_by_peer(within=3)


async def test_connection_limit(raw: MakeRaw) -> None:
    async with MqttBroker(max_connections=1) as broker:
        first = await raw(broker.port, connect_packet("one"))
        await first.read_packet()
        second = await raw(broker.port, connect_packet("two"))
        assert await second.closed_by_peer()


async def test_slow_consumer_dropped(raw: MakeRaw) -> None:
    async with MqttBroker(max_write_buffer=64) as broker:
        client = await raw(broker.port, connect_packet("slow"))
        await client.read_packet()
        client.send(subscribe_packet(1, ("t", 0)))
        await client.read_packet()
        assert broker.publish("t", b"x" * 100) == 1
        assert broker.publish("t", b"more") == 1  # already closing: skipped
        assert await client.closed_by_peer()
        await eventually(lambda: not broker.connected_clients)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x30\x00", id="first-packet-not-connect"),
        pytest.param(b"\x10\xff\xff\xff\xff\x7f", id="remaining-length-5-bytes"),
        pytest.param(b"\x10\xff\xff\x7f", id="packet-too-large"),
        pytest.param(connect_packet(protocol="HTTP"), id="protocol-name"),
        pytest.param(connect_packet(extra_flags=0x01), id="reserved-flag"),
        pytest.param(connect_packet(extra_flags=0x08), id="will-qos-without-will"),
        pytest.param(connect_packet(will=("w", b"", 3)), id="will-qos-3"),
        pytest.param(connect_packet(password="p"), id="password-without-username"),
        pytest.param(connect_packet(trailer=b"junk"), id="trailing-bytes"),
        pytest.param(packet(0x10, b"\x00"), id="truncated-connect"),
        pytest.param(
            packet(0x10, mqtt_string(b"\xff\xfe") + b"\x04\x02\x00\x0a"),
            id="invalid-utf8",
        ),
        pytest.param(connect_packet("a\x00b"), id="nul-in-string"),
    ],
)
async def test_malformed_connect_closes(
    data: bytes, raw: MakeRaw, broker: MqttBroker
) -> None:
    broker.max_packet_size = 1000
    client = await raw(broker.port, data)
    assert await client.closed_by_peer()
    assert broker.connected_clients == []


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(publish_packet("a", b"", qos=2), id="publish-qos2"),
        pytest.param(publish_packet("a/#", b""), id="publish-wildcard"),
        pytest.param(publish_packet("a", b"", qos=1, packet_id=0), id="packet-id-0"),
        pytest.param(subscribe_packet(1, ("a", 0), flags=0), id="subscribe-flags"),
        pytest.param(subscribe_packet(1, ("a", 3)), id="subscribe-qos3"),
        pytest.param(subscribe_packet(1), id="subscribe-empty"),
        pytest.param(packet(0xA2, b"\x00\x01"), id="unsubscribe-empty"),
        pytest.param(packet(0xC0, b"x"), id="pingreq-with-body"),
        pytest.param(packet(0x20, b"\x00\x00"), id="connack-from-client"),
        pytest.param(connect_packet("again"), id="second-connect"),
    ],
)
async def test_malformed_after_connect_closes(
    data: bytes, raw: MakeRaw, broker: MqttBroker
) -> None:
    client = await raw(broker.port, connect_packet("raw"))
    await client.read_packet()
    client.send(data)
    assert await client.closed_by_peer()
    await eventually(lambda: not broker.connected_clients)


async def test_tls_client_without_sni(
    tls_broker: MqttBroker, client_ctx: ssl.SSLContext, paho: MakePaho
) -> None:
    """An IP-only ClientHello carries no server name: recorded as None."""
    client = paho(
        tls_broker.port, client_id="no-sni", ssl_context=client_ctx, insecure=True
    )
    await client.ready()
    info = await tls_broker.wait_for_client("no-sni")
    assert info.sni is None
    assert None in tls_broker.sni_names_seen


async def test_existing_sni_callback_is_chained(
    pki: PrinterPKI, client_ctx: ssl.SSLContext, paho: MakePaho
) -> None:
    server_ctx = pki.server_context()
    names: list[str | None] = []
    server_ctx.sni_callback = lambda _obj, name, _ctx: names.append(name)
    async with MqttBroker(server_ctx) as broker:
        client = paho(broker.port, ssl_context=client_ctx, sni=SERIAL)
        await client.ready()
        assert names == [SERIAL]
        assert broker.connected_clients[0].sni == SERIAL
        client.close()
