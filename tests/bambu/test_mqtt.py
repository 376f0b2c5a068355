"""Tests for MqttSession and Backoff (custom_components/.../bambu/mqtt.py).

Every session talks to a real TLS MQTT broker on 127.0.0.1 (mosquitto, see
tools/virtual_printer/mosquitto.py), or, for faults a real broker never
commits, to a scripted one (tests/tools); sessions and brokers are always
stopped in ``finally`` so no task, timer, thread or socket registration
outlives a test.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from custom_components.bambu_cloud.bambu import mqtt, tls
from custom_components.bambu_cloud.bambu.mqtt import (
    Backoff,
    MqttSession,
    RetryPolicy,
    SessionConfig,
    SessionStatus,
)
from tests.tools import ScriptedBroker, mqtt_string, packet, publish_packet
from tools.test_pki import IssuedCert, PrinterPKI, TestPKI, server_context
from tools.virtual_printer.mosquitto import MqttBroker

pytestmark = pytest.mark.usefixtures("socket_enabled")

USER = "u_42"
PASSWORD = "secret-token"
SERIAL = "01P00A000000777"
WITHIN = 5.0


async def until(condition: Callable[[], bool], within: float = WITHIN) -> None:
    """Poll until condition holds (bounded)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls other tasks' effects
            await asyncio.sleep(0.01)


@dataclass
class Recorder:
    """What a session reported through its callbacks."""

    statuses: list[tuple[SessionStatus, BaseException | None]] = field(
        default_factory=list
    )
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)
    connects: int = 0

    def on_message(self, topic: str, payload: bytes) -> None:
        self.threads.add(threading.get_ident())
        self.messages.append((topic, payload))

    def on_status(self, status: SessionStatus, error: BaseException | None) -> None:
        self.statuses.append((status, error))

    def on_connected(self) -> None:
        self.connects += 1

    def count(self, status: SessionStatus) -> int:
        return sum(1 for seen, _ in self.statuses if seen is status)


@dataclass
class Cloud:
    """A TLS broker with a certificate for 127.0.0.1 and its client context."""

    broker: MqttBroker
    client_context: ssl.SSLContext
    ca: IssuedCert


def _client_context(ca: IssuedCert) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.pem)


@pytest.fixture
async def cloud(pki: TestPKI, ca: IssuedCert) -> AsyncIterator[Cloud]:
    """A running broker that accepts USER/PASSWORD."""
    leaf = pki.server(ca, "mqtt.test", san=["127.0.0.1"])
    broker = MqttBroker(leaf, users={USER: PASSWORD})
    try:
        await broker.start()
        yield Cloud(broker, _client_context(ca), ca)
    finally:
        await broker.stop()


def make_session(
    context: ssl.SSLContext,
    port: int,
    *,
    password: str = PASSWORD,
    server_hostname: str | None = None,
    keepalive: int = 60,
    username: str = USER,
    retry: RetryPolicy | None = None,
    backoff: Backoff | None = None,
    check_interval: float = mqtt.MISC_INTERVAL,
) -> tuple[MqttSession, Recorder]:
    """A session with a fast back-off and a recorder for its callbacks."""
    recorder = Recorder()
    session = MqttSession(
        SessionConfig(
            host="127.0.0.1",
            port=port,
            username=username,
            password=password,
            ssl_context=context,
            server_hostname=server_hostname,
            keepalive=keepalive,
            client_id_prefix="test",
            check_interval=check_interval,
        ),
        loop=asyncio.get_running_loop(),
        on_message=recorder.on_message,
        on_status=recorder.on_status,
        on_connected=recorder.on_connected,
        retry=retry,
        backoff=backoff or Backoff(0.05, 0.2),
        name="test",
    )
    return session, recorder


def client_id_of(session: MqttSession) -> str:
    client = session._client
    assert client is not None
    return client._client_id.decode()


def registered_fds(loop: asyncio.AbstractEventLoop) -> set[int]:
    """File descriptors the loop's selector watches."""
    selector = loop._selector  # type: ignore[attr-defined]
    return set(selector.get_map())


def session_registrations(
    loop: asyncio.AbstractEventLoop, session: MqttSession
) -> list[int]:
    """File descriptors whose reader or writer callback belongs to session."""
    selector = loop._selector  # type: ignore[attr-defined]
    return sorted(
        {
            fd
            for fd, key in selector.get_map().items()
            for handle in key.data
            if handle is not None
            and getattr(handle._callback, "__self__", None) is session
        }
    )


# --------------------------------------------------------------------- Backoff


def test_backoff_doubles_up_to_the_cap() -> None:
    """With rand() == 1 the delays are min, 2*min, ... capped at max."""
    backoff = Backoff(1.0, 60.0, rand=lambda: 1.0)
    delays = [backoff.next() for _ in range(10)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
    # The attempt counter saturates: no overflow after many failures.
    for _ in range(100):
        assert backoff.next() == 60.0


def test_backoff_jitter_uses_injected_rand() -> None:
    """Full jitter: min + (ceiling - min) * rand(), never below min."""
    values = iter([0.0, 0.5, 0.25, 0.0])
    backoff = Backoff(1.0, 60.0, rand=lambda: next(values))
    assert backoff.next() == 1.0  # ceiling 1
    assert backoff.next() == 1.5  # ceiling 2
    assert backoff.next() == 1.75  # ceiling 4
    assert backoff.next() == 1.0  # ceiling 8, rand 0 -> the minimum


def test_backoff_defaults_and_reset() -> None:
    """Defaults are 1 s .. 60 s; reset starts over at the minimum."""
    backoff = Backoff(rand=lambda: 1.0)
    assert mqtt.BACKOFF_MIN == 1.0
    assert mqtt.BACKOFF_MAX == 60.0
    for _ in range(20):
        delay = backoff.next()
        assert 1.0 <= delay <= 60.0
    assert delay == 60.0
    backoff.reset()
    assert backoff.next() == 1.0
    assert backoff.next() == 2.0


def test_backoff_random_stays_in_bounds() -> None:
    """With the real random source every delay is within [min, cap]."""
    backoff = Backoff(0.5, 4.0)
    for _ in range(50):
        assert 0.5 <= backoff.next() <= 4.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Success", 0),
        ("Unsupported protocol version", 1),
        ("Client identifier not valid", 2),
        ("Server unavailable", 3),
        ("Bad user name or password", 4),
        ("Not authorized", 5),
        ("Banned", 3),
    ],
)
def test_connack_code(name: str, expected: int) -> None:
    """paho's v5-style reasons map back to MQTT 3.1.1 CONNACK codes."""
    reason = ReasonCode(PacketTypes.CONNACK, name)
    assert mqtt._connack_code(reason) == expected


# ------------------------------------------------------------ connecting


async def test_connect_subscribe_and_messages_on_loop_thread(cloud: Cloud) -> None:
    """Topics subscribed before and after connecting; callbacks on the loop."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)
    assert session.status is SessionStatus.STOPPED
    session.subscribe("device/a/report")
    session.subscribe("device/a/report")  # idempotent
    try:
        session.start()
        session.start()  # idempotent while running
        await until(lambda: session.connected)
        client_id = client_id_of(session)
        info = await broker.wait_for_client(client_id, subscribed_to="device/a/report")
        assert info.username == USER
        assert info.sni is None  # the cloud broker is dialled by name
        assert rec.connects == 1
        assert [s for s, _ in rec.statuses] == [
            SessionStatus.CONNECTING,
            SessionStatus.CONNECTED,
        ]

        session.subscribe("device/b/report")
        await broker.wait_for_client(client_id, subscribed_to="device/b/report")

        broker.publish("device/a/report", b"one")
        broker.publish("device/b/report", {"two": 2})
        broker.publish("device/c/report", b"not subscribed")
        await until(lambda: len(rec.messages) == 2)
        assert rec.messages == [
            ("device/a/report", b"one"),
            ("device/b/report", b'{"two":2}'),
        ]
        assert rec.threads == {threading.get_ident()}
        assert [c.client_id for c in broker.connected_clients] == [client_id]
    finally:
        await session.stop()
    assert session.status is SessionStatus.STOPPED
    assert rec.statuses[-1] == (SessionStatus.STOPPED, None)


async def test_unsubscribe_without_reconnect(cloud: Cloud) -> None:
    """UNSUBSCRIBE reaches the broker on the same connection."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)
    session.subscribe("device/a/report")
    session.subscribe("device/b/report")
    try:
        session.start()
        await until(lambda: session.connected)
        client_id = client_id_of(session)
        await broker.wait_for_client(client_id, subscribed_to="device/b/report")

        session.unsubscribe("device/a/report")
        session.unsubscribe("device/never/report")  # unknown: nothing happens
        await until(
            lambda: (
                [c.subscriptions for c in broker.connected_clients]
                == [("device/b/report",)]
            )
        )
        assert [c.client_id for c in broker.connected_clients] == [client_id]
        assert client_id_of(session) == client_id
        assert rec.connects == 1

        broker.publish("device/a/report", b"gone")
        broker.publish("device/b/report", b"kept")
        await until(lambda: len(rec.messages) == 1)
        await asyncio.sleep(0.05)
        assert rec.messages == [("device/b/report", b"kept")]
    finally:
        await session.stop()


async def test_unsubscribe_while_disconnected_is_not_resubscribed(
    cloud: Cloud,
) -> None:
    """A topic dropped before connecting is not subscribed on connect."""
    broker = cloud.broker
    session, _ = make_session(cloud.client_context, broker.port)
    session.subscribe("device/a/report")
    session.subscribe("device/b/report")
    session.unsubscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        info = await broker.wait_for_client(subscribed_to="device/b/report")
        assert info.subscriptions == ("device/b/report",)
    finally:
        await session.stop()


async def test_publish(cloud: Cloud) -> None:
    """publish() is False unless connected, then the broker gets the message."""
    broker = cloud.broker
    session, _ = make_session(cloud.client_context, broker.port)
    assert session.publish("device/a/request", b"early") is False
    try:
        session.start()
        assert session.publish("device/a/request", b"connecting") is False
        await until(lambda: session.connected)
        client_id = client_id_of(session)
        assert session.publish("device/a/request", b"qos0") is True
        assert session.publish("device/a/request", b"qos1", qos=1) is True
        await until(lambda: len(broker.messages) == 2)
        assert [(m.topic, m.payload, m.qos) for m in broker.messages] == [
            ("device/a/request", b"qos0", 0),
            ("device/a/request", b"qos1", 1),
        ]
        assert [c.client_id for c in broker.connected_clients] == [client_id]
    finally:
        await session.stop()
    assert session.publish("device/a/request", b"late") is False
    assert len(broker.messages) == 2


async def test_broker_restart_reconnects_with_backoff(cloud: Cloud) -> None:
    """Broker down: DISCONNECTED and retries; back up: connected, resubscribed."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        first_id = client_id_of(session)

        await broker.stop()
        await until(lambda: session.status is not SessionStatus.CONNECTED)
        await until(lambda: rec.count(SessionStatus.DISCONNECTED) >= 3)
        assert session.publish("device/a/request", b"x") is False
        # Every failed attempt while down is a connection refusal.
        errors = [e for s, e in rec.statuses if s is SessionStatus.DISCONNECTED]
        assert any(isinstance(e, ConnectionRefusedError) for e in errors)

        await broker.start()
        await until(lambda: session.connected)
        info = await broker.wait_for_client(subscribed_to="device/a/report")
        assert info.client_id != first_id
        assert rec.connects == 2
        broker.publish("device/a/report", b"after restart")
        await until(lambda: rec.messages == [("device/a/report", b"after restart")])
    finally:
        await session.stop()


async def test_broker_kicks_client(cloud: Cloud) -> None:
    """A connection dropped by the broker is noticed and re-established."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)
    try:
        session.start()
        await until(lambda: session.connected)
        first_id = client_id_of(session)
        assert await broker.disconnect(first_id)
        await until(lambda: rec.count(SessionStatus.DISCONNECTED) >= 1)
        await until(lambda: session.connected)
        assert [c.client_id for c in broker.connected_clients] == [
            client_id_of(session)
        ]
        assert client_id_of(session) != first_id
    finally:
        await session.stop()


async def test_bad_password_is_auth_failed_without_retry(cloud: Cloud) -> None:
    """CONNACK 5 stops the session: one refusal, no reconnect attempts."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port, password="wrong")
    try:
        session.start()
        await until(lambda: session.status is SessionStatus.AUTH_FAILED)
        await asyncio.sleep(0.5)  # several back-off periods
        assert list(broker.refused) == ["not authorised"]
        assert session.status is SessionStatus.AUTH_FAILED
        assert session._task is not None
        assert session._task.done()
        assert [s for s, _ in rec.statuses] == [
            SessionStatus.CONNECTING,
            SessionStatus.AUTH_FAILED,
        ]
        assert broker.connected_clients == []
    finally:
        await session.stop()
    assert session.status is SessionStatus.STOPPED


async def test_other_connack_refusal_retries(pki: TestPKI, ca: IssuedCert) -> None:
    """A CONNACK refusal other than credentials is retried with back-off."""
    leaf = pki.server(ca, "mqtt.test", san=["127.0.0.1"])
    broker = ScriptedBroker(server_context(leaf), connack=3)  # server unavailable
    await broker.start()
    session, rec = make_session(_client_context(ca), broker.port)
    try:
        session.start()
        await until(lambda: broker.refusals >= 3)
        assert rec.count(SessionStatus.DISCONNECTED) >= 2
        assert rec.count(SessionStatus.AUTH_FAILED) == 0
        assert rec.connects == 0
    finally:
        await session.stop()
        await broker.stop()


async def test_untrusted_certificate_is_tls_failed(cloud: Cloud, pki: TestPKI) -> None:
    """A certificate from an unknown CA: TLS_FAILED with the verify error."""
    stranger = pki.root("Stranger CA", key_usage=True)
    session, rec = make_session(_client_context(stranger), cloud.broker.port)
    try:
        session.start()
        await until(lambda: rec.count(SessionStatus.TLS_FAILED) >= 2)
        error = next(e for s, e in rec.statuses if s is SessionStatus.TLS_FAILED)
        assert isinstance(error, ssl.SSLCertVerificationError)
        assert tls.classify_tls_error(error) == "unknown_ca"
        assert cloud.broker.connected_clients == []
        assert not cloud.broker.refused  # credentials never sent
        assert rec.connects == 0
    finally:
        await session.stop()


async def test_failed_handshake_closes_socket(cloud: Cloud, pki: TestPKI) -> None:
    """The TLS socket of a failed handshake is closed, not left to the GC."""
    stranger = pki.root("Stranger CA", key_usage=True)
    context = _client_context(stranger)
    wrapped: list[ssl.SSLSocket] = []
    original = context.wrap_socket

    def wrap_socket(*args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = original(*args, **kwargs)
        wrapped.append(sock)
        return sock

    context.wrap_socket = wrap_socket  # type: ignore[method-assign]
    session, rec = make_session(context, cloud.broker.port)
    try:
        session.start()
        await until(lambda: rec.count(SessionStatus.TLS_FAILED) >= 1)
    finally:
        await session.stop()
    assert wrapped
    assert all(sock.fileno() == -1 for sock in wrapped)


def test_wrap_without_tls_context_is_paho_behaviour() -> None:
    """Without a TLS context the wrapper defers to paho (which refuses)."""
    client = mqtt._Client(mqtt.CallbackAPIVersion.VERSION2)
    with socket.socket() as sock, pytest.raises(ValueError, match="Impossible"):
        client._ssl_wrap_socket(sock)


async def test_server_hostname_is_sent_as_sni(tmp_path: Path) -> None:
    """A printer is dialled by IP but SNI and the name check use the serial."""
    printer = PrinterPKI.create(tmp_path / "printer", serial=SERIAL)
    context = tls.build_printer_context([printer.root.der], pins=printer.pins)
    broker = MqttBroker(printer.leaf, users={"bblp": "12345678"})
    await broker.start()
    session, _ = make_session(
        context,
        broker.port,
        username="bblp",
        password="12345678",
        server_hostname=SERIAL,
    )
    try:
        session.start()
        await until(lambda: session.connected)
        assert list(broker.sni_names_seen) == [SERIAL]
        info = await broker.wait_for_client(client_id_of(session))
        assert info.sni == SERIAL
        assert info.username == "bblp"
    finally:
        await session.stop()
        await broker.stop()


async def test_server_hostname_mismatch_is_tls_failed(tmp_path: Path) -> None:
    """A certificate for another serial fails the name check."""
    printer = PrinterPKI.create(tmp_path / "printer", serial="01P00A000000999")
    context = tls.build_printer_context([printer.root.der], pins=printer.pins)
    broker = MqttBroker(printer.leaf, users={"bblp": "12345678"})
    await broker.start()
    session, rec = make_session(
        context, broker.port, username="bblp", server_hostname=SERIAL
    )
    try:
        session.start()
        await until(lambda: rec.count(SessionStatus.TLS_FAILED) >= 1)
        error = next(e for s, e in rec.statuses if s is SessionStatus.TLS_FAILED)
        assert isinstance(error, ssl.SSLCertVerificationError)
        assert tls.classify_tls_error(error) == "serial_mismatch"
        assert broker.connected_clients == []
    finally:
        await session.stop()
        await broker.stop()


async def test_connect_timeout_is_configured(cloud: Cloud) -> None:
    """A broker that never answers the handshake: the configured timeout ends
    the attempt (the default would wait 15 s)."""
    recorder = Recorder()
    with socket.create_server(("127.0.0.1", 0)) as silent:
        session = MqttSession(
            SessionConfig(
                host="127.0.0.1",
                port=silent.getsockname()[1],
                username=USER,
                password=PASSWORD,
                ssl_context=cloud.client_context,
                keepalive=1,
                connect_timeout=0.2,
            ),
            loop=asyncio.get_running_loop(),
            on_message=recorder.on_message,
            on_status=recorder.on_status,
            backoff=Backoff(30.0, 30.0),
        )
        try:
            session.start()
            await until(lambda: recorder.count(SessionStatus.DISCONNECTED) >= 1)
            errors = [e for s, e in recorder.statuses if e is not None]
            assert [type(e) for e in errors] == [TimeoutError]
        finally:
            await session.stop()


async def test_silent_handshake_frees_the_executor_thread(cloud: Cloud) -> None:
    """The blocking connect ends with the configured timeout, not keepalive.

    The connect runs in an executor thread: a handshake left waiting for
    keepalive (60 s) would hold that thread long after the attempt timed out
    on the loop, and retries would pile more threads up.
    """
    with socket.create_server(("127.0.0.1", 0)) as silent:
        session = MqttSession(
            SessionConfig(
                host="127.0.0.1",
                port=silent.getsockname()[1],
                username=USER,
                password=PASSWORD,
                ssl_context=cloud.client_context,
                connect_timeout=0.3,
            ),
            loop=asyncio.get_running_loop(),
            on_message=lambda topic, payload: None,
            on_status=lambda status, error: None,
        )
        client = session._new_client()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.to_thread(
                    client.connect, "127.0.0.1", silent.getsockname()[1], 60
                )
        assert time.monotonic() - started < 3


async def test_closed_port_retries(cloud: Cloud) -> None:
    """Nothing listening: DISCONNECTED with the OSError, then more attempts."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    session, rec = make_session(cloud.client_context, port)
    try:
        session.start()
        await until(lambda: rec.count(SessionStatus.DISCONNECTED) >= 3)
        assert rec.count(SessionStatus.CONNECTING) >= 3
        errors = [e for s, e in rec.statuses if s is SessionStatus.DISCONNECTED]
        assert all(isinstance(e, OSError) for e in errors)
        assert not session.connected
        assert session._sockets == {}
    finally:
        await session.stop()


async def test_keepalive_detects_dead_connection(pki: TestPKI, ca: IssuedCert) -> None:
    """No PINGRESP within the keepalive: the misc loop drops and reconnects."""
    leaf = pki.server(ca, "mqtt.test", san=["127.0.0.1"])
    # Never answers PINGREQ: the connection looks dead to the client.
    broker = ScriptedBroker(server_context(leaf), answer_pings=False)
    await broker.start()
    session, rec = make_session(
        _client_context(ca), broker.port, keepalive=1, check_interval=0.05
    )
    try:
        session.start()
        await until(lambda: session.connected)
        first_id = client_id_of(session)
        await until(lambda: rec.count(SessionStatus.DISCONNECTED) >= 1, within=6)
        await until(lambda: session.connected)
        assert client_id_of(session) != first_id
        assert rec.connects == 2
    finally:
        await session.stop()
        await broker.stop()


async def test_keepalive_pings_keep_connection(cloud: Cloud) -> None:
    """With a live broker, pings keep the same connection past the keepalive."""
    session, rec = make_session(
        cloud.client_context, cloud.broker.port, keepalive=1, check_interval=0.05
    )
    try:
        session.start()
        await until(lambda: session.connected)
        client_id = client_id_of(session)
        await asyncio.sleep(2.5)
        assert session.connected
        assert client_id_of(session) == client_id
        assert rec.count(SessionStatus.DISCONNECTED) == 0
    finally:
        await session.stop()


async def test_misc_loop_without_client_closes(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """loop_misc reporting no connection ends the connected phase."""
    session, rec = make_session(
        cloud.client_context, cloud.broker.port, check_interval=0.05
    )
    try:
        session.start()
        await until(lambda: session.connected)
        client = session._client
        assert client is not None
        monkeypatch.setattr(client, "loop_misc", lambda: MQTTErrorCode.MQTT_ERR_NO_CONN)
        await until(lambda: rec.count(SessionStatus.DISCONNECTED) >= 1)
        await until(lambda: session.connected)
    finally:
        await session.stop()


async def test_stop_leaves_no_registrations(cloud: Cloud) -> None:
    """After stop(): no reader/writer on the loop, no task, socket closed."""
    loop = asyncio.get_running_loop()
    before_fds = registered_fds(loop)
    before_tasks = asyncio.all_tasks()
    session, _ = make_session(cloud.client_context, cloud.broker.port)
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        fds = set(session._sockets.values())
        assert fds
        assert fds <= registered_fds(loop)
        assert session_registrations(loop, session) == sorted(fds)
        client = session._client
        assert client is not None
        sock = client.socket()
        assert sock is not None
    finally:
        await session.stop()
    assert not fds & registered_fds(loop)
    assert session_registrations(loop, session) == []
    await until(lambda: cloud.broker.connected_clients == [])
    await asyncio.sleep(0.05)  # the broker's side of the socket closes too
    assert registered_fds(loop) <= before_fds
    assert session._sockets == {}
    assert session._client is None
    assert sock.fileno() == -1
    assert asyncio.all_tasks() <= before_tasks
    await session.stop()  # a second stop is harmless
    assert session.status is SessionStatus.STOPPED


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02])
async def test_stop_while_connecting(cloud: Cloud, delay: float) -> None:
    """Stopping during the executor connect leaves no client behind."""
    session, _ = make_session(cloud.client_context, cloud.broker.port)
    try:
        session.start()
        await asyncio.sleep(delay)
    finally:
        await session.stop()
    await asyncio.sleep(0.3)
    assert session._sockets == {}
    await until(lambda: cloud.broker.connected_clients == [])


async def test_many_messages_in_one_read(cloud: Cloud) -> None:
    """200 messages sent at once (several per TLS record) all arrive, in order."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        await broker.wait_for_client(subscribed_to="device/a/report")
        padding = "x" * 300
        for index in range(200):
            broker.publish("device/a/report", f"{index:03d}{padding}")
        await until(lambda: len(rec.messages) == 200)
        assert [int(payload[:3]) for _, payload in rec.messages] == list(range(200))
        assert rec.threads == {threading.get_ident()}
    finally:
        await session.stop()


def batch(topic: str, payloads: list[bytes]) -> bytes:
    """Many PUBLISH packets for ONE write (one TLS record per 16 KiB)."""
    return b"".join(publish_packet(topic, payload) for payload in payloads)


async def test_many_messages_in_one_tls_record(pki: TestPKI, ca: IssuedCert) -> None:
    """Packets left in the TLS buffer (socket idle) are still read, in order."""
    leaf = pki.server(ca, "mqtt.test", san=["127.0.0.1"])
    broker = ScriptedBroker(server_context(leaf))
    await broker.start()
    session, rec = make_session(_client_context(ca), broker.port)
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        await broker.wait_for_client(subscribed_to="device/a/report")
        broker.send(batch("device/a/report", [b"%03d" % i for i in range(200)]))
        await until(lambda: len(rec.messages) == 200)
        assert [int(payload) for _, payload in rec.messages] == list(range(200))
        assert rec.threads == {threading.get_ident()}
        # A second small batch fits one record: nothing waits for more bytes.
        broker.send(batch("device/a/report", [b"x", b"y", b"z"]))
        await until(lambda: len(rec.messages) == 203)
        assert [p for _, p in rec.messages[-3:]] == [b"x", b"y", b"z"]
    finally:
        await session.stop()
        await broker.stop()


async def test_large_burst_with_qos1(cloud: Cloud) -> None:
    """QoS 1 deliveries (client PUBACKs) in bulk, each payload intact."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)
    session.subscribe("device/#")
    try:
        session.start()
        await until(lambda: session.connected)
        await broker.wait_for_client(subscribed_to="device/#")
        for index in range(300):
            broker.publish(f"device/{index % 3}/report", str(index), qos=1)
        await until(lambda: len(rec.messages) == 300)
        assert [int(p) for _, p in rec.messages] == list(range(300))
        assert session.connected
    finally:
        await session.stop()


# ----------------------------------------------------- defensive paths


class _FakeSock:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


async def test_socket_hooks_ignore_stale_clients(cloud: Cloud) -> None:
    """Hooks for an old client or a closed socket register nothing."""
    loop = asyncio.get_running_loop()
    session, _ = make_session(cloud.client_context, cloud.broker.port)
    stale = session._new_client()
    before = registered_fds(loop)
    session._socket_open(stale, None, _FakeSock(10_000))
    session._client = stale
    session._socket_open(stale, None, _FakeSock(-1))
    session._register_write(stale, None, _FakeSock(10_000))
    session._unregister_write(stale, None, _FakeSock(10_000))
    session._socket_close(stale, None, _FakeSock(10_000))
    session._client = None
    session._read(stale)  # a read for a client no longer current: ignored
    assert session._sockets == {}
    assert registered_fds(loop) == before
    await session.stop()


async def test_read_error_closes(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing loop_read ends the connection, and the session reconnects."""
    session, rec = make_session(cloud.client_context, cloud.broker.port)
    try:
        session.start()
        await until(lambda: session.connected)
        client = session._client
        assert client is not None
        monkeypatch.setattr(
            client, "loop_read", lambda _n: MQTTErrorCode.MQTT_ERR_CONN_LOST
        )
        session._read(client)
        await until(lambda: rec.count(SessionStatus.DISCONNECTED) >= 1)
        await until(lambda: session.connected)
        assert session._client is not client
    finally:
        await session.stop()


# ------------------------------------------------------------ supervision


@pytest.fixture
async def raw_broker(pki: TestPKI, ca: IssuedCert) -> AsyncIterator[ScriptedBroker]:
    """A TLS server that can send bytes no well-behaved broker would."""
    leaf = pki.server(ca, "mqtt.test", san=["127.0.0.1"])
    broker = ScriptedBroker(server_context(leaf))
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def records_of(
    caplog: pytest.LogCaptureFixture, level: int = logging.WARNING
) -> list[logging.LogRecord]:
    """Records of the mqtt module at ``level`` or above."""
    return [r for r in caplog.records if r.name == mqtt.__name__ and r.levelno >= level]


async def test_non_utf8_topic_is_dropped_and_reading_goes_on(
    raw_broker: ScriptedBroker, ca: IssuedCert, caplog: pytest.LogCaptureFixture
) -> None:
    """A PUBLISH whose topic is not UTF-8 is dropped; later ones still arrive.

    paho raises on the topic inside its packet handler and would handle the
    same packet again on every read: the connection would be wedged.
    """
    session, rec = make_session(_client_context(ca), raw_broker.port)
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        client_id = client_id_of(session)
        await raw_broker.wait_for_client(subscribed_to="device/a/report")
        for _ in range(3):
            raw_broker.send(
                packet(0x30, mqtt_string(b"device/\xff\xfe/report") + b"bad")
            )
            raw_broker.publish("device/a/report", b"good")
        await until(lambda: len(rec.messages) == 3)
        assert rec.messages == [("device/a/report", b"good")] * 3
        assert session.connected
        assert client_id_of(session) == client_id
        assert rec.connects == 1
    finally:
        await session.stop()
    warnings = records_of(caplog)
    assert len(warnings) == 1  # logged once, not per message
    assert "not UTF-8" in warnings[0].getMessage()


async def test_malformed_publish_resets_the_connection(
    raw_broker: ScriptedBroker, ca: IssuedCert, caplog: pytest.LogCaptureFixture
) -> None:
    """A PUBLISH paho cannot parse drops the connection; a new one works."""
    session, rec = make_session(_client_context(ca), raw_broker.port)
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        first_id = client_id_of(session)
        await raw_broker.wait_for_client(first_id, subscribed_to="device/a/report")
        # The topic length claims more bytes than the packet holds.
        raw_broker.send(packet(0x30, struct.pack("!H", 200) + b"short"))
        raw_broker.publish("device/a/report", b"lost with the connection")
        await until(lambda: rec.connects == 2)
        second_id = client_id_of(session)
        assert second_id != first_id
        await raw_broker.wait_for_client(second_id, subscribed_to="device/a/report")
        raw_broker.publish("device/a/report", b"after")
        await until(lambda: ("device/a/report", b"after") in rec.messages)
        assert session._sockets  # the new socket is watched
    finally:
        await session.stop()
    errors = records_of(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "bad packet" in errors[0].getMessage()


async def test_message_handler_failure_is_logged_once(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler raising on some messages: one error log, the rest delivered."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)

    def on_message(topic: str, payload: bytes) -> None:
        if payload == b"bad":
            raise ValueError("handler bug")
        rec.on_message(topic, payload)

    session._on_message = on_message
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        client_id = client_id_of(session)
        await broker.wait_for_client(client_id, subscribed_to="device/a/report")
        for index in range(3):
            broker.publish("device/a/report", b"bad")
            broker.publish("device/a/report", b"good%d" % index)
        await until(lambda: len(rec.messages) == 3)
        assert [p for _, p in rec.messages] == [b"good0", b"good1", b"good2"]
        assert client_id_of(session) == client_id
    finally:
        await session.stop()
    errors = records_of(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "message handler failed" in errors[0].getMessage()


async def test_owner_callback_failures_are_contained(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    """Status and connect handlers that raise do not end the session."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)

    def on_status(status: SessionStatus, error: BaseException | None) -> None:
        rec.on_status(status, error)
        raise RuntimeError("status handler bug")

    def on_connected() -> None:
        rec.on_connected()
        raise RuntimeError("connect handler bug")

    session._on_status = on_status
    session._on_connected = on_connected
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        await broker.wait_for_client(subscribed_to="device/a/report")
        broker.publish("device/a/report", b"one")
        await until(lambda: len(rec.messages) == 1)
        assert await broker.disconnect(client_id_of(session))
        await until(lambda: rec.connects == 2)
        await until(lambda: session.connected)
    finally:
        await session.stop()
    assert session.status is SessionStatus.STOPPED
    errors = [r.getMessage() for r in records_of(caplog, logging.ERROR)]
    assert len(errors) == 2
    assert any("status handler failed" in e for e in errors)
    assert any("connect handler failed" in e for e in errors)


async def test_bad_subscription_is_isolated(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    """A topic paho refuses is dropped; the other topics are subscribed."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port)
    session.subscribe("device/#/bad")
    session.subscribe("device/a/report")
    try:
        session.start()
        await until(lambda: session.connected)
        info = await broker.wait_for_client(subscribed_to="device/a/report")
        assert info.subscriptions == ("device/a/report",)
        assert rec.connects == 1
        session.subscribe("also/#/bad")  # while connected: no exception either
        broker.publish("device/a/report", b"one")
        await until(lambda: rec.messages == [("device/a/report", b"one")])
        assert session._topics == {"device/a/report"}
    finally:
        await session.stop()
    errors = records_of(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "cannot subscribe" in errors[0].getMessage()


async def test_subscribe_and_unsubscribe_errors_are_contained(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paho failing on subscribe/unsubscribe never reaches the caller."""
    session, _ = make_session(cloud.client_context, cloud.broker.port)
    try:
        session.start()
        await until(lambda: session.connected)
        client = session._client
        assert client is not None

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise OSError("socket gone")

        monkeypatch.setattr(client, "subscribe", broken)
        monkeypatch.setattr(client, "unsubscribe", broken)
        session.subscribe("device/a/report")
        assert "device/a/report" in session._topics  # kept for the next connect
        session.unsubscribe("device/a/report")
        assert session.connected
    finally:
        await session.stop()


async def test_unexpected_error_reconnects(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception while connecting is survived with back-off."""
    session, rec = make_session(cloud.client_context, cloud.broker.port)
    original = session._new_client
    calls: list[int] = []

    def flaky() -> mqtt._Client:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return original()

    monkeypatch.setattr(session, "_new_client", flaky)
    try:
        session.start()
        await until(lambda: session.connected)
        assert len(calls) == 2
        errors = [e for s, e in rec.statuses if s is SessionStatus.DISCONNECTED]
        assert [type(e) for e in errors] == [RuntimeError]
    finally:
        await session.stop()


async def test_read_and_write_exceptions_drop_the_connection(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paho raising from loop_read/loop_write/loop_misc: a new connection."""
    session, rec = make_session(
        cloud.client_context, cloud.broker.port, check_interval=0.05
    )

    def broken(*args: Any) -> Any:
        raise struct.error("bad packet")

    try:
        session.start()
        for expected, method in enumerate(("loop_read", "loop_write"), start=2):
            await until(lambda: session.connected)
            client = session._client
            assert client is not None
            monkeypatch.setattr(client, method, broken)
            getattr(session, "_" + method.removeprefix("loop_"))(client)
            assert session._sockets == {}  # unwatched at once
            await until(lambda n=expected: rec.connects == n)  # type: ignore[misc]
        await until(lambda: session.connected)
        client = session._client
        assert client is not None
        monkeypatch.setattr(client, "loop_misc", broken)
        await until(lambda: rec.connects == 4)
        session._write(client)  # a stale client is ignored
    finally:
        await session.stop()


async def test_stop_never_raises(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing disconnect still closes the socket and stops the session."""
    session, _ = make_session(cloud.client_context, cloud.broker.port)
    session.start()
    await until(lambda: session.connected)
    client = session._client
    assert client is not None
    sock = client.socket()
    assert sock is not None

    def broken() -> None:
        raise RuntimeError("disconnect bug")

    monkeypatch.setattr(client, "disconnect", broken)
    await session.stop()
    assert session.status is SessionStatus.STOPPED
    assert session._sockets == {}
    assert sock.fileno() == -1


async def test_stop_after_task_failure(cloud: Cloud) -> None:
    """A session task that failed is reported, not raised by stop()."""
    session, _ = make_session(cloud.client_context, cloud.broker.port)

    async def failing() -> None:
        raise RuntimeError("bug")

    session._task = asyncio.get_running_loop().create_task(failing())
    await asyncio.sleep(0)
    await session.stop()
    assert session.status is SessionStatus.STOPPED


# ------------------------------------------------------------ back-off


@pytest.fixture
async def dropping_broker(
    pki: TestPKI, ca: IssuedCert
) -> AsyncIterator[ScriptedBroker]:
    """Accepts every login, then drops the client after ``hold`` seconds."""
    leaf = pki.server(ca, "mqtt.test", san=["127.0.0.1"])
    broker = ScriptedBroker(server_context(leaf), hold=0.0)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_backoff_grows_when_the_broker_drops_at_once(
    dropping_broker: ScriptedBroker, ca: IssuedCert
) -> None:
    """Accepted then dropped: the intervals grow to the cap, no fixed rate.

    The back-off starts over only after a connection stayed up for
    ``stable_after``; a CONNACK alone proves nothing.
    """
    session, rec = make_session(
        _client_context(ca),
        dropping_broker.port,
        retry=RetryPolicy(minimum=0.1, maximum=0.4, stable_after=5.0),
        backoff=Backoff(0.1, 0.4, rand=lambda: 1.0),  # delays 0.1, 0.2, 0.4, 0.4
    )
    try:
        session.start()
        await until(lambda: len(dropping_broker.accepted_at) >= 6, within=10)
    finally:
        await session.stop()
    assert rec.connects >= 6
    first, second, third, fourth, fifth = gaps(dropping_broker.accepted_at)[:5]
    assert first >= 0.1
    assert second >= 0.2
    assert third >= 0.4
    assert fourth >= 0.4
    # Capped at 0.4 (plus a handshake): uncapped, these would be 0.8 and 1.6.
    assert min(fourth, fifth) < 0.75


async def test_backoff_starts_over_after_a_stable_connection(
    dropping_broker: ScriptedBroker, ca: IssuedCert
) -> None:
    """Connections that stayed up for stable_after reconnect at the minimum."""
    dropping_broker.hold = 0.3
    session, _ = make_session(
        _client_context(ca),
        dropping_broker.port,
        retry=RetryPolicy(minimum=0.05, maximum=5.0, stable_after=0.2),
        backoff=Backoff(0.05, 5.0, rand=lambda: 1.0),
    )
    try:
        session.start()
        await until(lambda: len(dropping_broker.accepted_at) >= 6, within=10)
    finally:
        await session.stop()
    # Held 0.3 s, then 0.05 s apart; without the reset the fifth gap would
    # include a 0.8 s delay.
    assert max(gaps(dropping_broker.accepted_at)) < 0.8


def test_retry_policy_defaults() -> None:
    """One minute of stability resets 1 s .. 60 s jittered delays."""
    policy = RetryPolicy()
    assert (policy.minimum, policy.maximum, policy.stable_after) == (1.0, 60.0, 60.0)
    backoff = RetryPolicy(minimum=0.5, maximum=4.0).backoff()
    delays = [backoff.next() for _ in range(50)]
    assert all(0.5 <= delay <= 4.0 for delay in delays)
    assert len(set(delays)) > 1  # jittered


async def test_retry_after_auth_refusal(cloud: Cloud) -> None:
    """retry() logs in again after the back-off; ignored while running/stopped."""
    broker = cloud.broker
    session, rec = make_session(cloud.client_context, broker.port, password="wrong")
    session.retry()  # never started: nothing happens
    assert session._task is None
    try:
        session.start()
        await until(lambda: session.status is SessionStatus.AUTH_FAILED)
        assert len(broker.refused) == 1
        session.retry()
        running = session._task
        session.retry()  # already retrying: the same task
        assert session._task is running
        await until(lambda: len(broker.refused) == 2)
        await until(lambda: session.status is SessionStatus.AUTH_FAILED)
        await broker.set_users({USER: "wrong"})
        session.retry()
        await until(lambda: session.connected)
        assert rec.connects == 1
    finally:
        await session.stop()
    session.retry()
    assert session._task is None


async def test_stop_can_be_cancelled(cloud: Cloud) -> None:
    """Cancelling stop() itself is not swallowed."""
    session, _ = make_session(cloud.client_context, cloud.broker.port)
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await release.wait()

    session._task = asyncio.get_running_loop().create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopping = asyncio.get_running_loop().create_task(session.stop())
    await asyncio.sleep(0.01)
    stopping.cancel()
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await stopping
