"""The cloud goes down, the printers stay up (issue 10, section 4).

An account entry stores the printer list of its last good poll (access codes
included, like the token in the entry). When the cloud API cannot be reached
at start-up the entry starts from that list: printers with a LAN link are
live over their own broker, cloud-only printers are unavailable, nothing is
removed, and the coordinator keeps polling until the cloud answers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.bambu_cloud.bambu.config import BambuConfig
from custom_components.bambu_cloud.bambu.mqtt import RetryPolicy
from custom_components.bambu_cloud.const import CONF_HOST, CONF_PRINTERS, DOMAIN
from custom_components.bambu_cloud.coordinator import printer_list_key
from tools.test_pki import TestPKI
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import P1S, UID, X1C, Failure, FakeCloud, MqttEndpoint
from .helpers import state_of, wait_for

PROFILE = "/v1/user-service/my/profile"
BIND = "/v1/iot-service/api/user/bind"
# Access codes found nowhere else: any trace of them in a log is a leak.
X1C_CODE = "Xq7kL2mZ"
P1S_CODE = "Pw9rT4vN"
NOZZLE_X1C = "sensor.workshop_x1c_nozzle_temperature"
NOZZLE_P1S = "sensor.garage_p1s_nozzle_temperature"
ONLINE_X1C = "binary_sensor.workshop_x1c_online"
LAN_NOZZLE = "77.0"


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """The cloud broker runs: a cloud outage stops it with the API."""
    return broker_endpoint


@pytest.fixture
def codes(cloud: FakeCloud) -> None:
    """The bind list gives each printer its own access code."""
    cloud.devices = [
        {**X1C, "dev_access_code": X1C_CODE},
        {**P1S, "dev_access_code": P1S_CODE},
    ]


@pytest.fixture
async def lan_printer(
    socket_enabled: None,
    pki: TestPKI,
    configure_library: Callable[..., BambuConfig],
) -> AsyncIterator[tuple[MqttBroker, VirtualPrinter]]:
    """The X1C's own broker (pinned CA, CN = serial) and the printer on it."""
    printer_ca = pki.root("Test Printer CA")
    configure_library(
        pins=frozenset({printer_ca.sha256}),
        retry=RetryPolicy(minimum=0.05, maximum=0.2),
    )
    broker = MqttBroker(pki.server(printer_ca, X1C["dev_id"]), users={"bblp": X1C_CODE})
    printer = VirtualPrinter(broker, X1C["dev_id"], "X1C", access_code=X1C_CODE)
    printer.state["nozzle_temper"] = float(LAN_NOZZLE)
    try:
        await broker.start()
        await printer.start()
        yield broker, printer
    finally:
        await printer.stop()
        await broker.stop()


def _lan_options(broker: MqttBroker) -> dict[str, Any]:
    return {CONF_PRINTERS: {X1C["dev_id"]: {CONF_HOST: f"127.0.0.1:{broker.port}"}}}


async def _later(hass: HomeAssistant, minutes: float) -> None:
    """Let the scheduled polls due within ``minutes`` run."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=minutes))
    await hass.async_block_till_done(wait_background_tasks=True)


def _registered(
    hass: HomeAssistant, entry: MockConfigEntry
) -> tuple[set[str], set[str]]:
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    return {d.id for d in devices}, {e.entity_id for e in entities}


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every logged line but the test harness's own storage mock's.

    The mock storage of pytest-homeassistant-custom-component logs what it
    writes; Home Assistant's real storage logs no data.
    """
    return "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith("pytest_homeassistant_custom_component")
    )


def _stored_list(hass_storage: dict[str, Any], entry: MockConfigEntry) -> Any:
    return hass_storage[printer_list_key(entry.entry_id)]["data"]


def _seed_list(hass_storage: dict[str, Any], entry: MockConfigEntry) -> None:
    """A printer list as a good poll stores it: both printers, their codes."""
    hass_storage[printer_list_key(entry.entry_id)] = {
        "version": 1,
        "minor_version": 1,
        "key": printer_list_key(entry.entry_id),
        "data": {
            "profile": {"uid": UID, "name": "Maker", "nickname": "Maker"},
            "printers": {
                serial: {
                    "serial": serial,
                    "name": name,
                    "online": True,
                    "print_status": "IDLE",
                    "model_id": model_id,
                    "product_name": product,
                    "access_code": code,
                    "nozzle_diameter": 0.4,
                    "structure": "CoreXY",
                    "print_job": None,
                }
                for serial, name, model_id, product, code in (
                    (X1C["dev_id"], X1C["name"], "BL-P001", "X1 Carbon", X1C_CODE),
                    (P1S["dev_id"], P1S["name"], "C12", "P1S", P1S_CODE),
                )
            },
        },
    }


@pytest.mark.usefixtures("codes")
async def test_cloud_down_at_start_keeps_lan_printers_live(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    broker: MqttBroker,
    printers: dict[str, VirtualPrinter],
    lan_printer: tuple[MqttBroker, VirtualPrinter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cloud API and broker down at start: LAN live, cloud-only unavailable."""
    caplog.set_level(logging.DEBUG)
    lan_broker, _ = lan_printer
    entry = mock_config_entry
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options=_lan_options(lan_broker))

    # A good start: the list of the poll is stored, access codes included.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: state_of(hass, NOZZLE_X1C) == LAN_NOZZLE)
    await wait_for(
        hass, lambda: state_of(hass, NOZZLE_P1S) not in (None, STATE_UNAVAILABLE)
    )
    stored = _stored_list(hass_storage, entry)
    assert stored["profile"]["uid"] == UID
    assert {
        serial: printer["access_code"] for serial, printer in stored["printers"].items()
    } == {X1C["dev_id"]: X1C_CODE, P1S["dev_id"]: P1S_CODE}
    registered = _registered(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    # The whole cloud goes down: the API answers 503, its broker is gone.
    await broker.stop()
    cloud.fail(PROFILE, Failure(503, "<html>down</html>", "text/html"), times=1000)
    profile_calls = cloud.calls(PROFILE)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    assert not coordinator.last_update_success
    assert cloud.calls(PROFILE) == profile_calls + 1

    # The X1C is live over its LAN link; the P1S (cloud only) is not.
    await wait_for(hass, lambda: state_of(hass, NOZZLE_X1C) == LAN_NOZZLE)
    assert state_of(hass, NOZZLE_P1S) == STATE_UNAVAILABLE
    # What only the cloud knows is unavailable, not made up.
    assert state_of(hass, ONLINE_X1C) == STATE_UNAVAILABLE
    assert _registered(hass, entry) == registered

    # The coordinator keeps trying; failed polls remove nothing.
    for _ in range(3):
        await _later(hass, 6)
    assert cloud.calls(PROFILE) > profile_calls + 3
    assert not coordinator.last_update_success
    assert _registered(hass, entry) == registered
    assert state_of(hass, NOZZLE_X1C) == LAN_NOZZLE

    # Stored access codes never reach diagnostics or the log.
    diagnostics = str(await get_diagnostics_for_config_entry(hass, hass_client, entry))
    for secret in (X1C_CODE, P1S_CODE):
        assert secret not in diagnostics
        assert secret not in _logged(caplog)

    # The cloud comes back: everything is normal again.
    cloud.failures.clear()
    await broker.start()
    await _later(hass, 6)
    assert coordinator.last_update_success
    assert state_of(hass, ONLINE_X1C) == "on"
    await wait_for(
        hass, lambda: state_of(hass, NOZZLE_P1S) not in (None, STATE_UNAVAILABLE)
    )
    assert state_of(hass, NOZZLE_X1C) == LAN_NOZZLE
    assert _registered(hass, entry) == registered
    for secret in (X1C_CODE, P1S_CODE):
        assert secret not in _logged(caplog)


async def test_no_stored_list_is_not_ready(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """The first set-up ever needs the cloud: retried later by Home Assistant."""
    cloud.fail(PROFILE, Failure(503), times=10)
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY


BAD_LISTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "not an object": lambda data: data.clear(),
    "no uid": lambda data: data["profile"].pop("uid"),
    "printers not an object": lambda data: data.update(printers=[]),
    "bad serial": lambda data: data["printers"].update(
        {"../#": {**data["printers"][X1C["dev_id"]], "serial": "../#"}}
    ),
    "serial differs from key": lambda data: data["printers"][X1C["dev_id"]].update(
        serial=P1S["dev_id"]
    ),
    "wrong type": lambda data: data["printers"][X1C["dev_id"]].update(online="yes"),
    "unknown field": lambda data: data["printers"][X1C["dev_id"]].update(extra=1),
}


@pytest.mark.parametrize("damage", BAD_LISTS.values(), ids=BAD_LISTS)
async def test_damaged_stored_list_is_not_used(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    damage: Callable[[dict[str, Any]], None],
) -> None:
    """A list that is off in any way starts nothing: not ready, as without one."""
    _seed_list(hass_storage, mock_config_entry)
    damage(_stored_list(hass_storage, mock_config_entry))
    cloud.fail(PROFILE, Failure(503), times=10)
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_refused_token_still_starts_reauth(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> None:
    """A 401 is no outage: the stored list is not used, reauth starts."""
    _seed_list(hass_storage, mock_config_entry)
    cloud.tokens.clear()
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_stored_list_starts_and_is_replaced_by_the_cloud(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> None:
    """Started from the stored list; the next good poll stores the new list."""
    _seed_list(hass_storage, mock_config_entry)
    cloud.fail(BIND, Failure(500))
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data.coordinator
    assert set(coordinator.data.printers) == {X1C["dev_id"], P1S["dev_id"]}
    assert set(mock_config_entry.runtime_data.hub.printers) == set(
        coordinator.data.printers
    )

    # The cloud answers: the P1S was unbound meanwhile.
    cloud.devices = [X1C]
    await _later(hass, 6)
    assert coordinator.last_update_success
    assert set(_stored_list(hass_storage, mock_config_entry)["printers"]) == {
        X1C["dev_id"]
    }
    assert (
        dr.async_get(hass).async_get_device(identifiers={(DOMAIN, P1S["dev_id"])})
        is None
    )


async def test_unchanged_list_is_not_written_again(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    init_integration: MockConfigEntry,
) -> None:
    """A good poll with the stored list writes nothing."""
    key = printer_list_key(init_integration.entry_id)
    written = hass_storage[key]
    await _later(hass, 6)
    assert init_integration.runtime_data.coordinator.last_update_success
    assert hass_storage[key] is written


async def test_list_removed_with_the_entry(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    init_integration: MockConfigEntry,
) -> None:
    """Deleting the entry deletes its stored printer list (and access codes)."""
    key = printer_list_key(init_integration.entry_id)
    assert key in hass_storage
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
