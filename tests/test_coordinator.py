"""Coordinator behaviour: reauth, 429 back-off, logging, stale data."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.update_coordinator import UpdateFailed
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.coordinator import BambuFirmwareCoordinator

from .cloud_server import P1S, X1C, Failure, FakeCloud

BIND = "/v1/iot-service/api/user/bind"
PROFILE = "/v1/user-service/my/profile"
VERSION = "/v1/iot-service/api/user/device/version"
ONLINE = "binary_sensor.workshop_x1c_online"
P1S_ONLINE = "binary_sensor.garage_p1s_online"


async def _tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, minutes: float
) -> None:
    freezer.tick(timedelta(minutes=minutes))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.usefixtures("init_integration")
async def test_auth_failure_starts_reauth(
    hass: HomeAssistant, cloud: FakeCloud, freezer: FrozenDateTimeFactory
) -> None:
    """A token refused at runtime opens the reauth flow."""
    cloud.tokens.clear()
    await _tick(hass, freezer, 6)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_rate_limit_honours_retry_after(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    """After a 429 no request is sent before Retry-After has passed."""
    coordinator = init_integration.runtime_data.coordinator
    cloud.fail(PROFILE, Failure(429, "", headers={"Retry-After": "900"}))
    await _tick(hass, freezer, 6)
    assert cloud.calls(PROFILE) == 2
    assert coordinator.update_interval == timedelta(seconds=900)

    # A manual refresh inside the window does not reach the cloud.
    await coordinator.async_refresh()
    assert cloud.calls(PROFILE) == 2
    assert not coordinator.last_update_success

    await _tick(hass, freezer, 10)
    assert cloud.calls(PROFILE) == 2
    await _tick(hass, freezer, 6)
    assert cloud.calls(PROFILE) == 3
    assert coordinator.last_update_success
    assert coordinator.update_interval == timedelta(minutes=5)


async def test_rate_limit_without_retry_after_waits_one_interval(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A 429 without Retry-After waits at least one poll interval."""
    coordinator = init_integration.runtime_data.coordinator
    cloud.fail(PROFILE, Failure(429, "rate limited by cloudflare", "text/plain"))
    await _tick(hass, freezer, 6)
    assert coordinator.update_interval == timedelta(minutes=5)
    await coordinator.async_refresh()
    assert cloud.calls(PROFILE) == 2


@pytest.mark.usefixtures("init_integration")
async def test_errors_log_once_and_keep_data(
    hass: HomeAssistant,
    cloud: FakeCloud,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Outages log one line down and one on recovery; data stays until stale."""
    cloud.fail(BIND, Failure(500), times=2)
    cloud.fail(PROFILE, Failure(403, "<html>cloudflare</html>", "text/html"))
    cloud.fail(PROFILE, Failure(403, '{"code":8}'))
    caplog.clear()
    for _ in range(4):
        await _tick(hass, freezer, 6)
        state = hass.states.get(ONLINE)
        assert state is not None
        assert state.state == "on"
    assert caplog.text.count("Error fetching bambu_cloud data") == 1
    await _tick(hass, freezer, 6)
    assert caplog.text.count("Fetching bambu_cloud data recovered") == 1


@pytest.mark.usefixtures("init_integration")
async def test_stale_data_becomes_unavailable(
    hass: HomeAssistant, cloud: FakeCloud, freezer: FrozenDateTimeFactory
) -> None:
    """After 30 minutes without a good poll, entities become unavailable."""
    cloud.fail(BIND, Failure(503), times=10)
    for _ in range(6):
        await _tick(hass, freezer, 6)
    state = hass.states.get(ONLINE)
    assert state is not None
    assert state.state == STATE_UNAVAILABLE
    cloud.failures.clear()
    await _tick(hass, freezer, 6)
    state = hass.states.get(ONLINE)
    assert state is not None
    assert state.state == "on"


@pytest.mark.usefixtures("init_integration")
async def test_unbound_entity_unavailable_until_removed(
    hass: HomeAssistant, cloud: FakeCloud, freezer: FrozenDateTimeFactory
) -> None:
    """Status follows the bind list on every poll."""
    cloud.devices = [{**X1C, "online": False, "print_status": "RUNNING"}]
    await _tick(hass, freezer, 6)
    state = hass.states.get(ONLINE)
    assert state is not None
    assert state.state == "off"
    status = hass.states.get("sensor.workshop_x1c_cloud_print_status")
    assert status is not None
    assert status.state == "running"


DEEP = 100_000
MALFORMED_BINDS = {
    "error envelope": '{"message": "system busy", "code": 500}',
    "error with list": json.dumps({"code": 500, "devices": [X1C, P1S]}),
    "missing": '{"message": "success", "code": null, "error": null}',
    "null": '{"message": "success", "devices": null}',
    "object": json.dumps({"devices": {"dev_id": X1C["dev_id"]}}),
    "string": '{"devices": "none"}',
    "entry not an object": json.dumps({"devices": [X1C, None]}),
    "entry without dev_id": json.dumps({"devices": [X1C, {"name": "Garage P1S"}]}),
    "not an object": "[]",
    "deeply nested": '{"devices": ' + "[" * DEEP + "]" * DEEP + "}",
}


@pytest.mark.parametrize("body", MALFORMED_BINDS.values(), ids=MALFORMED_BINDS)
async def test_malformed_bind_keeps_everything(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    area_registry: ar.AreaRegistry,
    body: str,
) -> None:
    """A 200 bind answer without a good list fails the poll and removes nothing."""
    entry = init_integration
    # What a user configured: a device name and area, an entity renamed, one
    # disabled (which reloads the entry after 30 s).
    area = area_registry.async_get_or_create("Workshop")
    p1s = device_registry.async_get_device(identifiers={(DOMAIN, P1S["dev_id"])})
    assert p1s is not None
    device_registry.async_update_device(p1s.id, name_by_user="Big P1S", area_id=area.id)
    renamed = entity_registry.async_update_entity(ONLINE, name="X1C is up")
    disabled = entity_registry.async_update_entity(
        P1S_ONLINE, disabled_by=er.RegistryEntryDisabler.USER
    )
    await _tick(hass, freezer, 1)
    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    assert coordinator.last_update_success
    devices = {
        d.id for d in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    }
    entities = {
        e.entity_id: e
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    }

    cloud.fail(BIND, Failure(200, body))
    await _tick(hass, freezer, 6)

    assert not coordinator.last_update_success
    assert isinstance(coordinator.last_exception, UpdateFailed)
    assert coordinator.last_exception.translation_key == "cloud_error"
    assert "bind" in str(coordinator.last_exception.__cause__)
    assert set(coordinator.data.printers) == {X1C["dev_id"], P1S["dev_id"]}
    assert set(entry.runtime_data.hub.printers) == {X1C["dev_id"], P1S["dev_id"]}
    assert {
        d.id for d in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    } == devices
    assert {
        e.entity_id: e
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    } == entities
    p1s = device_registry.async_get(p1s.id)
    assert p1s is not None
    assert (p1s.name_by_user, p1s.area_id) == ("Big P1S", area.id)
    assert entity_registry.async_get(ONLINE) == renamed
    assert entity_registry.async_get(P1S_ONLINE) == disabled
    # Entities keep their last good value.
    state = hass.states.get(ONLINE)
    assert state is not None
    assert state.state == "on"
    assert state.name == "X1C is up"

    # The next good answer recovers, still without losing anything.
    await _tick(hass, freezer, 6)
    assert coordinator.last_update_success
    assert {
        d.id for d in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    } == devices
    assert entity_registry.async_get(ONLINE) == renamed


async def test_malformed_bind_error_is_a_cloud_error(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An answer the cloud marks as an error is the translated cloud_error.

    The library's English wording goes to the debug log, not into the
    translated message.
    """
    coordinator = init_integration.runtime_data.coordinator
    cloud.fail(BIND, Failure(200, MALFORMED_BINDS["error envelope"]))
    await _tick(hass, freezer, 6)
    assert isinstance(coordinator.last_exception, UpdateFailed)
    assert coordinator.last_exception.translation_key == "cloud_error"
    assert coordinator.last_exception.translation_placeholders is None


async def test_malformed_firmware_keeps_offers(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An error envelope from the version endpoint is a failed firmware poll."""
    del init_integration
    coordinator = BambuFirmwareCoordinator(
        hass,
        hass.config_entries.async_entries(DOMAIN)[0],
        hass.config_entries.async_entries(DOMAIN)[0].runtime_data.cloud,
    )
    cloud.versions = [
        {"dev_id": X1C["dev_id"], "version": "01.07.00.00", "firmware": []}
    ]
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    cloud.fail(VERSION, Failure(200, MALFORMED_BINDS["error envelope"]))
    await coordinator.async_refresh()
    assert not coordinator.last_update_success
    assert set(coordinator.data) == {X1C["dev_id"]}
