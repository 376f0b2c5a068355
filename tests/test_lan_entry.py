"""A printer without a cloud account: flow, live state, controls, reauth.

Everything runs against real servers on 127.0.0.1: the printer's own
mosquitto broker with a certificate from a test CA shaped like Bambu's
(CN = serial, no SAN, pinned through the library configuration) and a
virtual printer on it. The fake cloud runs too (the library configuration
swap needs it) and is never asked anything by a LAN-only entry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from homeassistant.components.light import DOMAIN as LIGHT_DOMAIN
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_INTEGRATION_DISCOVERY,
    SOURCE_REAUTH,
    SOURCE_USER,
    ConfigEntryState,
)
from homeassistant.const import SERVICE_TURN_OFF, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.bambu_cloud.bambu.config import BambuConfig, Timeouts
from custom_components.bambu_cloud.bambu.const import Region
from custom_components.bambu_cloud.bambu.discovery import DiscoveredPrinter
from custom_components.bambu_cloud.bambu.lan import LanCheckError, check_printer
from custom_components.bambu_cloud.bambu.mqtt import RetryPolicy
from custom_components.bambu_cloud.config_flow import MANUAL, MAX_LENGTHS
from custom_components.bambu_cloud.const import (
    CONF_ACCESS_CODE,
    CONF_CERTIFICATE_ID,
    CONF_HOST,
    CONF_PRINTER,
    CONF_PRIVATE_KEY,
    CONF_SERIAL,
    DOMAIN,
)
from custom_components.bambu_cloud.coordinator import BambuLanCoordinator
from custom_components.bambu_cloud.discovery import (
    DATA_DISCOVERY,
    BambuDiscovery,
)
from custom_components.bambu_cloud.library import LIBRARY_CONFIGS
from tools.test_pki import IssuedCert, TestPKI
from tools.virtual_printer.mosquitto import MqttBroker, free_port
from tools.virtual_printer.printer import VirtualPrinter

from .app_certs import rsa_cert
from .cloud_server import X1C, FakeCloud
from .helpers import call_service, entity_id_of, state_of, wait_for

SERIAL = "01P00A000000042"
CODE = "12345678"
NEW_CODE = "87654321"
NAME = "Loft P1S"


@dataclasses.dataclass
class LanPrinter:
    """The printer's broker, its CA and the virtual printer behind it."""

    broker: MqttBroker
    ca: IssuedCert
    printer: VirtualPrinter

    @property
    def host(self) -> str:
        """What a user types: the broker's address with its port."""
        return f"127.0.0.1:{self.broker.port}"


@pytest.fixture
def lan_config(configure_library: Callable[..., BambuConfig]) -> Callable[..., None]:
    """Pin a CA; quick time limits and reconnects for the tests."""

    def configure(ca: IssuedCert | None, **changes: Any) -> None:
        configure_library(
            pins=frozenset({ca.sha256} if ca is not None else {"00" * 32}),
            timeouts=Timeouts(command_ack=3.0, mqtt_connect=5.0, probe=5.0),
            retry=RetryPolicy(minimum=0.05, maximum=0.2),
            **changes,
        )

    return configure


@pytest.fixture
async def lan(
    hass: HomeAssistant,
    socket_enabled: None,
    pki: TestPKI,
    lan_config: Callable[..., None],
) -> AsyncIterator[LanPrinter]:
    """A P1S in LAN mode: its own broker, CN = serial, the CA pinned."""
    ca = pki.root("Test Printer CA")
    lan_config(ca)
    broker = MqttBroker(pki.server(ca, SERIAL), users={"bblp": CODE})
    printer = VirtualPrinter(broker, SERIAL, "P1S")
    try:
        await broker.start()
        await printer.start()
        yield LanPrinter(broker, ca, printer)
    finally:
        # Entries first: a link reconnecting while the broker stops could
        # slip a connection past the broker's shutdown.
        for entry in hass.config_entries.async_entries(DOMAIN):
            if entry.state is ConfigEntryState.LOADED:
                await hass.config_entries.async_unload(entry.entry_id)
        await printer.stop()
        await broker.stop()


def _entry(lan: LanPrinter, **data: str) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=NAME,
        unique_id=SERIAL,
        data={
            CONF_HOST: lan.host,
            CONF_SERIAL: SERIAL,
            CONF_ACCESS_CODE: CODE,
            **data,
        },
    )


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hub = entry.runtime_data.hub
    await wait_for(hass, lambda: hub.printers[SERIAL].available)


async def _lan_form(hass: HomeAssistant) -> FlowResult:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert "lan" in result["menu_options"]
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "lan"}
    )


async def _submit(
    hass: HomeAssistant, result: FlowResult, user_input: dict[str, Any]
) -> FlowResult:
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    await hass.async_block_till_done()
    return result


def _nozzle(hass: HomeAssistant) -> str:
    return entity_id_of(hass, "sensor", SERIAL, "nozzle_temperature")


# ------------------------------------------------------------------ the flow


async def test_lan_flow_creates_a_live_entry(
    hass: HomeAssistant,
    lan: LanPrinter,
    cloud: FakeCloud,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Typed address, serial and code: checked, stored, served like any printer."""
    lan.printer.state["nozzle_temper"] = 61.0
    result = await _lan_form(hass)
    assert result["step_id"] == "lan"
    result = await _submit(
        hass,
        result,
        {
            CONF_HOST: f" {lan.host} ",
            CONF_SERIAL: SERIAL.lower(),
            CONF_ACCESS_CODE: CODE,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "P1S 0042"
    assert result["data"] == {
        CONF_HOST: lan.host,
        CONF_SERIAL: SERIAL,
        CONF_ACCESS_CODE: CODE,
    }
    entry = result["result"]
    assert entry.unique_id == SERIAL
    assert entry.state is ConfigEntryState.LOADED
    assert isinstance(entry.runtime_data.coordinator, BambuLanCoordinator)
    assert entry.runtime_data.hub.cloud is None

    await wait_for(hass, lambda: state_of(hass, _nozzle(hass)) == "61.0")
    # The flow's check and the entry's link: both logged in as bblp, SNI = serial.
    assert set(lan.broker.sni_names_seen) == {SERIAL}
    assert [c.username for c in lan.broker.connected_clients] == ["bblp"]
    device = device_registry.async_get_device(identifiers={(DOMAIN, SERIAL)})
    assert device is not None
    assert device.model == "P1S"
    assert device.via_device_id is None
    assert device.sw_version == lan.printer.spec.sw_ver
    # No account: no bind-list entities, no firmware update; the cover image
    # shows the plate thumbnail of the job's file.
    platforms = {
        e.domain
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    }
    assert {"sensor", "binary_sensor", "light", "camera", "image"} <= platforms
    assert "update" not in platforms
    assert not cloud.requests

    # A control reaches the printer over its LAN link.
    light = entity_id_of(hass, LIGHT_DOMAIN, SERIAL, "chamber_light")
    await call_service(hass, LIGHT_DOMAIN, SERVICE_TURN_OFF, light)
    assert lan.printer.state["lights_report"][0]["mode"] == "off"
    await wait_for(hass, lambda: state_of(hass, light) == "off")

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    await wait_for(hass, lambda: not lan.broker.connected_clients)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({CONF_HOST: "not a host!"}, {CONF_HOST: "invalid_host"}),
        ({CONF_SERIAL: "01P/00A#"}, {CONF_SERIAL: "invalid_serial"}),
        (
            {CONF_HOST: "a" * (MAX_LENGTHS[CONF_HOST] + 1)},
            {CONF_HOST: "too_long"},
        ),
        (
            {CONF_ACCESS_CODE: "1" * (MAX_LENGTHS[CONF_ACCESS_CODE] + 1)},
            {CONF_ACCESS_CODE: "too_long"},
        ),
        ({CONF_ACCESS_CODE: "wrong!"}, {"base": "invalid_access_code"}),
        ({CONF_SERIAL: "01P00A000000099"}, {"base": "serial_mismatch"}),
        (
            {CONF_CERTIFICATE_ID: "only-an-id"},
            {"base": "invalid_certificate_no_private_key"},
        ),
    ],
)
async def test_lan_flow_errors_then_recovers(
    hass: HomeAssistant,
    lan: LanPrinter,
    changes: dict[str, str],
    error: dict[str, str],
) -> None:
    """Each mistake is its own form error; the corrected form creates the entry."""
    good = {CONF_HOST: lan.host, CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE}
    result = await _lan_form(hass)
    result = await _submit(hass, result, {**good, **changes})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == error
    result = await _submit(hass, result, good)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_lan_flow_cannot_connect(
    hass: HomeAssistant, lan_config: Callable[..., None], pki: TestPKI
) -> None:
    """Nothing listens at the address."""
    lan_config(pki.root("Test Printer CA"))
    result = await _lan_form(hass)
    result = await _submit(
        hass,
        result,
        {
            CONF_HOST: f"127.0.0.1:{free_port()}",
            CONF_SERIAL: SERIAL,
            CONF_ACCESS_CODE: CODE,
        },
    )
    assert result["errors"] == {"base": "printer_cannot_connect"}


async def test_lan_flow_no_report(hass: HomeAssistant, lan: LanPrinter) -> None:
    """The broker takes the code, but the printer stays silent."""
    lan.printer.detach()
    result = await _lan_form(hass)
    result = await _submit(
        hass,
        result,
        {CONF_HOST: lan.host, CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE},
    )
    assert result["errors"] == {"base": "no_report"}


async def test_lan_flow_expired_certificate(
    hass: HomeAssistant, pki: TestPKI, lan_config: Callable[..., None]
) -> None:
    """An expired printer certificate: refused, with its own reason."""
    ca = pki.root("Test Printer CA")
    lan_config(ca)
    broker = MqttBroker(pki.server(ca, SERIAL, expired=True), users={"bblp": CODE})
    try:
        await broker.start()
        result = await _lan_form(hass)
        result = await _submit(
            hass,
            result,
            {
                CONF_HOST: f"127.0.0.1:{broker.port}",
                CONF_SERIAL: SERIAL,
                CONF_ACCESS_CODE: CODE,
            },
        )
        assert result["errors"] == {"base": "tls_expired"}
        assert not broker.refused
    finally:
        await broker.stop()


class RecordingServer:
    """A TLS (or plain) server that records every byte a client sends."""

    def __init__(
        self,
        context: ssl.SSLContext | None,
        reply: bytes = b"",
        *,
        hang_up: bool = False,
    ) -> None:
        self.context = context
        self.reply = reply
        self.hang_up = hang_up
        self.received = b""
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> RecordingServer:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.context
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        if self.reply:
            writer.write(self.reply)
        try:
            while data := await reader.read(4096):
                self.received += data
                if self.hang_up:
                    break
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def test_unpinned_certificate_gets_no_credential(
    hass: HomeAssistant, pki: TestPKI, lan_config: Callable[..., None]
) -> None:
    """A device with a certificate of another CA hears no byte of the login."""
    pinned = pki.root("Test Printer CA")
    stranger = pki.root("Stranger CA")
    lan_config(pinned)
    async with RecordingServer(pki.server(stranger, SERIAL).server_context()) as server:
        result = await _lan_form(hass)
        result = await _submit(
            hass,
            result,
            {CONF_HOST: server.host, CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE},
        )
        assert result["errors"] == {"base": "tls_unknown_ca"}
        await asyncio.sleep(0.1)
        assert server.connections == 1  # the chain was read, nothing else
        assert server.received == b""


async def test_not_a_tls_server(
    hass: HomeAssistant, pki: TestPKI, lan_config: Callable[..., None]
) -> None:
    """Something that does not speak TLS: the handshake fails."""
    lan_config(pki.root("Test Printer CA"))
    async with RecordingServer(None, reply=b"HTTP/1.1 400 Bad Request\r\n\r\n") as srv:
        result = await _lan_form(hass)
        result = await _submit(
            hass,
            result,
            {CONF_HOST: srv.host, CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE},
        )
        assert result["errors"] == {"base": "tls_other"}
        assert CODE.encode() not in srv.received


async def test_login_dropped(
    hass: HomeAssistant, pki: TestPKI, lan_config: Callable[..., None]
) -> None:
    """The printer's certificate checks out, but the login is cut off."""
    ca = pki.root("Test Printer CA")
    lan_config(ca)
    context = pki.server(ca, SERIAL).server_context()
    async with RecordingServer(context, hang_up=True) as server:
        result = await _lan_form(hass)
        result = await _submit(
            hass,
            result,
            {CONF_HOST: server.host, CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE},
        )
        assert result["errors"] == {"base": "printer_cannot_connect"}


async def test_lan_flow_with_app_certificate(
    hass: HomeAssistant, lan: LanPrinter
) -> None:
    """The optional app certificate is checked and stored like the account's."""
    cert = rsa_cert()
    result = await _lan_form(hass)
    result = await _submit(
        hass,
        result,
        {
            CONF_HOST: lan.host,
            CONF_SERIAL: SERIAL,
            CONF_ACCESS_CODE: CODE,
            CONF_PRIVATE_KEY: cert.key_pem + cert.cert_pem,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PRIVATE_KEY] == (cert.key_pem + cert.cert_pem).strip()
    assert result["result"].runtime_data.hub.certificate is not None


async def test_lan_flow_already_configured(
    hass: HomeAssistant, lan: LanPrinter
) -> None:
    """The same printer twice: aborted before anything is sent."""
    _entry(lan).add_to_hass(hass)
    result = await _lan_form(hass)
    result = await _submit(
        hass,
        result,
        {CONF_HOST: lan.host, CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_account_printer_aborts(
    hass: HomeAssistant, init_integration: MockConfigEntry, cloud: FakeCloud
) -> None:
    """A printer of a loaded account points to that account's options."""
    serial = X1C["dev_id"]
    result = await _lan_form(hass)
    result = await _submit(
        hass,
        result,
        {CONF_HOST: "127.0.0.1", CONF_SERIAL: serial, CONF_ACCESS_CODE: CODE},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "account_printer"
    assert result["description_placeholders"] == {"account": "Maker"}

    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data=dataclasses.asdict(DiscoveredPrinter(serial=serial, host="127.0.0.1")),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "account_printer"


# ------------------------------------------------------ printers heard around


def _heard(hass: HomeAssistant, *printers: DiscoveredPrinter) -> None:
    """What the discovery listener would have heard (without its flows)."""
    discovery = hass.data.setdefault(DATA_DISCOVERY, BambuDiscovery(hass))
    for printer in printers:
        discovery._heard[printer.serial] = (discovery._clock(), printer)


async def test_lan_step_offers_printers_heard(
    hass: HomeAssistant, lan: LanPrinter, init_integration: MockConfigEntry
) -> None:
    """Printers heard lately are offered (not the account's); picking fills in."""
    # An account entry that is not loaded is not asked about its printers.
    MockConfigEntry(domain=DOMAIN, unique_id="other", data={}).add_to_hass(hass)
    _heard(
        hass,
        DiscoveredPrinter(serial=SERIAL, host=lan.host, name=NAME),
        DiscoveredPrinter(serial=X1C["dev_id"], host="127.0.0.9"),
    )
    result = await _lan_form(hass)
    assert result["step_id"] == "lan_pick"
    options = result["data_schema"].schema[CONF_PRINTER].config["options"]
    assert options == [
        {"value": SERIAL, "label": f"{SERIAL} — {NAME} — {lan.host}"},
        {"value": MANUAL, "label": MANUAL},
    ]
    result = await _submit(hass, result, {CONF_PRINTER: SERIAL})
    assert result["step_id"] == "lan"
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description
    }
    assert suggested == {CONF_HOST: lan.host, CONF_SERIAL: SERIAL}
    result = await _submit(
        hass,
        result,
        {CONF_HOST: lan.host, CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == NAME


async def test_lan_step_manual_choice(hass: HomeAssistant, lan: LanPrinter) -> None:
    """ "Manual" leads to the empty form."""
    _heard(hass, DiscoveredPrinter(serial=SERIAL, host=lan.host))
    result = await _lan_form(hass)
    result = await _submit(hass, result, {CONF_PRINTER: MANUAL})
    assert result["step_id"] == "lan"
    assert not any(key.description for key in result["data_schema"].schema)


async def _discover(hass: HomeAssistant, printer: DiscoveredPrinter) -> FlowResult:
    return await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data=dataclasses.asdict(printer),
    )


async def test_discovery_confirm_creates_entry(
    hass: HomeAssistant, lan: LanPrinter
) -> None:
    """An announced printer shows model, name and address; asks for the code."""
    printer = DiscoveredPrinter(
        serial=SERIAL, host=lan.host, model_id="C12", name=NAME, connect_mode="lan"
    )
    result = await _discover(hass, printer)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"] == {
        "name": NAME,
        "model": "P1S",
        "host": lan.host,
    }
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["title_placeholders"]["name"] == NAME
    result = await _submit(
        hass, result, {CONF_ACCESS_CODE: "9" * (MAX_LENGTHS[CONF_ACCESS_CODE] + 1)}
    )
    assert result["errors"] == {CONF_ACCESS_CODE: "too_long"}
    result = await _submit(hass, result, {CONF_ACCESS_CODE: "wrong!"})
    assert result["errors"] == {"base": "invalid_access_code"}
    result = await _submit(hass, result, {CONF_ACCESS_CODE: CODE})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == NAME
    assert result["data"] == {
        CONF_HOST: lan.host,
        CONF_SERIAL: SERIAL,
        CONF_ACCESS_CODE: CODE,
    }


async def test_discovery_without_name_or_model(hass: HomeAssistant) -> None:
    """A sparse announcement: the serial names it, the prefix the model."""
    result = await _discover(
        hass, DiscoveredPrinter(serial=SERIAL, host="127.0.0.1", model_id=None)
    )
    assert result["description_placeholders"] == {
        "name": SERIAL,
        "model": "P1S",
        "host": "127.0.0.1",
    }


@pytest.mark.parametrize(
    "info",
    [
        {"serial": "../#", "host": "127.0.0.1"},
        {"serial": SERIAL, "host": "not a host!"},
        {},
    ],
)
async def test_discovery_unusable(hass: HomeAssistant, info: dict[str, Any]) -> None:
    """A datagram's word is checked before it becomes a unique id."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_INTEGRATION_DISCOVERY}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_discovery"


async def test_ignored_discovery_stays_ignored(hass: HomeAssistant) -> None:
    """A printer the user ignored is not offered again."""
    MockConfigEntry(
        domain=DOMAIN, unique_id=SERIAL, source=SOURCE_IGNORE, data={}
    ).add_to_hass(hass)
    result = await _discover(hass, DiscoveredPrinter(serial=SERIAL, host="127.0.0.1"))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_discovery_moves_a_lan_entry(
    hass: HomeAssistant, lan: LanPrinter
) -> None:
    """A LAN entry's printer announced at a new address: the entry follows."""
    entry = _entry(lan)
    entry.add_to_hass(hass)
    result = await _discover(hass, DiscoveredPrinter(serial=SERIAL, host="127.0.0.7"))
    assert result["reason"] == "already_configured"
    # The test printer's broker listens on its own port, which is kept.
    assert entry.data[CONF_HOST] == f"127.0.0.7:{lan.host.rpartition(':')[2]}"


async def test_discovery_replaces_a_bare_address(hass: HomeAssistant) -> None:
    """A LAN entry typed without a port takes the announced address as is."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SERIAL,
        data={CONF_HOST: "printer.lan", CONF_SERIAL: SERIAL, CONF_ACCESS_CODE: CODE},
    )
    entry.add_to_hass(hass)
    result = await _discover(hass, DiscoveredPrinter(serial=SERIAL, host="127.0.0.7"))
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_HOST] == "127.0.0.7"


async def test_discovery_keeps_a_typed_port(
    hass: HomeAssistant, lan: LanPrinter
) -> None:
    """A forwarded MQTT port the user typed survives the new address."""
    entry = _entry(lan, **{CONF_HOST: "127.0.0.6:18883"})
    entry.add_to_hass(hass)
    result = await _discover(hass, DiscoveredPrinter(serial=SERIAL, host="127.0.0.7"))
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_HOST] == "127.0.0.7:18883"


# ------------------------------------------------------------ a loaded entry


async def test_access_code_change_starts_reauth(
    hass: HomeAssistant, lan: LanPrinter
) -> None:
    """A refused code asks for the new one; the new one works at once."""
    entry = _entry(lan)
    await _setup(hass, entry)
    await lan.broker.set_users({"bblp": NEW_CODE})
    await lan.broker.disconnect_all()
    await wait_for(
        hass,
        lambda: any(
            flow["context"]["source"] == SOURCE_REAUTH
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        ),
    )
    await wait_for(hass, lambda: state_of(hass, _nozzle(hass)) == STATE_UNAVAILABLE)
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    assert result["step_id"] == "reauth_lan"
    assert result["description_placeholders"]["printer"] == NAME
    result = await _submit(hass, result, {CONF_ACCESS_CODE: "x" * 65})
    assert result["errors"] == {CONF_ACCESS_CODE: "too_long"}
    result = await _submit(hass, result, {CONF_ACCESS_CODE: CODE})
    assert result["errors"] == {"base": "invalid_access_code"}
    result = await _submit(hass, result, {CONF_ACCESS_CODE: f" {NEW_CODE} "})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_ACCESS_CODE] == NEW_CODE
    lan.printer.update({"nozzle_temper": 88.0})
    await wait_for(
        hass, lambda: entry.runtime_data.hub.printers[SERIAL].available, within=15
    )
    lan.printer.update({"nozzle_temper": 89.0})
    await wait_for(hass, lambda: state_of(hass, _nozzle(hass)) == "89.0")


async def test_reconfigure_changes_host_and_certificate(
    hass: HomeAssistant, lan: LanPrinter
) -> None:
    """A new address is checked like a new printer; the certificate with it."""
    entry = _entry(lan, host="127.0.0.1:1")
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_lan"
    result = await _submit(hass, result, {CONF_HOST: "not a host!"})
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    result = await _submit(hass, result, {CONF_HOST: f"127.0.0.1:{free_port()}"})
    assert result["errors"] == {"base": "printer_cannot_connect"}
    result = await _submit(
        hass, result, {CONF_HOST: lan.host, CONF_PRIVATE_KEY: "x" * 20000}
    )
    assert result["errors"] == {CONF_PRIVATE_KEY: "too_long"}
    cert = rsa_cert()
    result = await _submit(
        hass,
        result,
        {
            CONF_HOST: lan.host,
            CONF_PRIVATE_KEY: cert.key_pem,
            CONF_CERTIFICATE_ID: cert.certificate_id,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {
        CONF_HOST: lan.host,
        CONF_SERIAL: SERIAL,
        CONF_ACCESS_CODE: CODE,
        CONF_PRIVATE_KEY: cert.key_pem.strip(),
        CONF_CERTIFICATE_ID: cert.certificate_id,
    }
    await wait_for(hass, lambda: entry.state is ConfigEntryState.LOADED)
    assert entry.runtime_data.hub.certificate is not None


async def test_options_are_the_certificates(
    hass: HomeAssistant, lan: LanPrinter
) -> None:
    """A LAN entry's address is reconfigured; its options are the CA bundle."""
    entry = _entry(lan)
    await _setup(hass, entry)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "certificates"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"ca_bundle": lan.ca.pem}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.hub.printers[SERIAL].available)


async def test_diagnostics_redact_host_and_code(
    hass: HomeAssistant, lan: LanPrinter, hass_client: ClientSessionGenerator
) -> None:
    """No address, serial or access code in a LAN entry's diagnostics."""
    entry = _entry(lan)
    await _setup(hass, entry)
    # Nothing to poll: a refresh keeps the printer from the entry.
    coordinator = entry.runtime_data.coordinator
    await coordinator.async_refresh()
    assert list(coordinator.data.printers) == [SERIAL]
    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert result["entry"]["data"] == {
        CONF_HOST: "**REDACTED**",
        CONF_SERIAL: "**REDACTED**",
        CONF_ACCESS_CODE: "**REDACTED**",
    }
    assert "token" not in result
    assert "firmware" not in result
    assert result["printers"]["printer_1"]["available"] is True
    text = repr(result)
    for secret in (CODE, SERIAL, lan.host):
        assert secret not in text


async def test_authorization_firmware_names_the_ways_out(
    hass: HomeAssistant, lan: LanPrinter, issue_registry: ir.IssueRegistry
) -> None:
    """Signed commands required and no certificate: the issue; reading works."""
    lan.printer.signature_required = True
    lan.printer.state["nozzle_temper"] = 44.0
    entry = _entry(lan)
    await _setup(hass, entry)
    issue = issue_registry.async_get_issue(DOMAIN, f"signature_{SERIAL}")
    assert issue is not None
    assert issue.translation_key == "signed_commands_required"
    assert issue.translation_placeholders == {"printer": NAME}
    assert state_of(hass, _nozzle(hass)) == "44.0"
    speed = entity_id_of(hass, "select", SERIAL, "print_speed")
    assert state_of(hass, speed) == STATE_UNAVAILABLE


async def test_check_refuses_an_unpinned_bundle(
    hass: HomeAssistant, lan: LanPrinter, pki: TestPKI
) -> None:
    """A stored CA bundle that no longer chains to a pin widens nothing."""
    config = LIBRARY_CONFIGS[Region.GLOBAL]
    with pytest.raises(LanCheckError) as caught:
        await check_printer(
            lan.host,
            SERIAL,
            CODE,
            config=config,
            extra_pem=pki.root("Stranger CA").pem,
        )
    assert caught.value.reason == "unknown_ca"
    assert not lan.broker.refused
