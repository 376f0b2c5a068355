"""Firmware update entities: get_version against the cloud's firmware list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.update import (
    ATTR_INSTALLED_VERSION,
    ATTR_LATEST_VERSION,
    UpdateEntityFeature,
)
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import (
    ATTR_ENTITY_ID,
    ATTR_SUPPORTED_FEATURES,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.bambu.cloud import BambuCloud
from custom_components.bambu_cloud.bambu.config import BambuConfig
from custom_components.bambu_cloud.bambu.const import RegionEndpoints
from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.coordinator import BambuFirmwareCoordinator
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import A1MINI, P1S, TOKEN, X1C, Failure, FakeCloud, MqttEndpoint
from .helpers import state_of, wait_for

VERSION = "/v1/iot-service/api/user/device/version"
NOTES = "## 01.09.02.00\n- Faster homing\n- Fixes"
X1C_UPDATE = "update.workshop_x1c_firmware"
P1S_UPDATE = "update.garage_p1s_firmware"


def version_entry(
    serial: str, installed: str, *releases: tuple[str, str | None]
) -> dict[str, Any]:
    """A device as the version endpoint lists it."""
    return {
        "dev_id": serial,
        "version": installed,
        "firmware": [
            {
                "version": version,
                "force_update": False,
                "url": f"https://upgrade.example.invalid/{version}.json.sig",
                "description": notes,
            }
            for version, notes in releases
        ],
        "ams": [],
    }


@pytest.fixture
def mqtt_endpoint(request: pytest.FixtureRequest) -> MqttEndpoint:
    """The live broker for tests with virtual printers, else none."""
    if "printers" in request.fixturenames:
        endpoint: MqttEndpoint = request.getfixturevalue("broker_endpoint")
        return endpoint
    return MqttEndpoint()


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the update platform is set up."""
    return [Platform.UPDATE]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Update entities of an X1C and a P1S, registry entries and states match."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


@pytest.fixture
def cloud_versions(cloud: FakeCloud) -> FakeCloud:
    """X1C has an update with notes; P1S is offered nothing."""
    cloud.versions = [
        version_entry(
            X1C["dev_id"],
            "01.09.00.00",
            ("01.08.00.00", "old"),
            ("01.09.02.00", NOTES),
        ),
        version_entry(P1S["dev_id"], "01.08.02.00"),
    ]
    return cloud


def update_entity(hass: HomeAssistant, serial: str) -> str:
    """The entity id of a printer's firmware entity."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "update", DOMAIN, f"{serial}_firmware"
    )
    assert entity_id is not None
    return entity_id


async def test_firmware_coordinator_set_up_with_the_entry(
    hass: HomeAssistant, cloud_versions: FakeCloud, init_integration: MockConfigEntry
) -> None:
    """Entry setup polls the firmware list once and keeps the coordinator.

    The update entities use that coordinator (no poll of their own), and it
    stops with the entry.
    """
    firmware = init_integration.runtime_data.firmware
    assert isinstance(firmware, BambuFirmwareCoordinator)
    assert firmware.last_update_success
    assert set(firmware.data) == {X1C["dev_id"], P1S["dev_id"]}
    assert cloud_versions.calls(VERSION) == 1
    assert state_of(hass, update_entity(hass, X1C["dev_id"])) == STATE_ON

    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=7))
    await hass.async_block_till_done()
    assert cloud_versions.calls(VERSION) == 1


async def test_installed_from_printer(
    hass: HomeAssistant,
    cloud_versions: FakeCloud,
    printers: dict[str, VirtualPrinter],
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """The printer's get_version wins over the cloud; latest by version number."""
    x1c = update_entity(hass, X1C["dev_id"])
    p1s = update_entity(hass, P1S["dev_id"])
    sw_ver = printers["x1c"].spec.sw_ver
    await wait_for(
        hass,
        lambda: (
            (state := hass.states.get(x1c)) is not None
            and state.attributes.get(ATTR_INSTALLED_VERSION) == sw_ver
        ),
    )
    state = hass.states.get(x1c)
    assert state is not None
    assert state.state == STATE_ON
    assert state.attributes[ATTR_INSTALLED_VERSION] == "01.09.01.00"
    assert state.attributes[ATTR_LATEST_VERSION] == "01.09.02.00"
    assert (
        state.attributes[ATTR_SUPPORTED_FEATURES] == UpdateEntityFeature.RELEASE_NOTES
    )

    # Nothing offered: the installed version is the latest.
    await wait_for(
        hass,
        lambda: (
            (p := hass.states.get(p1s)) is not None
            and p.attributes.get(ATTR_INSTALLED_VERSION) == printers["p1s"].spec.sw_ver
        ),
    )
    assert state_of(hass, p1s) == STATE_OFF

    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "update/release_notes", "entity_id": x1c})
    result = await client.receive_json()
    assert result["success"]
    assert result["result"] == NOTES
    await client.send_json_auto_id({"type": "update/release_notes", "entity_id": p1s})
    result = await client.receive_json()
    assert result["success"]
    assert result["result"] is None

    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            "update", "install", {ATTR_ENTITY_ID: x1c}, blocking=True
        )


async def test_installed_from_cloud(
    hass: HomeAssistant, cloud_versions: FakeCloud, init_integration: MockConfigEntry
) -> None:
    """Without a get_version reply the cloud's installed version is shown."""
    state = hass.states.get(update_entity(hass, X1C["dev_id"]))
    assert state is not None
    assert state.state == STATE_ON
    assert state.attributes[ATTR_INSTALLED_VERSION] == "01.09.00.00"
    assert state.attributes[ATTR_LATEST_VERSION] == "01.09.02.00"
    assert cloud_versions.calls(VERSION) == 1


async def test_printer_not_listed(
    hass: HomeAssistant, cloud: FakeCloud, init_integration: MockConfigEntry
) -> None:
    """A printer the firmware list leaves out is unavailable."""
    assert state_of(hass, update_entity(hass, X1C["dev_id"])) == STATE_UNAVAILABLE


async def test_fetch_errors(
    hass: HomeAssistant,
    cloud_versions: FakeCloud,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Failures: retry after 30 min; last good list kept until it is stale."""
    cloud = cloud_versions
    cloud.fail(VERSION, Failure(500))
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    entity_id = update_entity(hass, X1C["dev_id"])
    assert state_of(hass, entity_id) == STATE_UNAVAILABLE

    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert cloud.calls(VERSION) == 2
    assert state_of(hass, entity_id) == STATE_ON

    # A failure while the list is fresh keeps it; the next poll is in 30 min.
    cloud.fail(VERSION, Failure(503))
    freezer.tick(timedelta(hours=6, minutes=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert cloud.calls(VERSION) == 3
    assert state_of(hass, entity_id) == STATE_ON

    # Another failure once the list is stale: unavailable.
    cloud.fail(VERSION, Failure(503))
    with patch.object(
        BambuFirmwareCoordinator,
        "fresh",
        new_callable=PropertyMock,
        return_value=False,
    ):
        freezer.tick(timedelta(minutes=31))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert cloud.calls(VERSION) == 4
        assert state_of(hass, entity_id) == STATE_UNAVAILABLE

    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert cloud.calls(VERSION) == 5
    assert state_of(hass, entity_id) == STATE_ON


@pytest.mark.parametrize(
    ("failure", "key", "placeholders"),
    [
        (Failure(500), "cloud_error", None),
        (Failure(200, "not json", "text/plain"), "cloud_error", None),
        (Failure(403, '{"code":8}'), "forbidden", None),
        (
            Failure(403, "<html>cloudflare</html>", "text/html"),
            "forbidden_cloudflare",
            None,
        ),
        (
            Failure(429, "", headers={"Retry-After": "7200"}),
            "rate_limited",
            {"seconds": "7200"},
        ),
        (Failure(429), "rate_limited", {"seconds": "1800"}),
    ],
)
async def test_error_mapping(
    hass: HomeAssistant,
    cloud_versions: FakeCloud,
    init_integration: MockConfigEntry,
    failure: Failure,
    key: str,
    placeholders: dict[str, str] | None,
) -> None:
    """Cloud errors become UpdateFailed with translation keys."""
    coordinator = BambuFirmwareCoordinator(
        hass, init_integration, init_integration.runtime_data.cloud
    )
    cloud_versions.fail(VERSION, failure)
    await coordinator.async_refresh()
    err = coordinator.last_exception
    assert isinstance(err, UpdateFailed)
    assert err.translation_domain == DOMAIN
    assert err.translation_key == key
    assert err.translation_placeholders == placeholders
    if key == "rate_limited":
        assert coordinator.update_interval == timedelta(
            seconds=int(placeholders["seconds"])  # type: ignore[index]
        )
        # Asked to wait: the next poll does not reach the cloud.
        calls = cloud_versions.calls(VERSION)
        await coordinator.async_refresh()
        assert cloud_versions.calls(VERSION) == calls
        err = coordinator.last_exception
        assert isinstance(err, UpdateFailed)
        assert err.translation_key == "rate_limited"
    else:
        assert coordinator.update_interval == timedelta(minutes=30)
    await coordinator.async_shutdown()


async def test_unreachable_cloud_is_cannot_connect(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """No answer at all (connection refused) is cannot_connect, not cloud_error."""
    closed = "http://127.0.0.1:1"
    config = BambuConfig(
        endpoints=RegionEndpoints(
            api_url=closed, web_url=closed, mqtt_host="127.0.0.1", mqtt_port=1
        )
    )
    coordinator = BambuFirmwareCoordinator(
        hass,
        init_integration,
        BambuCloud(async_get_clientsession(hass), config, TOKEN),
    )
    await coordinator.async_refresh()
    err = coordinator.last_exception
    assert isinstance(err, UpdateFailed)
    assert err.translation_key == "cannot_connect"
    assert err.translation_placeholders is None
    await coordinator.async_shutdown()


async def test_auth_failure_starts_reauth(
    hass: HomeAssistant, cloud_versions: FakeCloud, init_integration: MockConfigEntry
) -> None:
    """A refused token on the firmware list starts reauth."""
    coordinator = BambuFirmwareCoordinator(
        hass, init_integration, init_integration.runtime_data.cloud
    )
    cloud_versions.fail(VERSION, Failure(401))
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    await coordinator.async_shutdown()


async def test_printer_bound_later(
    hass: HomeAssistant, cloud_versions: FakeCloud, init_integration: MockConfigEntry
) -> None:
    """A newly bound printer's firmware is fetched at once, not in six hours."""
    cloud = cloud_versions
    cloud.devices = [*cloud.devices, A1MINI]
    cloud.versions = [
        *cloud.versions,
        version_entry(A1MINI["dev_id"], "01.05.00.00", ("01.06.00.00", "A1")),
    ]
    await init_integration.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    entity_id = update_entity(hass, A1MINI["dev_id"])
    await wait_for(hass, lambda: state_of(hass, entity_id) == STATE_ON)
    assert cloud.calls(VERSION) == 2
