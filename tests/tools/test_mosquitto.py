"""The test broker: mosquitto started, observed and steered by tests.

Clients here are real paho clients (in their own thread, see tests/tools), so
every assertion is about what mosquitto really did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import pytest_runtest_makereport
from tools.test_pki import PrinterPKI
from tools.virtual_printer.client import MqttClient
from tools.virtual_printer.mosquitto import (
    MosquittoNotFoundError,
    MqttBroker,
    _Front,
    encode_payload,
    find_mosquitto,
    password_hash,
    server_name,
)

from . import ACCESS_CODE, PahoClient, RawClient, client_context, eventually

pytestmark = pytest.mark.usefixtures("socket_enabled")

SERIAL = "01P00A000000777"
REPORT = f"device/{SERIAL}/report"
REQUEST = f"device/{SERIAL}/request"

type MakePaho = Callable[..., PahoClient]


@pytest.fixture
def pki(tmp_path: Path) -> PrinterPKI:
    return PrinterPKI.create(tmp_path / "pki", SERIAL)


@pytest.fixture
def context(pki: PrinterPKI) -> ssl.SSLContext:
    """Trusts the printer CA, checks the serial in the CN (like the integration)."""
    ctx = client_context(pki.ca_pem)
    ctx.hostname_checks_common_name = True
    return ctx


@pytest.fixture
async def broker(pki: PrinterPKI) -> AsyncIterator[MqttBroker]:
    async with MqttBroker(pki.leaf, users={"bblp": ACCESS_CODE}) as running:
        yield running


@pytest.fixture
def paho(broker: MqttBroker, context: ssl.SSLContext) -> Iterator[MakePaho]:
    """Start paho clients on the broker (TLS, SNI = serial); closed at the end."""
    made: list[PahoClient] = []

    def make(**kwargs: object) -> PahoClient:
        options: dict[str, object] = {"ssl_context": context, "sni": SERIAL}
        options.update(kwargs)
        client = PahoClient(broker.port, **options).start()  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


async def test_clients_subscriptions_and_messages(
    broker: MqttBroker, paho: MakePaho
) -> None:
    """What clients do shows up as they did it; the broker side publishes."""
    client = paho(client_id="ha-1", subscribe=(REPORT, "device/+/report"), qos=1)
    await client.ready()
    info = await broker.wait_for_client("ha-1", subscribed_to=REPORT)
    assert info.username == "bblp"
    assert info.sni == SERIAL
    assert info.keepalive == 10
    assert info.subscriptions == (REPORT, "device/+/report")
    assert broker.sni_names_seen == [SERIAL]

    broker.publish(REPORT, {"print": {"msg": 0}})
    await eventually(lambda: client.json_messages(REPORT))
    assert client.json_messages(REPORT)[0] == {"print": {"msg": 0}}
    client.publish_json(REQUEST, {"pushing": {"command": "pushall"}}, qos=1)
    await eventually(lambda: len(broker.messages) == 2)
    assert [(m.topic, m.qos) for m in broker.messages] == [(REPORT, 0), (REQUEST, 1)]
    assert json.loads(broker.messages[1].payload) == {"pushing": {"command": "pushall"}}

    client.client.unsubscribe(REPORT)
    await eventually(
        lambda: broker.connected_clients[0].subscriptions == ("device/+/report",)
    )
    # The broker's own side (its observer) is never listed.
    assert [c.client_id for c in broker.connected_clients] == ["ha-1"]


async def test_refused_login(broker: MqttBroker, paho: MakePaho) -> None:
    """A wrong password: CONNACK 5, recorded, never a connected client."""
    client = paho(client_id="wrong", password="00000000")
    await eventually(lambda: client.connects)
    assert str(client.connects[0]) == "Not authorized"
    await eventually(lambda: broker.refused)
    assert broker.refused[0] == "not authorised"
    assert broker.connected_clients == []


async def test_disconnect_one_and_all(broker: MqttBroker, paho: MakePaho) -> None:
    """Dropped clients lose the connection (and, being paho, come back)."""
    first, second = paho(client_id="one"), paho(client_id="two")
    await first.ready()
    await second.ready()
    await broker.wait_for_client("two")
    assert await broker.disconnect("one")
    await eventually(lambda: first.disconnects)
    assert not await broker.disconnect("nobody")
    await first.ready(count=2)
    await broker.wait_for_client("one")
    assert await broker.disconnect_all() == 2
    await first.ready(count=3)
    await second.ready(count=2)


async def test_set_users_reloads_and_drops(broker: MqttBroker, paho: MakePaho) -> None:
    """New logins apply at once; a client whose login lapsed is dropped."""
    client = paho(client_id="ha")
    await client.ready()
    await broker.wait_for_client("ha")
    await broker.set_users({"bblp": "87654321"})
    assert broker.users == {"bblp": "87654321"}
    await eventually(lambda: client.disconnects)
    await eventually(lambda: broker.refused)  # paho tries the old code again
    fresh = paho(client_id="fresh", password="87654321")
    await fresh.ready()
    await broker.set_users(None)  # anyone
    anonymous = paho(client_id="anon", username=None)
    await anonymous.ready()


async def test_restart_keeps_port_and_own_side_first(
    broker: MqttBroker, paho: MakePaho
) -> None:
    """After a restart the port is the same and own clients are back first."""
    received: list[bytes] = []
    printer = broker.own_client(
        "printer",
        subscriptions=[(REQUEST, 1)],
        on_message=lambda _t, payload, _q: received.append(payload),
    )
    await printer.start()
    try:
        port = broker.port
        await broker.stop()
        assert not broker.running
        assert not broker.publish(REPORT, b"down")
        await broker.set_users({"bblp": ACCESS_CODE})  # kept for the next start
        await broker.start()
        assert broker.port == port
        assert printer.ready  # subscribed before anyone could connect
        client = paho(client_id="ha")
        await client.ready()
        client.publish_json(REQUEST, {"n": 1})
        await eventually(lambda: received)
    finally:
        await printer.stop()


async def test_restricted_topics(pki: PrinterPKI, paho: MakePaho) -> None:
    """Like Bambu's cloud: an account reads reports and writes requests only."""
    async with MqttBroker(
        pki.leaf, users={"bblp": ACCESS_CODE}, restrict_topics=True
    ) as cloud:
        context = client_context(pki.ca_pem)
        context.hostname_checks_common_name = True
        spy = PahoClient(
            cloud.port,
            client_id="spy",
            ssl_context=context,
            sni=SERIAL,
            subscribe=("#",),
        ).start()
        try:
            await spy.ready()
            await cloud.wait_for_client("spy", subscribed_to="#")
            cloud.publish(REQUEST, b"secret command")
            cloud.publish(REPORT, b"report")
            await eventually(lambda: spy.messages)
            await asyncio.sleep(0.1)
            assert [m.topic for m in spy.messages] == [REPORT]
        finally:
            spy.close()


async def test_plain_broker_without_tls() -> None:
    """Without a certificate the listener is plain TCP; no SNI to record."""
    async with MqttBroker(users={"bblp": ACCESS_CODE}) as plain:
        client = PahoClient(plain.port, client_id="plain").start()
        try:
            await client.ready()
            info = await plain.wait_for_client("plain")
            assert info.sni is None
            assert plain.sni_names_seen == []
        finally:
            client.close()


async def test_front_drops_what_is_not_tls(broker: MqttBroker) -> None:
    """Bytes that are no ClientHello are dropped at the door."""
    raw = await RawClient.open(broker.port, b"MQTT? no, plain bytes")
    try:
        assert await raw.closed_by_peer()
    finally:
        await raw.close()
    assert broker.sni_names_seen == []


# CPython 3.13's asyncio.Server counts a transport accepted during close()
# once more when it is collected after wait_closed() returned, and reports
# that as an unraisable TypeError; the door itself closed everything.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_front_stops_with_connections_in_flight() -> None:
    """Stopping the door never hangs on a connection accepted at that moment.

    Clients connecting while ``stop`` runs may be accepted before their
    handler starts; ``Server.wait_closed`` waits for them, so each must be
    closed too (it hung a test teardown once).
    """
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # the upstream keeps every connection open

    upstream = await asyncio.start_server(hold, "127.0.0.1", 0)
    up_port = upstream.sockets[0].getsockname()[1]
    try:
        for turns in range(60):
            front = _Front(lambda: up_port, tls=False, on_hello=lambda port, name: None)
            port = await front.start(0)
            opening = [
                asyncio.create_task(asyncio.open_connection("127.0.0.1", port))
                for _ in range(5)
            ]
            for _ in range(turns % 6):  # stop at every stage of the accept
                await asyncio.sleep(0)
            async with asyncio.timeout(5):
                await front.stop()
            for result in await asyncio.gather(*opening, return_exceptions=True):
                if isinstance(result, tuple):
                    result[1].transport.abort()
    finally:
        for writer in held:
            writer.transport.abort()
        upstream.close()
        await upstream.wait_closed()


async def test_missing_binary_and_failed_start(pki: PrinterPKI, tmp_path: Path) -> None:
    """No mosquitto: a clear error (a skip in the suite); bad files: the log."""
    with pytest.raises(MosquittoNotFoundError, match="no mosquitto at"):
        await MqttBroker(binary=str(tmp_path / "no-mosquitto")).start()
    assert find_mosquitto((str(tmp_path / "none"),)) is None
    broken = dataclasses.replace(pki.leaf, key_path=tmp_path / "missing.key")
    failing = MqttBroker(broken)
    with pytest.raises(RuntimeError, match="did not start") as err:
        await failing.start()
    assert "key" in str(err.value).lower()
    assert not failing.running


def test_missing_mosquitto_makes_a_skip() -> None:
    """The suite's report hook turns MosquittoNotFoundError into a skip."""

    def call() -> None:
        raise MosquittoNotFoundError("mosquitto is not installed")

    info = pytest.CallInfo.from_call(call, when="call")

    class Item:
        path = Path("tests/test_x.py")
        location = ("tests/test_x.py", 3, "test_x")

    report = pytest.TestReport(
        "tests/test_x.py::test_x", ("x", 3, "x"), {}, "failed", "boom", "call"
    )
    hook = pytest_runtest_makereport(Item(), info)  # type: ignore[arg-type]
    next(hook)
    with pytest.raises(StopIteration) as done:
        hook.send(report)
    skipped = done.value.value
    assert skipped.outcome == "skipped"
    assert skipped.longrepr[2] == "mosquitto is not installed"


def test_helpers() -> None:
    """Payload encoding, password hashes and ClientHello parsing."""
    assert encode_payload(b"\x00") == b"\x00"
    assert encode_payload("é") == "é".encode()
    assert encode_payload({"a": [1, 2]}) == b'{"a":[1,2]}'
    algorithm, rounds, salt, digest = password_hash("x").split("$")[1:]
    assert (algorithm, rounds) == ("7", "101")
    assert salt
    assert digest
    assert password_hash("x") != password_hash("x")  # salted
    with pytest.raises(ValueError, match="ClientHello"):
        server_name(b"\x17\x03\x03\x00\x01x")


async def test_client_handles_refusal_and_handler_errors(
    broker: MqttBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """An own-side client: refused logins are retried, handler bugs logged."""
    caplog.set_level(logging.WARNING)
    wrong = MqttClient(
        lambda: broker.internal_port,
        client_id="wrong",
        username="nobody",
        password="nothing",
        retry_delay=0.05,
    )
    assert not wrong.publish(REPORT, b"x")  # not connected
    with pytest.raises(TimeoutError):
        await wrong.start(within=0.3)
    await wrong.stop()
    assert "broker refused" in caplog.text

    def broken(_topic: str, _payload: bytes, _qos: int) -> None:
        raise RuntimeError("handler bug")

    client = broker.own_client("buggy", subscriptions=[(REQUEST, 0)], on_message=broken)
    await client.start()
    try:
        assert broker.publish(REQUEST, b"boom")
        await eventually(lambda: "message handler failed" in caplog.text)
        assert client.publish(REPORT, b"still fine")
    finally:
        await client.stop()
