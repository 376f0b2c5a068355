"""Live state over real TLS MQTT: mosquitto on 127.0.0.1 and virtual printers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.bambu.config import BambuConfig
from custom_components.bambu_cloud.const import CONF_HOST, CONF_PRINTERS, DOMAIN
from tools.test_pki import IssuedCert, TestPKI
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import TOKEN, UID, X1C, Failure, FakeCloud, MqttEndpoint
from .helpers import state_of, wait_for

NOZZLE_X1C = "sensor.workshop_x1c_nozzle_temperature"
NOZZLE_P1S = "sensor.garage_p1s_nozzle_temperature"
TIMEOUT = 10.0
PROFILE = "/v1/user-service/my/profile"


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """This module's tests run with the cloud broker up."""
    return broker_endpoint


@pytest.fixture
async def live(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    init_integration: MockConfigEntry,
) -> dict[str, VirtualPrinter]:
    """The integration with both printers reporting over the cloud broker."""
    await wait_for(
        hass,
        lambda: (
            state_of(hass, NOZZLE_X1C) not in (None, STATE_UNAVAILABLE)
            and state_of(hass, NOZZLE_P1S) not in (None, STATE_UNAVAILABLE)
        ),
    )
    return printers


async def test_greets_and_reports(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    broker: MqttBroker,
    device_registry: dr.DeviceRegistry,
) -> None:
    """One cloud connection; get_version and pushall per printer; values shown."""
    clients = broker.connected_clients
    assert [client.username for client in clients] == [f"u_{UID}"]
    for printer in live.values():
        commands = [next(iter(m.values()))["command"] for m in printer.received]
        assert commands[:2] == ["get_version", "pushall"]
    x1c = live["x1c"].state
    assert float(state_of(hass, NOZZLE_X1C) or 0) == pytest.approx(
        x1c["nozzle_temper"], abs=0.5
    )
    device = device_registry.async_get_device(identifiers={(DOMAIN, X1C["dev_id"])})
    assert device is not None
    assert device.sw_version == live["x1c"].spec.sw_ver


@pytest.mark.parametrize("name", ["x1c", "p1s"])
async def test_one_change_writes_one_state(
    hass: HomeAssistant, live: dict[str, VirtualPrinter], name: str
) -> None:
    """A report that changes one temperature writes exactly one state."""
    printer = live[name]
    entity_id = NOZZLE_X1C if name == "x1c" else NOZZLE_P1S
    writes: list[str] = []

    def record(event: Event) -> None:
        writes.append(event.data["entity_id"])

    unsub = hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    try:
        printer.update({"nozzle_temper": 123.0})
        await wait_for(hass, lambda: state_of(hass, entity_id) == "123.0")
        printer.update({"nozzle_temper": 123.0})
        await asyncio.sleep(0.2)
        await hass.async_block_till_done()
    finally:
        unsub()
    assert writes == [entity_id]


async def test_presence_drives_availability(
    hass: HomeAssistant, live: dict[str, VirtualPrinter]
) -> None:
    """The cloud's client.disconnected event makes the printer unavailable."""
    live["x1c"].set_online(False)
    await wait_for(hass, lambda: state_of(hass, NOZZLE_X1C) == STATE_UNAVAILABLE)
    assert state_of(hass, NOZZLE_P1S) != STATE_UNAVAILABLE
    live["x1c"].set_online(True)
    await wait_for(hass, lambda: state_of(hass, NOZZLE_X1C) != STATE_UNAVAILABLE)


async def test_broker_restart_recovers(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    broker: MqttBroker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Broker down: unavailable; back: state again, no error spam."""
    caplog.set_level(logging.INFO)
    caplog.clear()
    await broker.stop()
    await wait_for(hass, lambda: state_of(hass, NOZZLE_X1C) == STATE_UNAVAILABLE)
    await broker.start()
    await wait_for(
        hass, lambda: state_of(hass, NOZZLE_X1C) not in (None, STATE_UNAVAILABLE)
    )
    integration_errors = [
        r
        for r in caplog.records
        if r.name.startswith("custom_components.bambu_cloud")
        and r.levelno >= logging.WARNING
    ]
    assert integration_errors == []


async def test_cloud_broker_refusal_confirmed_by_api_starts_reauth(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    broker: MqttBroker,
    cloud: FakeCloud,
) -> None:
    """CONNACK "not authorised" and a 401 from the API: reauth, no retries."""
    profiles = cloud.calls(PROFILE)
    cloud.tokens.clear()  # the token was revoked
    await broker.set_users({f"u_{UID}": "another token"})  # drops the session
    await wait_for(
        hass, lambda: bool(hass.config_entries.flow.async_progress_by_handler(DOMAIN))
    )
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert cloud.calls(PROFILE) == profiles + 1  # confirmed over HTTP first
    refused = len(broker.refused)
    assert refused == 1
    await asyncio.sleep(1.5)
    assert len(broker.refused) == refused


@pytest.mark.parametrize("api_answer", [200, 503])
async def test_cloud_broker_refusal_without_api_401_is_retried(
    hass: HomeAssistant,
    live: dict[str, VirtualPrinter],
    broker: MqttBroker,
    cloud: FakeCloud,
    api_answer: int,
) -> None:
    """A refusal the API does not confirm backs off and logs in again."""
    profiles = cloud.calls(PROFILE)
    if api_answer != 200:
        cloud.fail(PROFILE, Failure(api_answer, '{"message":"busy"}'))
    await broker.set_users({f"u_{UID}": "token the broker forgot"})
    await wait_for(hass, lambda: len(broker.refused) >= 2)
    assert cloud.calls(PROFILE) >= profiles + 1
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert state_of(hass, NOZZLE_X1C) == STATE_UNAVAILABLE

    await broker.set_users({f"u_{UID}": TOKEN})
    await wait_for(
        hass, lambda: state_of(hass, NOZZLE_X1C) not in (None, STATE_UNAVAILABLE)
    )
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


# ------------------------------------------------------------------ LAN


@pytest.fixture
async def lan_broker(
    socket_enabled: None,
    pki: TestPKI,
    configure_library: Callable[..., BambuConfig],
) -> AsyncIterator[tuple[MqttBroker, IssuedCert]]:
    """The X1C's own broker: Bambu-shaped CA, CN = serial, no SAN, pinned."""
    printer_ca = pki.root("Test Printer CA")
    leaf = pki.server(printer_ca, X1C["dev_id"])
    configure_library(pins=frozenset({printer_ca.sha256}))
    broker = MqttBroker(leaf, users={"bblp": X1C["dev_access_code"]})
    try:
        await broker.start()
        yield broker, printer_ca
    finally:
        await broker.stop()


async def _setup_with_lan(
    hass: HomeAssistant, entry: MockConfigEntry, port: int
) -> None:
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry,
        options={CONF_PRINTERS: {X1C["dev_id"]: {CONF_HOST: f"127.0.0.1:{port}"}}},
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_lan_preferred_then_cloud_takes_over(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    lan_broker: tuple[MqttBroker, IssuedCert],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> None:
    """With a LAN host the printer's own broker feeds the state."""
    broker, _ = lan_broker
    lan_printer = VirtualPrinter(broker, X1C["dev_id"], "X1C")
    lan_printer.state["nozzle_temper"] = 77.0
    try:
        await lan_printer.start()
        await _setup_with_lan(hass, mock_config_entry, broker.port)
        await wait_for(hass, lambda: state_of(hass, NOZZLE_X1C) == "77.0")
        assert X1C["dev_id"] in broker.sni_names_seen
        assert [c.username for c in broker.connected_clients] == ["bblp"]

        # Cloud reports are ignored while the LAN session is up.
        printers["x1c"].update({"nozzle_temper": 55.0})
        await asyncio.sleep(0.3)
        assert state_of(hass, NOZZLE_X1C) == "77.0"

        await broker.stop()
        await wait_for(hass, lambda: state_of(hass, NOZZLE_X1C) == "55.0")
    finally:
        await lan_printer.stop()


async def test_lan_unknown_ca_is_refused(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    lan_broker: tuple[MqttBroker, IssuedCert],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    issue_registry: ir.IssueRegistry,
    configure_library: Callable[..., BambuConfig],
) -> None:
    """A printer whose CA is not pinned is never contacted with credentials."""
    broker, _ = lan_broker
    configure_library(pins=frozenset({"00" * 32}))
    await _setup_with_lan(hass, mock_config_entry, broker.port)
    issue_id = f"tls_{X1C['dev_id']}"
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    )
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "printer_tls_unknown_ca"
    assert broker.connected_clients == []
    assert not broker.refused


async def test_lan_serial_mismatch_is_refused(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    pki: TestPKI,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    issue_registry: ir.IssueRegistry,
    configure_library: Callable[..., BambuConfig],
) -> None:
    """A certificate for another serial fails verification: repair issue."""
    printer_ca = pki.root("Test Printer CA")
    leaf = pki.server(printer_ca, "00M00A999999999")
    configure_library(pins=frozenset({printer_ca.sha256}))
    broker = MqttBroker(leaf, users={"bblp": X1C["dev_access_code"]})
    try:
        await broker.start()
        await _setup_with_lan(hass, mock_config_entry, broker.port)
        issue_id = f"tls_{X1C['dev_id']}"
        await wait_for(
            hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None
        )
        issue = issue_registry.async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.translation_key == "printer_tls_serial_mismatch"
        assert not broker.refused
        assert broker.connected_clients == []
    finally:
        await broker.stop()


async def test_lan_wrong_access_code(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    lan_broker: tuple[MqttBroker, IssuedCert],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A refused access code raises an issue and refreshes the bind list."""
    broker, _ = lan_broker
    await broker.set_users({"bblp": "changed!"})
    await _setup_with_lan(hass, mock_config_entry, broker.port)
    binds = cloud.calls("/v1/iot-service/api/user/bind")
    issue_id = f"lan_auth_{X1C['dev_id']}"
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    )
    await wait_for(hass, lambda: cloud.calls("/v1/iot-service/api/user/bind") > binds)
    # The cloud keeps the printer live meanwhile.
    await wait_for(
        hass, lambda: state_of(hass, NOZZLE_X1C) not in (None, STATE_UNAVAILABLE)
    )
