"""Coordinator behaviour: reauth, 429 back-off, logging, stale data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.bambu_cloud.const import DOMAIN

from .cloud_server import X1C, Failure, FakeCloud

BIND = "/v1/iot-service/api/user/bind"
PROFILE = "/v1/user-service/my/profile"
ONLINE = "binary_sensor.workshop_x1c_online"


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
