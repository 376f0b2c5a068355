"""Tests for BambuHub (custom_components/.../bambu/hub.py).

A real TLS cloud broker (mosquitto; users ``u_<uid>``/token) and, for LAN
tests, a printer broker with a Bambu-shaped certificate (CN = serial), both on
127.0.0.1, with virtual printers (real MQTT clients) answering requests.
Every hub, broker and printer is stopped in ``finally``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from custom_components.bambu_cloud.bambu import commands, tls
from custom_components.bambu_cloud.bambu import hub as hub_module
from custom_components.bambu_cloud.bambu.auth import AppCertificate
from custom_components.bambu_cloud.bambu.config import (
    LAN_PORT,
    BambuConfig,
    Ports,
    Timeouts,
    Watchdog,
)
from custom_components.bambu_cloud.bambu.const import RegionEndpoints, lookup_model
from custom_components.bambu_cloud.bambu.hub import (
    AVAILABILITY,
    BambuHub,
    CloudSpec,
    CommandError,
    CommandTimeoutError,
    NotConnectedError,
    PrinterLink,
    PrinterSpec,
    Problem,
    ProblemKind,
    TrustError,
    split_host_port,
)
from custom_components.bambu_cloud.bambu.mqtt import MqttSession, RetryPolicy
from custom_components.bambu_cloud.bambu.state import ChangeSet
from tests.cloud_server import P1S, TOKEN, UID, X1C
from tools.test_pki import IssuedCert, PrinterPKI, TestPKI
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

pytestmark = pytest.mark.usefixtures("socket_enabled")

X1_SERIAL: str = X1C["dev_id"]
P1_SERIAL: str = P1S["dev_id"]
ACCESS_CODE = "12345678"
WITHIN = 5.0


async def until(condition: Callable[[], bool], within: float = WITHIN) -> None:
    """Poll until condition holds (bounded)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls other tasks' effects
            await asyncio.sleep(0.01)


def commands_of(printer: VirtualPrinter) -> list[str]:
    """Command names a virtual printer received, oldest first."""
    return [next(iter(m.values()))["command"] for m in printer.received]


def requests_on(broker: MqttBroker, serial: str, command: str) -> int:
    """How many requests with this command clients published for a printer."""
    topic = f"device/{serial}/request"
    count = 0
    for message in broker.messages:
        if message.topic != topic:
            continue
        body = json.loads(message.payload)
        if next(iter(body.values())).get("command") == command:
            count += 1
    return count


def spec(serial: str, *, lan_host: str | None = None, **extra: Any) -> PrinterSpec:
    """A printer spec; LAN options only when lan_host is given."""
    return PrinterSpec(
        serial=serial,
        model=lookup_model(serial=serial),
        name=extra.pop("name", serial),
        access_code=extra.pop("access_code", ACCESS_CODE if lan_host else None),
        lan_host=lan_host,
    )


@dataclass
class Calls:
    """Everything the hub reported to its callbacks."""

    problems: list[Problem] = field(default_factory=list)
    changes: dict[str, list[ChangeSet]] = field(default_factory=dict)

    def listener(self, serial: str) -> Callable[[ChangeSet], None]:
        changes = self.changes.setdefault(serial, [])
        return changes.append


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# Every session the hub creates reconnects within a fraction of a second, and
# a printer's chain is looked at again just as fast.
FAST = RetryPolicy(minimum=0.05, maximum=0.2, stable_after=1.0)
SLOW = RetryPolicy(minimum=30.0, maximum=30.0)


def hub_config(broker: MqttBroker, **changes: Any) -> BambuConfig:
    """The library's configuration for the test cloud broker."""
    endpoints = RegionEndpoints(
        api_url="http://127.0.0.1:1",
        web_url="http://127.0.0.1:1",
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
    )
    return BambuConfig(endpoints=endpoints, **changes)


@pytest.fixture
def cloud_context(ca: IssuedCert) -> ssl.SSLContext:
    """Trusts the cloud broker's CA (certificate for 127.0.0.1)."""
    return ssl.create_default_context(cadata=ca.pem)


@dataclass
class Lan:
    """A printer's own broker, its virtual printer and the trust factory."""

    broker: MqttBroker
    printer: VirtualPrinter
    pki: PrinterPKI
    context: ssl.SSLContext
    factory_calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.broker.port}"

    async def factory(
        self, serial: str, host: str, *, refresh: bool = False
    ) -> ssl.SSLContext:
        self.factory_calls.append((serial, host))
        return self.context

    async def start_hub(self, hub: BambuHub) -> PrinterLink:
        """Bind the X1C at this broker's address, start ``hub``: the X1C's link."""
        hub.set_printers({X1_SERIAL: spec(X1_SERIAL, lan_host=self.host)})
        await hub.start()
        return hub.printers[X1_SERIAL]


@pytest.fixture
async def lan(tmp_path: Path) -> AsyncIterator[Lan]:
    """The X1C's LAN broker (CN = serial, pinned CA) with its printer attached."""
    printer_pki = PrinterPKI.create(tmp_path / "printer", serial=X1_SERIAL)
    context = tls.build_printer_context([printer_pki.root.der], pins=printer_pki.pins)
    broker = MqttBroker(printer_pki.leaf, users={"bblp": ACCESS_CODE})
    printer = VirtualPrinter(broker, X1_SERIAL, "X1C")
    printer.state["nozzle_temper"] = 77.0
    try:
        await broker.start()
        await printer.start()
        yield Lan(broker, printer, printer_pki, context)
    finally:
        await printer.stop()
        await broker.stop()


async def no_lan(serial: str, host: str) -> ssl.SSLContext:
    """A context factory for tests without LAN printers."""
    raise AssertionError(f"unexpected LAN trust request for {serial} at {host}")


@dataclass
class HubFactory:
    """Builds hubs against the cloud broker and stops them all at the end."""

    broker: MqttBroker
    context: ssl.SSLContext
    calls: Calls = field(default_factory=Calls)
    hubs: list[BambuHub] = field(default_factory=list)

    def __call__(
        self,
        *,
        printer_context: Callable[[str, str], Awaitable[ssl.SSLContext]] = no_lan,
        token: str = TOKEN,
        context: ssl.SSLContext | None = None,
        clock: Callable[[], float] | None = None,
        **config: Any,
    ) -> BambuHub:
        """A hub with fast retries; ``config`` overrides BambuConfig fields."""
        extra: dict[str, Any] = {} if clock is None else {"clock": clock}
        hub = BambuHub(
            asyncio.get_running_loop(),
            CloudSpec(uid=UID, token=token, ssl_context=context or self.context),
            config=hub_config(
                self.broker, **{"retry": FAST, "probe_retry": FAST, **config}
            ),
            printer_context=printer_context,
            on_problem=self.calls.problems.append,
            **extra,
        )
        self.hubs.append(hub)
        return hub


@pytest.fixture
async def make_hub(
    broker: MqttBroker, cloud_context: ssl.SSLContext
) -> AsyncIterator[HubFactory]:
    """Hub factory; every hub made is stopped after the test."""
    factory = HubFactory(broker, cloud_context)
    try:
        yield factory
    finally:
        for hub in factory.hubs:
            await hub.stop()


@pytest.fixture
async def x1c(broker: MqttBroker) -> AsyncIterator[VirtualPrinter]:
    """A virtual X1C on the cloud broker (full reports)."""
    printer = VirtualPrinter(broker, X1_SERIAL, "X1C")
    try:
        await printer.start()
        yield printer
    finally:
        await printer.stop()


@pytest.fixture
async def p1s(broker: MqttBroker) -> AsyncIterator[VirtualPrinter]:
    """A virtual P1S on the cloud broker (delta reports)."""
    printer = VirtualPrinter(broker, P1_SERIAL, "P1S")
    try:
        await printer.start()
        yield printer
    finally:
        await printer.stop()


def hub_tasks(tasks: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks running hub or session code (not the brokers' handlers)."""
    return [
        task
        for task in tasks
        if task.get_coro().__qualname__.startswith(("BambuHub.", "MqttSession."))
    ]


def cloud_client_id(hub: BambuHub) -> str:
    client = hub.cloud._client
    assert client is not None
    return client._client_id.decode()


# -------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.168.1.20", ("192.168.1.20", LAN_PORT)),
        ("192.168.1.20:1883", ("192.168.1.20", 1883)),
        ("printer.local:8884", ("printer.local", 8884)),
        ("printer.local", ("printer.local", LAN_PORT)),
        ("printer.local:", ("printer.local:", LAN_PORT)),
        ("printer.local:abc", ("printer.local:abc", LAN_PORT)),
        (":8883", (":8883", LAN_PORT)),
        ("fe80::1", ("fe80::1", LAN_PORT)),
        ("fe80::1:8883", ("fe80::1:8883", LAN_PORT)),
        ("[::1]:8883", ("[::1]:8883", LAN_PORT)),
    ],
)
def test_split_host_port(value: str, expected: tuple[str, int]) -> None:
    """Only an unambiguous "host:port" overrides the LAN MQTT port."""
    assert split_host_port(value) == expected


def test_split_host_port_default_is_an_argument() -> None:
    """The port used without ":port" is the caller's (the configured one)."""
    assert split_host_port("192.168.1.20", 1884) == ("192.168.1.20", 1884)
    assert split_host_port("192.168.1.20:1883", 1884) == ("192.168.1.20", 1883)


def test_trust_error_keeps_kind() -> None:
    """TrustError carries the classified cause."""
    err = TrustError("unknown_ca")
    assert err.kind == "unknown_ca"
    assert str(err) == "unknown_ca"


# ---------------------------------------------------------------- cloud


async def test_greets_on_connect(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    p1s: VirtualPrinter,
) -> None:
    """One cloud connection; get_version then pushall per printer; available."""
    hub = make_hub()
    calls = make_hub.calls
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL), P1_SERIAL: spec(P1_SERIAL)})
    unlisten = {s: hub.listen(s, calls.listener(s)) for s in (X1_SERIAL, P1_SERIAL)}
    await hub.start()
    await until(lambda: all(link.available for link in hub.printers.values()))
    assert [c.username for c in broker.connected_clients] == [f"u_{UID}"]
    assert commands_of(x1c)[:2] == ["get_version", "pushall"]
    assert commands_of(p1s)[:2] == ["get_version", "pushall"]
    for serial in (X1_SERIAL, P1_SERIAL):
        link = hub.printers[serial]
        assert link.state.has_full_report
        assert link.state.online is True
        changes = calls.changes[serial]
        assert any(AVAILABILITY in change for change in changes)
        assert any("nozzle_temper" in change for change in changes)
    assert (
        hub.printers[X1_SERIAL].state.diagnostics()["print"]["nozzle_temper"]
        == (x1c.state["nozzle_temper"])
    )

    # A changed value reaches the listener as a change set with that field.
    calls.changes[X1_SERIAL].clear()
    x1c.update({"nozzle_temper": 123.0})
    await until(lambda: any("nozzle_temper" in c for c in calls.changes[X1_SERIAL]))
    assert AVAILABILITY not in set().union(*calls.changes[X1_SERIAL])

    # Unlistened listeners hear nothing; unlistening twice is harmless.
    unlisten[X1_SERIAL]()
    unlisten[X1_SERIAL]()
    calls.changes[X1_SERIAL].clear()
    x1c.update({"nozzle_temper": 150.0})
    p1s.update({"nozzle_temper": 151.0})
    await until(lambda: any("nozzle_temper" in c for c in calls.changes[P1_SERIAL]))
    await asyncio.sleep(0.05)
    assert calls.changes[X1_SERIAL] == []
    assert calls.problems == []


@pytest.mark.parametrize(
    ("key", "serial"),
    [("device/#", "device/#"), ("A+B", "A+B"), ("01S00C000000001", "00M09A350100001")],
)
async def test_set_printers_refuses_invalid_serials(
    make_hub: HubFactory, caplog: pytest.LogCaptureFixture, key: str, serial: str
) -> None:
    """A malformed serial (or one that disagrees with its key) never gets a link.

    The library defends itself whoever built the spec: no topic, no session.
    """
    hub = make_hub()
    bad = {
        key: PrinterSpec(
            serial=serial, model=lookup_model(serial=serial), name="x", access_code=None
        )
    }
    hub.set_printers(bad)
    hub.set_printers(bad)
    assert hub.printers == {}
    assert caplog.text.count("invalid serial") == 1
    with pytest.raises(KeyError):
        hub.listen(key, lambda changed: None)


async def test_set_printers_follows_bind_list_without_reconnect(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    p1s: VirtualPrinter,
) -> None:
    """Adding subscribes and greets; removing unsubscribes; same client id."""
    hub = make_hub()
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    await until(lambda: hub.printers[X1_SERIAL].available)
    client_id = cloud_client_id(hub)
    await broker.wait_for_client(client_id, subscribed_to=f"device/{X1_SERIAL}/report")

    hub.set_printers({X1_SERIAL: spec(X1_SERIAL), P1_SERIAL: spec(P1_SERIAL)})
    await broker.wait_for_client(client_id, subscribed_to=f"device/{P1_SERIAL}/report")
    await until(lambda: hub.printers[P1_SERIAL].available)
    assert commands_of(p1s)[:2] == ["get_version", "pushall"]

    # A spec change without LAN options keeps everything as it is.
    hub.set_printers(
        {X1_SERIAL: spec(X1_SERIAL, name="Renamed"), P1_SERIAL: spec(P1_SERIAL)}
    )
    assert hub.printers[X1_SERIAL].spec.name == "Renamed"
    assert hub.printers[X1_SERIAL].lan_task is None

    link = hub.printers[X1_SERIAL]
    hub.set_printers({P1_SERIAL: spec(P1_SERIAL)})
    assert X1_SERIAL not in hub.printers
    await until(
        lambda: (
            [c.subscriptions for c in broker.connected_clients]
            == [(f"device/{P1_SERIAL}/report",)]
        )
    )
    assert [c.client_id for c in broker.connected_clients] == [client_id]
    assert hub.cloud.connected
    # Reports of the removed printer no longer reach its old link.
    seen = link.last_report
    x1c.update({"nozzle_temper": 99.0})
    await asyncio.sleep(0.05)
    assert link.last_report == seen
    assert hub.publish(X1_SERIAL, {"pushing": {"command": "pushall"}}) is False
    assert hub.request_full_report(X1_SERIAL) is False


async def test_presence_drives_availability(
    make_hub: HubFactory, x1c: VirtualPrinter
) -> None:
    """client.disconnected makes the printer unavailable; connected restores."""
    hub = make_hub()
    calls = make_hub.calls
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    hub.listen(X1_SERIAL, calls.listener(X1_SERIAL))
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.available)
    calls.changes[X1_SERIAL].clear()

    x1c.set_online(False)
    await until(lambda: not link.available)
    assert calls.changes[X1_SERIAL] == [frozenset({"online", AVAILABILITY})]
    assert link.state.online is False

    x1c.set_online(True)
    await until(lambda: link.available)
    assert AVAILABILITY in calls.changes[X1_SERIAL][-1]


async def test_cloud_outage_availability(
    make_hub: HubFactory, broker: MqttBroker, x1c: VirtualPrinter
) -> None:
    """Cloud down: unavailable and publish fails; back up: greeted again."""
    hub = make_hub()
    calls = make_hub.calls
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    hub.listen(X1_SERIAL, calls.listener(X1_SERIAL))
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.available)
    calls.changes[X1_SERIAL].clear()

    await broker.stop()
    await until(lambda: not link.available)
    assert calls.changes[X1_SERIAL] == [frozenset({AVAILABILITY})]
    assert hub.publish(X1_SERIAL, {"pushing": {"command": "pushall"}}) is False
    assert hub.request_full_report(X1_SERIAL, force=True) is False

    greeted = commands_of(x1c).count("get_version")
    await broker.start()
    await until(lambda: link.available)
    await until(lambda: commands_of(x1c).count("get_version") == greeted + 1)


async def test_outages_are_logged_once_each_way(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Down and back are each logged once at info level, not per attempt."""
    caplog.set_level(logging.INFO, logger="custom_components.bambu_cloud.bambu.hub")
    hub = make_hub()
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.available)
    assert "unavailable" not in caplog.text
    assert "available again" not in caplog.text  # the first time is no news

    await broker.stop()
    await until(lambda: not link.available)
    await asyncio.sleep(1.0)  # several reconnect attempts fail meanwhile
    await broker.start()
    await until(lambda: link.available)

    def infos(text: str) -> int:
        return sum(
            1
            for record in caplog.records
            if record.levelno == logging.INFO and text in record.getMessage()
        )

    assert infos("Lost the connection to the cloud MQTT broker") == 1
    assert infos("Connected to the cloud MQTT broker again") == 1
    assert infos(f"{X1_SERIAL} is unavailable") == 1
    assert infos(f"{X1_SERIAL} is available again") == 1


async def test_request_full_report_rate_limited(
    make_hub: HubFactory, x1c: VirtualPrinter
) -> None:
    """At most one pushall per configured spacing unless forced."""
    clock = FakeClock()
    hub = make_hub(clock=clock)
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    await until(lambda: hub.printers[X1_SERIAL].available)
    assert commands_of(x1c).count("pushall") == 1  # the greeting (forced)

    assert hub.request_full_report(X1_SERIAL) is False
    clock.now += hub.config.watchdog.pushall_spacing - 1
    assert hub.request_full_report(X1_SERIAL) is False
    clock.now += 1
    assert hub.request_full_report(X1_SERIAL) is True
    assert hub.request_full_report(X1_SERIAL) is False
    assert hub.request_full_report(X1_SERIAL, force=True) is True
    assert hub.request_full_report("00M000000000000") is False
    await until(lambda: commands_of(x1c).count("pushall") == 3)
    assert hub.printers[X1_SERIAL].last_pushall == clock.now


async def test_watchdog_one_pushall_per_window(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
) -> None:
    """A silent, available printer gets exactly one pushall per spacing window."""
    clock = FakeClock()
    hub = make_hub(
        clock=clock,
        watchdog=Watchdog(interval=0.01, silence=6.0, pushall_spacing=30.0),
    )
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.available)
    await until(lambda: requests_on(broker, X1_SERIAL, "pushall") == 1)
    x1c.detach()  # the printer falls silent: no answers, no reports

    async def ticks() -> None:
        await asyncio.sleep(0.1)  # ~10 watchdog rounds

    # Not yet silent long enough.
    clock.now += 5.0
    await ticks()
    assert requests_on(broker, X1_SERIAL, "pushall") == 1
    # Silent, but the greeting's pushall is less than the spacing ago.
    clock.now += 10.0
    await ticks()
    assert requests_on(broker, X1_SERIAL, "pushall") == 1
    # Window over: exactly one pushall, however many rounds run.
    clock.now = 1000.0 + 30.0
    await ticks()
    await until(lambda: requests_on(broker, X1_SERIAL, "pushall") == 2)
    await ticks()
    assert requests_on(broker, X1_SERIAL, "pushall") == 2
    clock.now += 29.0
    await ticks()
    assert requests_on(broker, X1_SERIAL, "pushall") == 2
    clock.now += 1.0
    await until(lambda: requests_on(broker, X1_SERIAL, "pushall") == 3)
    await ticks()
    assert requests_on(broker, X1_SERIAL, "pushall") == 3

    # A report resets the silence: no pushall while the printer talks. The
    # report is handed over in the same loop step as the clock moves, so no
    # watchdog round sees the new time before the report.
    x1c.attach()
    clock.now += 100.0
    hub._cloud_message(
        link.report_topic, b'{"print":{"command":"push_status","msg":1}}'
    )
    assert link.last_report == clock.now
    await ticks()
    assert requests_on(broker, X1_SERIAL, "pushall") == 3

    # An unavailable printer is not asked.
    x1c.set_online(False)
    await until(lambda: not link.available)
    clock.now += 1000.0
    await ticks()
    assert requests_on(broker, X1_SERIAL, "pushall") == 3


async def test_cloud_auth_failed(make_hub: HubFactory, broker: MqttBroker) -> None:
    """A refused token raises CLOUD_AUTH once and stops retrying."""
    hub = make_hub(token="expired-token")
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    await until(lambda: bool(make_hub.calls.problems))
    await asyncio.sleep(0.3)
    assert make_hub.calls.problems == [
        Problem(ProblemKind.CLOUD_AUTH, None, active=True)
    ]
    assert len(broker.refused) == 1
    assert not hub.printers[X1_SERIAL].available


async def test_cloud_tls_failure_logged_once(
    make_hub: HubFactory,
    broker: MqttBroker,
    pki: TestPKI,
    caplog: pytest.LogCaptureFixture,
    x1c: VirtualPrinter,
) -> None:
    """An untrusted cloud certificate: one warning, retries, no problem raised."""
    caplog.set_level(logging.DEBUG, logger=hub_module.__name__)
    stranger = pki.root("Stranger CA", key_usage=True)
    hub = make_hub(context=ssl.create_default_context(cadata=stranger.pem))
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    statuses: list[str] = []
    original = hub.cloud._on_status

    def record(status: Any, error: BaseException | None) -> None:
        statuses.append(status)
        original(status, error)

    hub.cloud._on_status = record
    await hub.start()
    await until(lambda: statuses.count("tls_failed") >= 3)
    warnings = [
        r
        for r in caplog.records
        if r.name == hub_module.__name__ and "TLS verification" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert make_hub.calls.problems == []
    assert broker.connected_clients == []

    # Once trusted again the hub connects and would warn again next time.
    hub.cloud.config = dataclasses.replace(
        hub.cloud.config, ssl_context=make_hub.context
    )
    await until(lambda: hub.cloud.connected)
    await until(lambda: hub.printers[X1_SERIAL].available)
    assert hub._cloud_tls_logged is False


async def test_ack_without_handler(
    broker: MqttBroker, cloud_context: ssl.SSLContext, x1c: VirtualPrinter
) -> None:
    """Acks resolve the waiting command and never touch the state."""
    hub = BambuHub(
        asyncio.get_running_loop(),
        CloudSpec(uid=UID, token=TOKEN, ssl_context=cloud_context),
        config=hub_config(broker),
        printer_context=no_lan,
        on_problem=lambda problem: None,
    )
    try:
        hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
        await hub.start()
        await until(lambda: hub.printers[X1_SERIAL].available)
        ack = await hub.async_command(X1_SERIAL, {"print": {"command": "pause"}})
        assert ack.ok
        assert ack.command == "pause"
        assert "pause" in commands_of(x1c)
    finally:
        await hub.stop()


async def test_foreign_topics_are_ignored(make_hub: HubFactory) -> None:
    """Messages on topics that are no known printer's report are dropped."""
    hub = make_hub()
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    link = hub.printers[X1_SERIAL]
    report = b'{"print":{"command":"push_status","msg":0,"nozzle_temper":1}}'
    hub._cloud_message("device/00M000000000000/report", report)
    hub._cloud_message(f"device/{X1_SERIAL}/request", report)
    hub._cloud_message(f"device/{X1_SERIAL}", report)
    hub._cloud_message(f"other/{X1_SERIAL}/report", report)
    hub._lan_message(link, f"device/{X1_SERIAL}/request", report)
    assert link.last_report == 0.0
    assert not link.state.has_full_report
    hub._cloud_message(f"device/{X1_SERIAL}/report", report)
    assert link.state.has_full_report
    assert not link.available  # the cloud is not connected


# ------------------------------------------------------------------ LAN


async def test_lan_preferred_then_cloud_takes_over(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    lan: Lan,
) -> None:
    """LAN feeds state and commands; on LAN loss the cloud is asked for pushall."""
    hub = make_hub(printer_context=lan.factory)
    calls = make_hub.calls
    x1c.state["nozzle_temper"] = 55.0
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL, lan_host=lan.host)})
    hub.listen(X1_SERIAL, calls.listener(X1_SERIAL))
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.lan_connected)
    await until(lambda: link.state.diagnostics()["print"].get("nozzle_temper") == 77)
    assert lan.factory_calls == [(X1_SERIAL, lan.host)]
    assert X1_SERIAL in lan.broker.sni_names_seen
    assert [c.username for c in lan.broker.connected_clients] == ["bblp"]
    assert commands_of(lan.printer)[:2] == ["get_version", "pushall"]
    assert link.available
    assert Problem(ProblemKind.LAN_AUTH, X1_SERIAL, active=False) in calls.problems

    # Cloud reports are ignored while the LAN session is up.
    await until(lambda: hub.cloud.connected)
    x1c.update({"nozzle_temper": 56.0})
    await asyncio.sleep(0.1)
    assert link.state.diagnostics()["print"]["nozzle_temper"] == 77

    # Commands go over the LAN.
    cloud_before = len(x1c.received)
    command = {
        "print": {
            "command": "pause",
            "sequence_id": hub.printers[X1_SERIAL].sequence.next(),
        }
    }
    assert hub.publish(X1_SERIAL, command) is True
    await until(lambda: "pause" in commands_of(lan.printer))
    assert len(x1c.received) == cloud_before

    # The LAN broker goes away: the cloud takes over with a forced pushall.
    await lan.broker.stop()
    await until(lambda: not link.lan_connected)
    await until(lambda: "pushall" in commands_of(x1c)[cloud_before:])
    await until(lambda: link.state.diagnostics()["print"]["nozzle_temper"] == 56)
    assert link.available
    assert hub.publish(X1_SERIAL, {"print": {"command": "resume"}}) is True
    await until(lambda: "resume" in commands_of(x1c))

    # LAN back: preferred again, greeted over the LAN.
    lan_before = len(lan.printer.received)
    await lan.broker.start()
    await until(lambda: link.lan_connected)
    await until(lambda: "pushall" in commands_of(lan.printer)[lan_before:])


async def test_lan_port_is_configured(
    make_hub: HubFactory, x1c: VirtualPrinter, lan: Lan
) -> None:
    """A LAN host without a port dials the configured printer MQTT port."""
    hub = make_hub(printer_context=lan.factory, ports=Ports(mqtt=lan.broker.port))
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL, lan_host="127.0.0.1")})
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.lan_connected)
    assert link.lan is not None
    assert link.lan.config.port == lan.broker.port
    assert lan.factory_calls == [(X1_SERIAL, "127.0.0.1")]


async def test_lan_host_change_restarts_lan_only(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    lan: Lan,
) -> None:
    """A new LAN address reconnects the LAN session; the cloud stays."""
    second = MqttBroker(lan.pki.leaf, users={"bblp": ACCESS_CODE})
    await second.start()
    second_printer = VirtualPrinter(second, X1_SERIAL, "X1C")
    await second_printer.start()
    try:
        hub = make_hub(printer_context=lan.factory)
        link = await lan.start_hub(hub)
        await until(lambda: link.lan_connected and hub.cloud.connected)
        cloud_id = cloud_client_id(hub)
        first_session = link.lan

        new_host = f"127.0.0.1:{second.port}"
        hub.set_printers({X1_SERIAL: spec(X1_SERIAL, lan_host=new_host)})
        await until(lambda: bool(second.connected_clients))
        await until(lambda: link.lan_connected)
        assert link.lan is not first_session
        assert lan.broker.connected_clients == []
        assert [c.sni for c in second.connected_clients] == [X1_SERIAL]
        assert lan.factory_calls[-1] == (X1_SERIAL, new_host)
        assert cloud_client_id(hub) == cloud_id
        assert [c.client_id for c in broker.connected_clients] == [cloud_id]

        # LAN options removed: back to the cloud alone.
        hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
        await until(lambda: link.lan is None and not second.connected_clients)
        assert link.lan_task is None
        assert cloud_client_id(hub) == cloud_id
        await until(lambda: link.available)
    finally:
        await second_printer.stop()
        await second.stop()


async def test_lan_printer_removed(
    make_hub: HubFactory, broker: MqttBroker, x1c: VirtualPrinter, lan: Lan
) -> None:
    """Unbinding a LAN printer stops its LAN session in the background."""
    hub = make_hub(printer_context=lan.factory)
    link = await lan.start_hub(hub)
    await until(lambda: link.lan_connected)
    hub.set_printers({})
    await until(lambda: not lan.broker.connected_clients)
    assert link.lan is None
    assert hub.printers == {}
    await until(lambda: not hub._tasks)


async def test_stop_awaits_background_work(
    make_hub: HubFactory, broker: MqttBroker, x1c: VirtualPrinter, lan: Lan
) -> None:
    """stop() right after an unbind waits for the LAN teardown it started."""
    hub = make_hub(printer_context=lan.factory)
    link = await lan.start_hub(hub)
    await until(lambda: link.lan_connected)
    session = link.lan
    assert session is not None
    hub.set_printers({})
    assert hub._tasks
    await hub.stop()
    assert not hub._tasks
    assert link.lan is None
    assert session.status == "stopped"
    await until(lambda: not lan.broker.connected_clients)


async def test_lan_trust_error(
    make_hub: HubFactory, x1c: VirtualPrinter, lan: Lan
) -> None:
    """No trust anchor: Problem(TLS, kind), no LAN connection, cloud serves."""

    async def untrusted(
        serial: str, host: str, *, refresh: bool = False
    ) -> ssl.SSLContext:
        raise TrustError("unknown_ca")

    hub = make_hub(printer_context=untrusted, probe_retry=SLOW)
    link = await lan.start_hub(hub)
    await until(lambda: bool(make_hub.calls.problems))
    assert make_hub.calls.problems == [
        Problem(ProblemKind.TLS, X1_SERIAL, active=True, detail="unknown_ca")
    ]
    assert link.tls_problem == "unknown_ca"
    assert link.lan is None
    assert link.lan_task is None
    # A new look at the chain is scheduled (after the probe back-off).
    assert link.retry is not None
    assert link.reprobe
    await until(lambda: link.available)
    assert lan.broker.connected_clients == []
    assert not lan.broker.sni_names_seen

    # New LAN options (here a new access code) start over: once the printer
    # is trusted and connects, the TLS problem is cleared.
    hub._printer_context = lan.factory
    await lan.broker.set_users({"bblp": "87654321"})
    hub.set_printers(
        {X1_SERIAL: spec(X1_SERIAL, lan_host=lan.host, access_code="87654321")}
    )
    await until(lambda: link.lan_connected)
    assert Problem(ProblemKind.TLS, X1_SERIAL, active=False) in make_hub.calls.problems
    assert link.tls_problem is None


async def test_lan_probe_oserror_retries(
    make_hub: HubFactory,
    x1c: VirtualPrinter,
    lan: Lan,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unreachable printer during the trust probe is retried later."""
    attempts: list[str] = []

    async def flaky(serial: str, host: str) -> ssl.SSLContext:
        attempts.append(host)
        if len(attempts) < 3:
            raise OSError("host unreachable")
        return await lan.factory(serial, host)

    hub = make_hub(printer_context=flaky)
    link = await lan.start_hub(hub)
    await until(lambda: link.lan_connected)
    assert len(attempts) == 3
    assert link.retry is None
    assert make_hub.calls.problems == [
        Problem(ProblemKind.LAN_AUTH, X1_SERIAL, active=False)
    ]


async def test_lan_retry_pending_on_stop(
    make_hub: HubFactory, lan: Lan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() cancels a scheduled probe retry (no lingering timer)."""

    async def unreachable(serial: str, host: str) -> ssl.SSLContext:
        raise OSError("host unreachable")

    hub = make_hub(printer_context=unreachable, probe_retry=SLOW)
    link = await lan.start_hub(hub)
    await until(lambda: link.retry is not None)
    retry = link.retry
    assert retry is not None
    await hub.stop()
    assert retry.cancelled()
    assert link.retry is None


async def test_lan_retry_cancelled_on_unbind(
    make_hub: HubFactory, lan: Lan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unbinding cancels a scheduled probe retry; a late retry does nothing."""

    async def unreachable(serial: str, host: str) -> ssl.SSLContext:
        raise OSError("host unreachable")

    hub = make_hub(printer_context=unreachable, probe_retry=SLOW)
    link = await lan.start_hub(hub)
    await until(lambda: link.retry is not None)
    retry = link.retry
    assert retry is not None
    hub.set_printers({})
    await until(lambda: not hub._tasks)
    assert retry.cancelled()
    assert link.retry is None
    hub._retry_lan(link)  # e.g. a timer that fired just before the unbind
    assert link.lan_task is None


async def test_stop_during_trust_probe(
    make_hub: HubFactory, broker: MqttBroker, lan: Lan
) -> None:
    """stop() cancels a LAN start waiting on the trust factory."""
    started = asyncio.Event()
    never = asyncio.Event()

    async def slow(serial: str, host: str) -> ssl.SSLContext:
        started.set()
        await never.wait()
        raise AssertionError("not reached")

    hub = make_hub(printer_context=slow)
    link = await lan.start_hub(hub)
    await asyncio.wait_for(started.wait(), WITHIN)
    task = link.lan_task
    assert task is not None
    await hub.stop()
    assert task.cancelled()
    assert link.lan_task is None
    assert link.lan is None
    assert broker.connected_clients == []
    assert lan.broker.connected_clients == []


async def test_start_lan_without_options(make_hub: HubFactory) -> None:
    """A LAN start for a spec that lost its options does nothing."""
    hub = make_hub()
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    link = hub.printers[X1_SERIAL]
    link.lan_task = asyncio.get_running_loop().create_future()  # type: ignore[assignment]
    await hub._start_lan(link)
    assert link.lan_task is None
    assert link.lan is None


async def test_lan_auth_failure(
    make_hub: HubFactory, broker: MqttBroker, x1c: VirtualPrinter, lan: Lan
) -> None:
    """A refused access code raises LAN_AUTH; the cloud keeps the printer live."""
    await lan.broker.set_users({"bblp": "changed!"})
    hub = make_hub(printer_context=lan.factory)
    link = await lan.start_hub(hub)
    await until(
        lambda: (
            Problem(ProblemKind.LAN_AUTH, X1_SERIAL, active=True)
            in make_hub.calls.problems
        )
    )
    await until(lambda: link.available)
    await asyncio.sleep(0.3)
    assert len(lan.broker.refused) == 1  # no retry with a refused code
    assert not link.lan_connected
    assert hub.publish(X1_SERIAL, {"print": {"command": "resume"}}) is True
    await until(lambda: "resume" in commands_of(x1c))


async def test_lan_serial_mismatch(
    make_hub: HubFactory,
    x1c: VirtualPrinter,
    pki: TestPKI,
) -> None:
    """A LAN certificate for another serial: Problem(TLS, serial_mismatch)."""
    printer_ca = pki.root("Test Printer CA")
    leaf = pki.server(printer_ca, "00M00A999999999")
    context = tls.build_printer_context(
        [printer_ca.der], pins=frozenset({printer_ca.sha256})
    )
    lan_broker = MqttBroker(leaf, users={"bblp": ACCESS_CODE})
    await lan_broker.start()

    async def factory(serial: str, host: str) -> ssl.SSLContext:
        return context

    try:
        hub = make_hub(printer_context=factory)
        hub.set_printers(
            {X1_SERIAL: spec(X1_SERIAL, lan_host=f"127.0.0.1:{lan_broker.port}")}
        )
        await hub.start()
        link = hub.printers[X1_SERIAL]
        await until(lambda: link.lan is None and link.tls_problem is not None)
        await until(lambda: not hub._tasks)
        assert make_hub.calls.problems == [
            Problem(ProblemKind.TLS, X1_SERIAL, active=True, detail="serial_mismatch")
        ]
        assert link.lan_task is None
        assert lan_broker.connected_clients == []
        assert not lan_broker.refused
        assert list(lan_broker.sni_names_seen) == [X1_SERIAL]
        await until(lambda: link.available)  # the cloud serves meanwhile
    finally:
        await lan_broker.stop()


async def test_stop_cleans_everything(
    make_hub: HubFactory, broker: MqttBroker, x1c: VirtualPrinter, lan: Lan
) -> None:
    """stop(): no session, task, timer or connection is left."""
    hub = make_hub(printer_context=lan.factory)
    tasks_before = asyncio.all_tasks()
    hub.set_printers(
        {X1_SERIAL: spec(X1_SERIAL, lan_host=lan.host), P1_SERIAL: spec(P1_SERIAL)}
    )
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.lan_connected and hub.cloud.connected)
    session = link.lan
    assert session is not None
    await hub.stop()
    assert link.lan is None
    assert link.lan_task is None
    assert hub._watchdog is None
    assert not hub._tasks
    assert session.status == "stopped"
    assert hub.cloud.status == "stopped"
    assert hub_tasks(asyncio.all_tasks() - tasks_before) == []
    await until(lambda: not broker.connected_clients)
    await until(lambda: not lan.broker.connected_clients)
    assert all(not link.available for link in hub.printers.values())
    await hub.stop()  # twice is harmless


# ------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    """An RSA key standing in for the app certificate's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def test_async_command_acknowledged(
    make_hub: HubFactory, x1c: VirtualPrinter
) -> None:
    """A command is published with a fresh sequence id; its ack is returned."""
    hub = make_hub()
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    await until(lambda: hub.printers[X1_SERIAL].available)
    ack = await hub.async_command(X1_SERIAL, commands.ledctrl("chamber_light", True))
    assert ack.ok
    assert ack.kind == "system"
    sent = x1c.received[-1]["system"]
    assert sent["sequence_id"] == ack.sequence_id
    assert hub._pending == {}


async def test_async_command_rejected_unsigned(
    make_hub: HubFactory, broker: MqttBroker, app_key: rsa.RSAPrivateKey
) -> None:
    """Firmware requiring signatures refuses an unsigned print command."""
    printer = VirtualPrinter(
        broker,
        X1_SERIAL,
        "X1C",
        signature_required=True,
        public_key=app_key.public_key(),
    )
    await printer.start()
    try:
        hub = make_hub()
        hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
        await hub.start()
        await until(lambda: hub.printers[X1_SERIAL].available)
        with pytest.raises(CommandError) as caught:
            await hub.async_command(X1_SERIAL, commands.print_action("pause"))
        assert caught.value.signature_rejected
        assert caught.value.err_code == commands.ERR_SIGNATURE
        assert hub._pending == {}

        # The same command signed with the app certificate is accepted.
        hub.certificate = AppCertificate("app-cert-1", app_key)
        ack = await hub.async_command(X1_SERIAL, commands.print_action("pause"))
        assert ack.ok
        assert "header" in printer.received[-1]
        # Non-print commands go out unsigned and are accepted.
        ack = await hub.async_command(
            X1_SERIAL, commands.ledctrl("chamber_light", False)
        )
        assert ack.ok
        assert "header" not in printer.received[-1]
    finally:
        await printer.stop()


def test_command_error_signature_detection() -> None:
    """Signature refusals are recognised by code or by reason."""
    assert CommandError("MQTT message verify failed", None).signature_rejected
    assert CommandError(None, commands.ERR_ENVELOPE).signature_rejected
    error = CommandError("busy", 123)
    assert not error.signature_rejected
    assert (error.reason, error.err_code) == ("busy", 123)
    assert str(error) == "busy (123)"


async def test_async_command_timeout(make_hub: HubFactory, x1c: VirtualPrinter) -> None:
    """No ack within the deadline: CommandTimeoutError, nothing pending."""
    hub = make_hub()
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    await until(lambda: hub.printers[X1_SERIAL].available)
    x1c.detach()
    with pytest.raises(CommandTimeoutError):
        await hub.async_command(
            X1_SERIAL, commands.ledctrl("chamber_light", True), ack_within=0.1
        )
    assert hub._pending == {}


async def test_async_command_timeout_is_configured(
    make_hub: HubFactory, x1c: VirtualPrinter
) -> None:
    """Without ``ack_within`` the configured acknowledgement timeout applies."""
    hub = make_hub(timeouts=Timeouts(command_ack=0.1))
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    await until(lambda: hub.printers[X1_SERIAL].available)
    x1c.detach()
    async with asyncio.timeout(2):
        with pytest.raises(CommandTimeoutError):
            await hub.async_command(X1_SERIAL, commands.ledctrl("chamber_light", True))
    assert hub._pending == {}


async def test_async_command_not_connected(make_hub: HubFactory) -> None:
    """Unknown printer or no session up: NotConnectedError, nothing pending."""
    hub = make_hub()
    with pytest.raises(NotConnectedError):
        await hub.async_command(X1_SERIAL, commands.print_action("pause"))
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    with pytest.raises(NotConnectedError):
        await hub.async_command(X1_SERIAL, commands.print_action("pause"))
    assert hub._pending == {}


# ----------------------------------------------------------- supervision


def error_records(
    caplog: pytest.LogCaptureFixture, module: str = hub_module.__name__
) -> list[str]:
    """Messages of ERROR records a module logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == module and r.levelno >= logging.ERROR
    ]


async def test_failing_listener_is_isolated(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener raising on every report: logged once, the others still hear."""
    hub = make_hub()
    calls = make_hub.calls
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})

    def broken(changed: ChangeSet) -> None:
        raise RuntimeError("entity bug")

    hub.listen(X1_SERIAL, broken)
    hub.listen(X1_SERIAL, calls.listener(X1_SERIAL))
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.available)
    client_id = cloud_client_id(hub)
    for value in (101.0, 102.0, 103.0):
        x1c.update({"nozzle_temper": value})
        await until(
            lambda v=value: (  # type: ignore[misc]
                link.state.diagnostics()["print"].get("nozzle_temper") == v
            )
        )
    assert sum("nozzle_temper" in c for c in calls.changes[X1_SERIAL]) >= 4
    assert cloud_client_id(hub) == client_id
    assert [c.client_id for c in broker.connected_clients] == [client_id]
    errors = error_records(caplog)
    assert errors == [f"{X1_SERIAL}: a state listener failed"]


async def test_listeners_hear_the_change_sets_naming_their_views(
    make_hub: HubFactory,
    x1c: VirtualPrinter,
) -> None:
    """Each listener hears the change sets naming its views, in order.

    Who hears a change set is worked out once per distinct change set (the
    same field changes report after report), and again whenever a listener
    comes or goes.
    """
    hub = make_hub()
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    heard: list[tuple[str, ChangeSet]] = []

    def listener(name: str) -> Callable[[ChangeSet], None]:
        return lambda changed: heard.append((name, changed))

    hub.listen(X1_SERIAL, listener("all"))
    hub.listen(X1_SERIAL, listener("bed"), frozenset({"bed_temperature"}))
    unlisten_nozzle = hub.listen(
        X1_SERIAL, listener("nozzle"), frozenset({"nozzle_temperature"})
    )
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.available)

    async def report(value: float) -> list[tuple[str, ChangeSet]]:
        heard.clear()
        x1c.update({"nozzle_temper": value})
        await until(lambda: len(heard) >= 1)
        await asyncio.sleep(0.05)
        return list(heard)

    key = frozenset({"nozzle_temper"})
    routes: list[object] = []
    for value in (101.0, 102.0, 103.0):
        calls = await report(value)
        assert [name for name, _ in calls] == ["all", "nozzle"]
        assert all({"nozzle_temper", "nozzle_temperature"} <= c for _, c in calls)
        assert all("nozzle_diameter" not in changed for _, changed in calls)
        routes.append(link.routes[key])
    # Worked out once, then looked up: the same route object every time.
    assert routes[0] is routes[1] is routes[2]

    # A listener that comes (or goes) is heard at the next report.
    hub.listen(X1_SERIAL, listener("late"), frozenset({"nozzle_temperature"}))
    assert key not in link.routes
    assert [name for name, _ in await report(104.0)] == ["all", "nozzle", "late"]
    assert link.routes[key] is not routes[0]
    unlisten_nozzle()
    assert key not in link.routes
    assert [name for name, _ in await report(105.0)] == ["all", "late"]


def test_routes_stay_few_and_small() -> None:
    """Kept routes are bounded per printer; a large change set is not kept.

    Whatever is kept or dropped, each change set reaches the same listeners.
    """
    link = PrinterLink(spec=spec(X1_SERIAL))

    def nozzle(changed: ChangeSet) -> None:
        """Hears the nozzle temperature."""

    def everything(changed: ChangeSet) -> None:
        """Hears every change set."""

    link.listeners += [(nozzle, frozenset({"nozzle_temperature"})), (everything, None)]
    for index in range(3 * hub_module._MAX_ROUTES):
        changed = frozenset({"nozzle_temper", f"field_{index}"})
        heard, listeners = hub_module._route(link, changed)
        assert heard >= changed | {"nozzle_temperature"}
        assert listeners == (nozzle, everything)
        assert 0 < len(link.routes) <= hub_module._MAX_ROUTES
    link.routes.clear()
    large = frozenset(f"field_{i}" for i in range(hub_module._MAX_ROUTED_FIELDS + 1))
    assert hub_module._route(link, large) == (large, (everything,))
    assert link.routes == {}


async def test_stop_never_raises_and_tears_everything_down(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    lan: Lan,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failing session stops, listeners and background work: stop completes."""
    hub = make_hub(printer_context=lan.factory)
    tasks_before = asyncio.all_tasks()
    hub.set_printers(
        {X1_SERIAL: spec(X1_SERIAL, lan_host=lan.host), P1_SERIAL: spec(P1_SERIAL)}
    )

    def broken(changed: ChangeSet) -> None:
        if AVAILABILITY in changed:
            raise RuntimeError("entity bug")

    hub.listen(X1_SERIAL, broken)
    await hub.start()
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.lan_connected and hub.cloud.connected)
    session = link.lan
    assert session is not None

    def stop_then_fail(target: MqttSession) -> Callable[[], Awaitable[None]]:
        real_stop = target.stop

        async def stop() -> None:
            await real_stop()
            raise RuntimeError("session stop bug")

        return stop

    monkeypatch.setattr(session, "stop", stop_then_fail(session))
    monkeypatch.setattr(hub.cloud, "stop", stop_then_fail(hub.cloud))

    async def failing_work() -> None:
        raise RuntimeError("background bug")

    hub._background(failing_work())
    await hub.stop()  # does not raise
    assert session.status == "stopped"
    assert hub.cloud.status == "stopped"
    assert link.lan is None
    assert not hub._tasks
    assert hub_tasks(asyncio.all_tasks() - tasks_before) == []
    await until(lambda: not lan.broker.connected_clients)
    await until(lambda: not broker.connected_clients)
    errors = error_records(caplog)
    assert f"{X1_SERIAL}: stopping the LAN session failed" in errors
    assert "Stopping the cloud session failed" in errors
    assert "Background work failed" in errors


@pytest.mark.parametrize("slow_probe", [False, True])
async def test_no_lan_session_after_stop(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    lan: Lan,
    slow_probe: bool,
) -> None:
    """An access-code change racing the unload starts no LAN session later."""
    gate = asyncio.Event()

    async def factory(serial: str, host: str) -> ssl.SSLContext:
        if lan.factory_calls and slow_probe:
            await gate.wait()  # the new trust probe is still running
        return await lan.factory(serial, host)

    hub = make_hub(printer_context=factory)
    link = await lan.start_hub(hub)
    await until(lambda: link.lan_connected)
    await lan.broker.set_users({"bblp": "87654321"})
    hub.set_printers(
        {X1_SERIAL: spec(X1_SERIAL, lan_host=lan.host, access_code="87654321")}
    )
    await hub.stop()
    gate.set()
    await until(lambda: not lan.broker.connected_clients)
    await asyncio.sleep(0.3)  # anything started late would have connected
    assert lan.broker.connected_clients == []
    assert link.lan is None
    assert link.lan_task is None
    assert hub_tasks(asyncio.all_tasks()) == []
    hub.set_printers(
        {X1_SERIAL: spec(X1_SERIAL, lan_host=lan.host, access_code="11111111")}
    )  # after stop: ignored
    assert link.lan_task is None
    assert link.spec.access_code == "87654321"


async def test_trust_answer_after_stop_starts_nothing(
    make_hub: HubFactory, lan: Lan
) -> None:
    """A LAN start whose probe returns after stop() creates no session."""
    hub = make_hub(printer_context=lan.factory)
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL, lan_host=lan.host)})
    link = hub.printers[X1_SERIAL]
    assert link.lan_task is not None
    await hub.stop()
    await hub._start_lan(link)
    assert link.lan is None
    assert link.lan_task is None
    hub._retry_lan(link)
    assert link.lan_task is None
    hub.retry_cloud()
    assert hub.cloud._task is None


async def test_watchdog_survives_a_failing_round(
    make_hub: HubFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception in a watchdog round is logged once; the rounds go on."""
    hub = make_hub(watchdog=Watchdog(interval=0.01))
    rounds: list[int] = []

    def broken() -> None:
        rounds.append(1)
        raise RuntimeError("watchdog bug")

    monkeypatch.setattr(hub, "_watch_once", broken)
    await hub.start()
    await until(lambda: len(rounds) >= 5)
    assert hub._watchdog is not None
    assert not hub._watchdog.done()
    assert error_records(caplog) == ["Watchdog round failed"]


async def test_cloud_refusal_retried_on_request(
    make_hub: HubFactory,
    broker: MqttBroker,
    x1c: VirtualPrinter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused login waits for retry_cloud (the owner's HTTP check)."""
    caplog.set_level(logging.WARNING, logger=hub_module.__name__)
    hub = make_hub(token="refused-for-now")
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL)})
    await hub.start()
    problem = Problem(ProblemKind.CLOUD_AUTH, None, active=True)
    await until(lambda: make_hub.calls.problems == [problem])
    await asyncio.sleep(0.3)
    assert len(broker.refused) == 1  # nothing until the owner decides

    hub.retry_cloud()
    await until(lambda: make_hub.calls.problems == [problem, problem])
    assert len(broker.refused) == 2
    warnings = [
        r for r in caplog.records if "refused the access token" in r.getMessage()
    ]
    assert len(warnings) == 1  # once until connected again

    await broker.set_users({f"u_{UID}": "refused-for-now"})
    hub.retry_cloud()
    await until(lambda: hub.printers[X1_SERIAL].available)
    assert hub._cloud_auth_logged is False


# -------------------------------------------------- re-probe after unknown CA


@pytest.fixture
def other_ca(tmp_path: Path) -> IssuedCert:
    """Another pinned CA, which the real printer does not chain to."""
    return TestPKI(tmp_path / "other").root("Other Pinned CA")


async def test_unknown_ca_on_connect_reprobes(
    make_hub: HubFactory,
    x1c: VirtualPrinter,
    lan: Lan,
    other_ca: IssuedCert,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anchors learned from an impostor: refused, looked at again, connected."""
    pins = lan.pki.pins | {other_ca.sha256}
    learned_wrong = tls.build_printer_context([other_ca.der], pins=pins)
    refreshes: list[bool] = []

    async def factory(
        serial: str, host: str, *, refresh: bool = False
    ) -> ssl.SSLContext:
        refreshes.append(refresh)
        if not refresh:
            return learned_wrong  # what the first probe stored
        return await lan.factory(serial, host)

    hub = make_hub(printer_context=factory)
    link = await lan.start_hub(hub)
    await until(lambda: link.lan_connected)
    assert refreshes == [False, True]
    assert make_hub.calls.problems[:2] == [
        Problem(ProblemKind.TLS, X1_SERIAL, active=True, detail="unknown_ca"),
        Problem(ProblemKind.TLS, X1_SERIAL, active=False),
    ]
    assert link.tls_problem is None
    assert not lan.broker.refused  # the access code only after verification
    assert len(error_records(caplog)) == 1


async def test_untrusted_printer_reprobed_with_backoff(
    make_hub: HubFactory,
    x1c: VirtualPrinter,
    lan: Lan,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No pinned anchor yet: looked at again and again, reported once."""
    refreshes: list[bool] = []

    async def factory(
        serial: str, host: str, *, refresh: bool = False
    ) -> ssl.SSLContext:
        refreshes.append(refresh)
        if len(refreshes) < 4:
            raise TrustError("unknown_ca")
        return await lan.factory(serial, host)

    hub = make_hub(printer_context=factory)
    link = await lan.start_hub(hub)
    await until(lambda: link.lan_connected)
    assert refreshes == [False, True, True, True]
    assert make_hub.calls.problems[:2] == [
        Problem(ProblemKind.TLS, X1_SERIAL, active=True, detail="unknown_ca"),
        Problem(ProblemKind.TLS, X1_SERIAL, active=False),
    ]
    assert len(error_records(caplog)) == 1


async def test_probe_failure_retried_with_backoff(
    make_hub: HubFactory,
    x1c: VirtualPrinter,
    lan: Lan,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A probe that fails unexpectedly is logged and tried again later."""
    attempts: list[str] = []

    async def flaky(serial: str, host: str) -> ssl.SSLContext:
        attempts.append(host)
        if len(attempts) == 1:
            raise RuntimeError("probe bug")
        return await lan.factory(serial, host)

    hub = make_hub(printer_context=flaky)
    link = await lan.start_hub(hub)
    await until(lambda: link.lan_connected)
    assert len(attempts) == 2
    assert error_records(caplog) == [f"{X1_SERIAL}: establishing trust failed"]


async def test_failing_problem_handler_is_contained(
    make_hub: HubFactory, lan: Lan, caplog: pytest.LogCaptureFixture
) -> None:
    """The owner's problem handler raising: logged, the link still recovers."""

    async def untrusted(
        serial: str, host: str, *, refresh: bool = False
    ) -> ssl.SSLContext:
        raise TrustError("unknown_ca")

    hub = make_hub(printer_context=untrusted, probe_retry=SLOW)

    def broken(problem: Problem) -> None:
        raise RuntimeError("handler bug")

    hub._on_problem = broken
    hub.set_printers({X1_SERIAL: spec(X1_SERIAL, lan_host=lan.host)})
    link = hub.printers[X1_SERIAL]
    await until(lambda: link.retry is not None)
    assert link.tls_problem == "unknown_ca"
    assert any(m.startswith("Handling Problem(") for m in error_records(caplog))

    # A second schedule replaces the first; none after stop.
    first = link.retry
    assert first is not None
    hub._schedule_probe(link, refresh=True)
    assert first.cancelled()
    await hub.stop()
    hub._schedule_probe(link, refresh=True)
    assert link.retry is None


async def test_settle_logs_failures_and_passes_cancellation_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed task is logged; cancelling the waiter still cancels it."""
    loop = asyncio.get_running_loop()

    async def fails_when_cancelled() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup bug") from None

    task = loop.create_task(fails_when_cancelled())
    await asyncio.sleep(0)
    task.cancel()
    await hub_module._settle(task, "Cleanup")
    assert error_records(caplog) == ["Cleanup failed"]

    release = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await release.wait()

    inner = loop.create_task(slow())
    await asyncio.sleep(0)
    waiter = loop.create_task(hub_module._settle(inner, "Slow"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
