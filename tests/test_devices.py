"""Device identifiers (one module builds and reads them) and AMS device names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.devices import (
    AccountId,
    AmsId,
    PrinterId,
    account_identifier,
    ams_identifier,
    owning_serial,
    parse_identifier,
    printer_identifier,
)
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import UID, FakeCloud, MqttEndpoint, bind_entry
from .helpers import wait_for

SERIAL = "0948AD520400004"
H2D = bind_entry(SERIAL, "Lab H2D", "H2D", "O1D")


def test_identifiers_round_trip() -> None:
    """What is built is read back as the same device."""
    assert parse_identifier(account_identifier("123456")) == AccountId("123456")
    assert parse_identifier(printer_identifier(SERIAL)) == PrinterId(SERIAL)
    assert parse_identifier(ams_identifier(SERIAL, 0)) == AmsId(SERIAL, 0)
    assert parse_identifier(ams_identifier(SERIAL, 128)) == AmsId(SERIAL, 128)
    assert ams_identifier(SERIAL, 128) == f"{SERIAL}_ams_128"
    assert account_identifier("123456") == "account_123456"


@pytest.mark.parametrize(
    "identifier",
    ["", "account_", "not a serial", f"{SERIAL}_ams_", f"{SERIAL}_ams_x", "a_b"],
)
def test_foreign_identifiers_are_not_read(identifier: str) -> None:
    """Anything this integration does not build names no device."""
    assert parse_identifier(identifier) is None


def test_owning_serial() -> None:
    """AMS units belong to their printer; the account to no printer."""
    assert owning_serial(AmsId(SERIAL, 1)) == SERIAL
    assert owning_serial(PrinterId(SERIAL)) == SERIAL
    assert owning_serial(AccountId("1")) is None


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The H2D reports on the cloud broker."""
    return broker_endpoint


@pytest.fixture
async def h2d(broker: MqttBroker, cloud: FakeCloud) -> AsyncIterator[VirtualPrinter]:
    """A virtual H2D with an AMS 2 Pro (id 0) and an AMS HT (id 128)."""
    cloud.devices = [H2D]
    printer = VirtualPrinter(broker, SERIAL, "H2D")
    try:
        await printer.start()
        yield printer
    finally:
        await printer.stop()


def _ams_devices(
    device_registry: dr.DeviceRegistry, entry: MockConfigEntry
) -> dict[str, dr.DeviceEntry]:
    return {
        identifier: device
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        for domain, identifier in device.identifiers
        if domain == DOMAIN and isinstance(parse_identifier(identifier), AmsId)
    }


@pytest.mark.usefixtures("h2d")
async def test_ams_ht_has_its_own_name(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """An AMS HT is "AMS HT 1", not a second "AMS 1" beside the AMS 2 Pro."""
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(
        hass, lambda: len(_ams_devices(device_registry, mock_config_entry)) == 2
    )
    devices = _ams_devices(device_registry, mock_config_entry)
    pro = devices[ams_identifier(SERIAL, 0)]
    ht = devices[ams_identifier(SERIAL, 128)]
    assert (pro.name, pro.model) == ("Lab H2D AMS 1", "AMS 2 PRO")
    assert (ht.name, ht.model) == ("Lab H2D AMS HT 1", "AMS HT")
    printer = device_registry.async_get_device(
        identifiers={(DOMAIN, printer_identifier(SERIAL))}
    )
    assert printer is not None
    assert pro.via_device_id == ht.via_device_id == printer.id
    account = device_registry.async_get_device(
        identifiers={(DOMAIN, account_identifier(UID))}
    )
    assert account is not None
    assert printer.via_device_id == account.id


async def test_removed_ams_unit_loses_its_device(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    h2d: VirtualPrinter,
) -> None:
    """A unit missing from a full report loses its device; the other stays."""
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(
        hass, lambda: len(_ams_devices(device_registry, mock_config_entry)) == 2
    )
    units = h2d.state["ams"]["ams"]
    h2d.state["ams"]["ams"] = [unit for unit in units if unit["id"] != "128"]
    h2d.publish_full()
    await wait_for(
        hass,
        lambda: (
            set(_ams_devices(device_registry, mock_config_entry))
            == {ams_identifier(SERIAL, 0)}
        ),
    )
