"""Discovery and the LAN address found by itself (glue discovery.py, options).

The listener binds 127.0.0.1 on free ports (``configure_library``) and the
datagrams, written here after PROTOCOL.md section 6, are sent to 127.0.0.1:
nothing is broadcast or multicast. The address-following test runs the X1C
on the cloud broker and on its own LAN broker (mosquitto, a pinned
Bambu-shaped CA, CN = serial); the one virtual printer reports on both, like
one printer reachable both ways.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_INTEGRATION_DISCOVERY,
    ConfigEntryState,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud import lan_host, printer_specs
from custom_components.bambu_cloud.bambu.config import BambuConfig, Ports
from custom_components.bambu_cloud.bambu.discovery import DiscoveredPrinter
from custom_components.bambu_cloud.bambu.models import BoundPrinter
from custom_components.bambu_cloud.const import (
    CONF_HOST,
    CONF_LAN,
    CONF_PRINTER,
    CONF_PRINTERS,
    DOMAIN,
    LAN_AUTO,
    LAN_FIXED,
    LAN_OFF,
)
from custom_components.bambu_cloud.discovery import (
    ANNOUNCE_INTERVAL,
    DATA_DISCOVERY,
    FLOW_INTERVAL,
    BambuDiscovery,
    async_learn_host,
    async_recent_printers,
    async_start_discovery,
    async_stop_discovery,
)
from tools.test_pki import TestPKI
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import P1S_SN, X1C, X1C_SN, Failure, FakeCloud, MqttEndpoint
from .helpers import wait_for

NEW_SERIAL = "01P00A391800123"


def _free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def notify(serial: str, location: str = "127.0.0.1", name: str = "Shed A1") -> bytes:
    """A printer's NOTIFY datagram as PROTOCOL.md section 6 describes it."""
    return (
        "NOTIFY * HTTP/1.1\r\n"
        "Host: 239.255.255.250:1990\r\n"
        "Server: UPnP/1.0\r\n"
        f"Location: {location}\r\n"
        "NT: urn:bambulab-com:device:3dprinter:1\r\n"
        "NTS: ssdp:alive\r\n"
        f"USN: {serial}\r\n"
        "Cache-Control: max-age=1800\r\n"
        "DevModel.bambu.com: N1\r\n"
        f"DevName.bambu.com: {name}\r\n"
        "DevConnect.bambu.com: lan\r\n"
        "DevBind.bambu.com: free\r\n"
        "DevVersion.bambu.com: 01.04.00.00\r\n"
        "\r\n"
    ).encode()


@dataclass
class Ears:
    """Where the test listener hears datagrams."""

    broadcast: int
    multicast: int

    def send(self, data: bytes, *, multicast: bool = False) -> None:
        """Send a datagram to the listener, on 127.0.0.1 only."""
        port = self.multicast if multicast else self.broadcast
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, ("127.0.0.1", port))


@pytest.fixture
def ears(socket_enabled: None, configure_library: Callable[..., BambuConfig]) -> Ears:
    """The discovery listener on free loopback ports; LAN MQTT on a closed one."""
    ears = Ears(_free_port(), _free_port())
    configure_library(
        ports=Ports(
            mqtt=_free_port(socket.SOCK_STREAM),
            discovery_broadcast=ears.broadcast,
            discovery_multicast=ears.multicast,
        ),
        discovery_interface="127.0.0.1",
    )
    return ears


@pytest.fixture
def platforms() -> list[Platform]:
    """Cameras follow the learnt address; nothing else is needed here."""
    return [Platform.CAMERA]


def _discovery_flows(hass: HomeAssistant) -> list[dict[str, Any]]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_INTEGRATION_DISCOVERY
    ]


def _port_is_free(port: int) -> bool:
    """Whether a socket that shares nothing can bind the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------- listener


async def test_unknown_printer_starts_a_flow(
    hass: HomeAssistant, ears: Ears, init_integration: MockConfigEntry
) -> None:
    """A printer no entry knows: one discovery flow, and it is recent."""
    assert not _port_is_free(ears.broadcast)
    ears.send(notify(NEW_SERIAL))
    await wait_for(hass, lambda: bool(_discovery_flows(hass)))
    flows = _discovery_flows(hass)
    assert len(flows) == 1
    assert flows[0]["context"]["unique_id"] == NEW_SERIAL
    assert await async_recent_printers(hass) == [
        DiscoveredPrinter(
            serial=NEW_SERIAL,
            host="127.0.0.1",
            model_id="N1",
            name="Shed A1",
            connect_mode="lan",
            bind="free",
            version="01.04.00.00",
        )
    ]

    # Heard again (and on the multicast port): no second flow.
    hass.config_entries.flow.async_abort(flows[0]["flow_id"])
    ears.send(notify(NEW_SERIAL), multicast=True)
    ears.send(notify(X1C_SN))
    await wait_for(
        hass,
        lambda: X1C_SN in init_integration.runtime_data.learned_hosts,
    )
    assert _discovery_flows(hass) == []

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert _port_is_free(ears.broadcast)
    assert _port_is_free(ears.multicast)
    assert await async_recent_printers(hass) == []


async def test_listener_is_refcounted(hass: HomeAssistant, ears: Ears) -> None:
    """The listener runs while anyone holds it; recent printers go with it."""
    assert await async_recent_printers(hass) == []
    await async_start_discovery(hass)
    await async_start_discovery(hass)
    discovery = hass.data[DATA_DISCOVERY]
    assert discovery.users == 2
    ears.send(notify(NEW_SERIAL, name="Bench"))
    await wait_for(hass, lambda: bool(discovery.recent()))
    await async_stop_discovery(hass)
    assert not _port_is_free(ears.broadcast)
    assert [p.name for p in await async_recent_printers(hass)] == ["Bench"]
    assert discovery.recent(max_age_s=-1) == []
    await async_stop_discovery(hass)
    await async_stop_discovery(hass)
    assert discovery.users == 0
    assert _port_is_free(ears.broadcast)
    assert await async_recent_printers(hass) == []
    # What it heard meanwhile was a printer no entry knows.
    assert [f["context"]["unique_id"] for f in _discovery_flows(hass)] == [NEW_SERIAL]


async def test_port_taken_is_not_an_error(
    hass: HomeAssistant,
    ears: Ears,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another program holding the broadcast port: the entry still loads."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", ears.broadcast))
        mock_config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        assert mock_config_entry.state is ConfigEntryState.LOADED
        assert hass.data[DATA_DISCOVERY]._listener is not None
        assert hass.data[DATA_DISCOVERY]._listener.listening == 1
        ears.send(notify(NEW_SERIAL), multicast=True)
        await wait_for(hass, lambda: bool(_discovery_flows(hass)))
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and "UDP" in r.getMessage()
    ]


async def test_failed_setup_releases_the_listener(
    hass: HomeAssistant,
    ears: Ears,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> None:
    """An entry that cannot load does not keep the ports."""
    cloud.fail("/v1/user-service/my/profile", Failure(500), times=10)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert hass.data[DATA_DISCOVERY].users == 0
    assert _port_is_free(ears.broadcast)


async def test_known_printers_start_no_flow(
    hass: HomeAssistant,
    ears: Ears,
    init_integration: MockConfigEntry,
) -> None:
    """Ignored printers, LAN entries at the same address, by name: no flow."""
    ignored = MockConfigEntry(
        domain=DOMAIN, source=SOURCE_IGNORE, unique_id=NEW_SERIAL, data={}
    )
    ignored.add_to_hass(hass)
    named = MockConfigEntry(
        domain=DOMAIN,
        unique_id="03W00X123456789",
        data={"serial": "03W00X123456789", CONF_HOST: "printer.lan"},
    )
    named.add_to_hass(hass)
    same = MockConfigEntry(
        domain=DOMAIN,
        unique_id="03W00X123456780",
        data={"serial": "03W00X123456780", CONF_HOST: "127.0.0.1"},
    )
    same.add_to_hass(hass)
    moved = MockConfigEntry(
        domain=DOMAIN,
        unique_id="03W00X123456781",
        data={"serial": "03W00X123456781", CONF_HOST: "192.168.1.2"},
    )
    moved.add_to_hass(hass)
    for serial in (NEW_SERIAL, "03W00X123456789", "03W00X123456780"):
        ears.send(notify(serial))
    ears.send(notify("03W00X123456781"))
    # The LAN entry whose printer moved gets a flow (it updates the host).
    await wait_for(hass, lambda: moved.data[CONF_HOST] == "127.0.0.1")
    discovery = hass.data[DATA_DISCOVERY]
    await wait_for(hass, lambda: len(discovery.recent()) == 4)
    assert set(discovery._flows) == {"03W00X123456781"}
    assert named.data[CONF_HOST] == "printer.lan"


async def test_printer_of_an_unloaded_account_starts_no_flow(
    hass: HomeAssistant, ears: Ears, init_integration: MockConfigEntry
) -> None:
    """A printer with a device of an account that is not loaded: no flow."""
    ears.send(notify(X1C_SN))
    await wait_for(hass, lambda: X1C_SN in init_integration.runtime_data.learned_hosts)
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await async_start_discovery(hass)
    try:
        ears.send(notify(X1C_SN))
        discovery = hass.data[DATA_DISCOVERY]
        await wait_for(hass, lambda: bool(discovery.recent()))
        await hass.async_block_till_done()
        assert _discovery_flows(hass) == []
        assert X1C_SN not in discovery._flows
    finally:
        await async_stop_discovery(hass)


# ------------------------------------------------------- learnt addresses


def _printers() -> dict[str, BoundPrinter]:
    return {
        serial: BoundPrinter(serial=serial, name=serial, online=True, access_code="x")
        for serial in (X1C_SN, P1S_SN, NEW_SERIAL, "03W00X123456789")
    }


def test_printer_specs_automatic_off_fixed() -> None:
    """Automatic takes the learnt host; off none; fixed (and old options) theirs."""
    options = {
        CONF_PRINTERS: {
            X1C_SN: {CONF_LAN: LAN_FIXED, CONF_HOST: "10.0.0.5:1883"},
            P1S_SN: {CONF_LAN: LAN_OFF},
            NEW_SERIAL: {CONF_HOST: "10.0.0.6"},
        }
    }
    learned = dict.fromkeys(_printers(), "192.168.1.9")
    specs = printer_specs(_printers(), options, learned)
    assert {serial: spec.lan_host for serial, spec in specs.items()} == {
        X1C_SN: "10.0.0.5:1883",
        P1S_SN: None,
        NEW_SERIAL: "10.0.0.6",
        "03W00X123456789": "192.168.1.9",
    }
    assert printer_specs(_printers(), {})[X1C_SN].lan_host is None
    assert lan_host({CONF_LAN: LAN_AUTO, CONF_HOST: "10.0.0.5"}, "10.0.0.7") == (
        "10.0.0.7"
    )
    assert lan_host({CONF_LAN: LAN_FIXED}) is None


async def test_learn_host_rules(
    hass: HomeAssistant,
    ears: Ears,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> None:
    """Only usable addresses of the entry's printers; reports keep a known one."""
    entry = mock_config_entry
    entry.add_to_hass(hass)
    # LAN off: the addresses are learnt, nothing is dialled.
    hass.config_entries.async_update_entry(
        entry, options={CONF_PRINTERS: {X1C_SN: {CONF_LAN: LAN_OFF}}}
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    learned = entry.runtime_data.learned_hosts
    assert not async_learn_host(hass, entry, NEW_SERIAL, "127.0.0.1", announced=True)
    assert not async_learn_host(hass, entry, X1C_SN, "255.255.255.255", announced=False)
    assert async_learn_host(hass, entry, X1C_SN, "127.0.0.1", announced=True)
    assert not async_learn_host(hass, entry, X1C_SN, "127.0.0.1", announced=True)
    assert entry.runtime_data.hub.printers[X1C_SN].spec.lan_host is None
    # No LAN link is up: an announcement moves it.
    assert async_learn_host(hass, entry, X1C_SN, "127.0.0.3", announced=True)
    assert learned[X1C_SN] == "127.0.0.3"


LOCALHOST_LE = int.from_bytes(bytes([127, 0, 0, 1]), "little")
OTHER_LE = int.from_bytes(bytes([127, 0, 0, 2]), "little")


def _net(address: int) -> dict[str, Any]:
    return {"net": {"conf": 16, "info": [{"ip": address, "mask": 0x00FFFFFF}]}}


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """These tests run with the cloud broker up."""
    return broker_endpoint


@pytest.fixture
async def x1c_lan(
    socket_enabled: None,
    pki: TestPKI,
    ears: Ears,
    configure_library: Callable[..., BambuConfig],
    printers: dict[str, VirtualPrinter],
) -> AsyncIterator[MqttBroker]:
    """The X1C's own broker (pinned CA, CN = serial); the X1C reports there too.

    Its port is the LAN MQTT port of the configuration: a learnt address is
    dialled at that port.
    """
    printer_ca = pki.root("Test Printer CA")
    leaf = pki.server(printer_ca, X1C_SN)
    broker = MqttBroker(leaf, users={"bblp": X1C["dev_access_code"]})
    try:
        await broker.start()
        configure_library(
            pins=frozenset({printer_ca.sha256}),
            ports=Ports(
                mqtt=broker.port,
                discovery_broadcast=ears.broadcast,
                discovery_multicast=ears.multicast,
            ),
            discovery_interface="127.0.0.1",
        )
        await printers["x1c"].add_mirror(broker)
        yield broker
    finally:
        await broker.stop()


async def test_address_from_report_is_followed(
    hass: HomeAssistant,
    x1c_lan: MqttBroker,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """net.info's address: LAN link and camera; a new address, a new link."""
    mock_config_entry.add_to_hass(hass)
    # The P1S's LAN is off: it would meet the X1C's broker at 127.0.0.1.
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={CONF_PRINTERS: {P1S_SN: {CONF_LAN: LAN_OFF}}},
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    runtime = mock_config_entry.runtime_data
    link = runtime.hub.printers[X1C_SN]
    await wait_for(hass, lambda: link.lan_connected)
    assert runtime.learned_hosts[X1C_SN] == "127.0.0.1"
    assert runtime.learned_hosts[P1S_SN] == "127.0.0.1"
    assert link.spec.lan_host == "127.0.0.1"
    assert runtime.hub.printers[P1S_SN].spec.lan_host is None
    assert [c.username for c in x1c_lan.connected_clients] == ["bblp"]
    assert X1C_SN in x1c_lan.sni_names_seen
    # The camera follows the learnt address; the P1S (LAN off) has none.
    cameras = [
        e.unique_id
        for e in er.async_entries_for_config_entry(
            entity_registry, mock_config_entry.entry_id
        )
        if e.domain == "camera"
    ]
    assert cameras == [f"{X1C_SN}_camera"]

    # The printer moves (its report says so): the old link goes at once.
    printers["x1c"].update(_net(OTHER_LE))
    await wait_for(hass, lambda: link.spec.lan_host == "127.0.0.2")
    await wait_for(hass, lambda: not x1c_lan.connected_clients)
    assert runtime.learned_hosts[X1C_SN] == "127.0.0.2"

    # Back at 127.0.0.1 (heard over the cloud while LAN is down): reconnected.
    printers["x1c"].update(_net(LOCALHOST_LE))
    await wait_for(hass, lambda: link.spec.lan_host == "127.0.0.1")
    await wait_for(hass, lambda: link.lan_connected)
    assert [c.username for c in x1c_lan.connected_clients] == ["bblp"]
    assert not issue_registry.issues


async def test_announcement_does_not_move_a_working_link(
    hass: HomeAssistant,
    x1c_lan: MqttBroker,
    printers: dict[str, VirtualPrinter],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    ears: Ears,
) -> None:
    """A datagram naming another address leaves an up LAN link alone."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={CONF_PRINTERS: {P1S_SN: {CONF_LAN: LAN_OFF}}},
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    runtime = mock_config_entry.runtime_data
    link = runtime.hub.printers[X1C_SN]
    await wait_for(hass, lambda: link.lan_connected)
    discovery = hass.data[DATA_DISCOVERY]
    ears.send(notify(X1C_SN, location="127.0.0.9"))
    await wait_for(hass, lambda: bool(discovery.recent()))
    assert runtime.learned_hosts[X1C_SN] == "127.0.0.1"
    assert link.lan_connected


# ---------------------------------------------------------------- options


async def _printer_host(
    hass: HomeAssistant, entry: MockConfigEntry, serial: str
) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "printer"}
    )
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_PRINTER: serial}
    )
    assert result["step_id"] == "printer_host"
    return dict(result)


async def test_options_automatic_off_fixed(
    hass: HomeAssistant, ears: Ears, init_integration: MockConfigEntry
) -> None:
    """Each printer's LAN link: automatic (default), off, or a fixed host."""
    entry = init_integration
    async_learn_host(hass, entry, X1C_SN, "127.0.0.1", announced=True)
    result = await _printer_host(hass, entry, X1C_SN)
    assert result["description_placeholders"] == {
        "serial": X1C_SN,
        "learned": "127.0.0.1",
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_LAN: LAN_FIXED, CONF_HOST: " "}
    )
    assert result["errors"] == {CONF_HOST: "host_required"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_LAN: LAN_FIXED, CONF_HOST: "bad host!"}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_LAN: LAN_OFF, CONF_HOST: "bad host!"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_PRINTERS] == {X1C_SN: {CONF_LAN: LAN_OFF}}
    assert entry.runtime_data.hub.printers[X1C_SN].spec.lan_host is None

    result = await _printer_host(hass, entry, X1C_SN)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_LAN: LAN_FIXED, CONF_HOST: "127.0.0.1:1"}
    )
    await hass.async_block_till_done()
    assert entry.options[CONF_PRINTERS] == {
        X1C_SN: {CONF_LAN: LAN_FIXED, CONF_HOST: "127.0.0.1:1"}
    }
    assert entry.runtime_data.hub.printers[X1C_SN].spec.lan_host == "127.0.0.1:1"

    result = await _printer_host(hass, entry, X1C_SN)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_LAN: LAN_AUTO, CONF_HOST: "127.0.0.1:1"}
    )
    await hass.async_block_till_done()
    assert entry.options[CONF_PRINTERS] == {}
    # Learnt again from the printer's next announcement.
    assert entry.runtime_data.hub.printers[X1C_SN].spec.lan_host is None
    ears.send(notify(X1C_SN))
    await wait_for(
        hass,
        lambda: entry.runtime_data.hub.printers[X1C_SN].spec.lan_host == "127.0.0.1",
    )


async def test_options_form_shows_the_current_choice(
    hass: HomeAssistant,
    ears: Ears,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> None:
    """An old option (a bare host) shows as fixed; a form without a choice too."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={CONF_PRINTERS: {X1C_SN: {CONF_HOST: "127.0.0.1:1"}}},
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    result = await _printer_host(hass, mock_config_entry, X1C_SN)
    schema = result["data_schema"].schema
    suggested = {
        str(key): key.description["suggested_value"]
        for key in schema
        if key.description
    }
    assert suggested == {CONF_LAN: LAN_FIXED, CONF_HOST: "127.0.0.1:1"}
    assert result["description_placeholders"]["learned"] == "-"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1:2"}
    )
    await hass.async_block_till_done()
    assert mock_config_entry.options[CONF_PRINTERS] == {
        X1C_SN: {CONF_LAN: LAN_FIXED, CONF_HOST: "127.0.0.1:2"}
    }
    result = await _printer_host(hass, mock_config_entry, X1C_SN)
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert mock_config_entry.options[CONF_PRINTERS] == {}


async def test_memory_is_bounded_and_flows_rare(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """Forged serials cannot grow memory; one flow per serial per hour."""
    now = [1000.0]
    discovery = BambuDiscovery(hass, clock=lambda: now[0], capacity=2)
    serials = ["01P00A000000001", "01P00A000000002", "01P00A000000003"]
    for serial in serials:
        now[0] += 1
        discovery.async_heard(DiscoveredPrinter(serial=serial, host="192.0.2.1"))
    await hass.async_block_till_done()
    assert [p.serial for p in discovery.recent()] == serials[:0:-1]
    assert list(discovery._flows) == serials[1:]
    await wait_for(hass, lambda: len(_discovery_flows(hass)) == 3)
    flows = _discovery_flows(hass)
    for flow in flows:
        hass.config_entries.flow.async_abort(flow["flow_id"])
    discovery.async_heard(DiscoveredPrinter(serial=serials[2], host="192.0.2.1"))
    now[0] += FLOW_INTERVAL + 1
    discovery.async_heard(DiscoveredPrinter(serial=serials[1], host="192.0.2.1"))
    await wait_for(hass, lambda: bool(_discovery_flows(hass)))
    assert [f["context"]["unique_id"] for f in _discovery_flows(hass)] == [serials[1]]


async def test_announcements_are_spaced_and_printers_forgotten(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """An announced address moves at most once a minute; reports keep theirs."""
    entry = mock_config_entry
    entry.add_to_hass(hass)
    # LAN off: the addresses are learnt, nothing is dialled.
    hass.config_entries.async_update_entry(
        entry,
        options={
            CONF_PRINTERS: {
                X1C_SN: {CONF_LAN: LAN_OFF},
                P1S_SN: {CONF_LAN: LAN_OFF},
            }
        },
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    learned = entry.runtime_data.learned_hosts
    now = [1000.0]
    discovery = BambuDiscovery(hass, clock=lambda: now[0])
    discovery.async_heard(DiscoveredPrinter(serial=X1C_SN, host="192.0.2.1"))
    now[0] += 1
    discovery.async_heard(DiscoveredPrinter(serial=X1C_SN, host="192.0.2.2"))
    assert learned[X1C_SN] == "192.0.2.1"
    now[0] += ANNOUNCE_INTERVAL
    discovery.async_heard(DiscoveredPrinter(serial=X1C_SN, host="192.0.2.2"))
    assert learned[X1C_SN] == "192.0.2.2"

    # The printer reports both of its addresses: the learnt one stays.
    link = entry.runtime_data.hub.printers[X1C_SN]
    eth = int.from_bytes(bytes([192, 0, 2, 3]), "little")
    wlan = int.from_bytes(bytes([192, 0, 2, 2]), "little")
    link.state.merge(
        {
            "print": {
                "command": "push_status",
                "msg": 1,
                "net": {"info": [{"ip": eth}, {"ip": wlan}]},
            }
        }
    )
    assert not async_learn_host(hass, entry, X1C_SN, "192.0.2.3", announced=False)
    assert learned[X1C_SN] == "192.0.2.2"

    # A printer that leaves the bind list is forgotten.
    discovery.async_heard(DiscoveredPrinter(serial=P1S_SN, host="192.0.2.9"))
    assert learned[P1S_SN] == "192.0.2.9"
    cloud.devices = [X1C]
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert P1S_SN not in learned
    assert X1C_SN in learned
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
