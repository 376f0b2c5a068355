"""Entry setup and unload, devices following the bind list, token expiry."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.repairs import issue_handler, repairs_flow_manager
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.bambu_cloud.const import (
    CONF_ACCESS_TOKEN,
    CONF_CERTIFICATE_ID,
    CONF_EXPIRES_AT,
    CONF_PRIVATE_KEY,
    CONF_REGION,
    DOMAIN,
)
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .app_certs import rsa_cert
from .cloud_server import (
    A1MINI,
    P1S,
    TOKEN,
    UID,
    X1C,
    Failure,
    FakeCloud,
    MqttEndpoint,
    bind_entry,
    running_cloud,
)
from .helpers import state_of, wait_for


def jwt(claims: dict[str, object]) -> str:
    """An unsigned JWT with the given payload (the cloud checks signatures)."""

    def part(data: dict[str, object]) -> str:
        raw = json.dumps(data).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


async def test_setup_and_unload(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """One device per bound printer, under the account device."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    account = device_registry.async_get_device(identifiers={(DOMAIN, f"account_{UID}")})
    assert account is not None
    for printer, model in ((X1C, "X1 Carbon"), (P1S, "P1S")):
        device = device_registry.async_get_device(
            identifiers={(DOMAIN, printer["dev_id"])}
        )
        assert device is not None
        assert device.manufacturer == "Bambu Lab"
        assert device.model == model
        assert device.serial_number == printer["dev_id"]
        assert device.via_device_id == account.id
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_setup_retries_when_cloud_down(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """A cloud outage at start-up retries later."""
    cloud.fail("/v1/user-service/my/profile", Failure(502))
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_setup_auth_failure_starts_reauth(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, cloud: FakeCloud
) -> None:
    """A refused token at start-up opens the reauth flow."""
    cloud.tokens.clear()
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_setup_with_certificate(hass: HomeAssistant, cloud: FakeCloud) -> None:
    """A stored certificate signs the entry's requests."""
    cert = rsa_cert()
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=UID,
        data={
            CONF_REGION: "global",
            CONF_ACCESS_TOKEN: "test-access-token",
            CONF_CERTIFICATE_ID: "my-cert-id",
            CONF_PRIVATE_KEY: cert.key_pem,
        },
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    _, _, headers, _ = cloud.requests[-1]
    assert headers["x-bbl-app-certification-id"] == "my-cert-id"


async def test_setup_with_broken_certificate(
    hass: HomeAssistant, cloud: FakeCloud
) -> None:
    """A stored certificate that no longer loads is a setup error."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=UID,
        data={
            CONF_REGION: "global",
            CONF_ACCESS_TOKEN: "test-access-token",
            CONF_PRIVATE_KEY: rsa_cert(1024).key_pem,
        },
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    # The reason has its own translation: no English text is inserted.
    assert entry.error_reason_translation_key == "invalid_certificate_key_too_small"
    assert entry.error_reason_translation_placeholders is None
    assert entry.reason is not None
    assert "2048" in entry.reason


async def test_printers_follow_bind_list(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A newly bound printer appears, an unbound one is removed."""
    cloud.devices = [X1C, A1MINI]
    freezer.tick(timedelta(minutes=6))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert cloud.calls("/v1/iot-service/api/user/bind") == 2
    assert (
        device_registry.async_get_device(identifiers={(DOMAIN, P1S["dev_id"])}) is None
    )
    assert device_registry.async_get_device(identifiers={(DOMAIN, A1MINI["dev_id"])})
    entity_id = entity_registry.async_get_entity_id(
        "binary_sensor", DOMAIN, f"{A1MINI['dev_id']}_online"
    )
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "off"
    assert not entity_registry.async_get_entity_id(
        "binary_sensor", DOMAIN, f"{P1S['dev_id']}_online"
    )


async def test_remove_config_entry_device(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Only a device whose printer is no longer bound may be deleted."""
    assert await async_setup_component(hass, "config", {})
    entry = init_integration
    stale = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "00M00STALE00000")}
    )
    client = await hass_ws_client(hass)
    for identifier, allowed in (
        (X1C["dev_id"], False),
        (f"account_{UID}", False),
        ("00M00STALE00000", True),
    ):
        device = device_registry.async_get_device(identifiers={(DOMAIN, identifier)})
        assert device is not None
        await client.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": entry.entry_id,
                "device_id": device.id,
            }
        )
        response = await client.receive_json()
        assert response["success"] is allowed
    assert device_registry.async_get(stale.id) is None


async def test_token_expiry_repair(
    hass: HomeAssistant,
    cloud: FakeCloud,
    issue_registry: ir.IssueRegistry,
    hass_client: object,
) -> None:
    """Two weeks before expiry a fixable issue leads to reauth."""
    expires = dt_util.utcnow() + timedelta(days=10)
    token = jwt({"exp": int(expires.timestamp()), "username": f"u_{UID}"})
    cloud.tokens[token] = UID
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Maker",
        unique_id=UID,
        data={CONF_REGION: "global", CONF_ACCESS_TOKEN: token},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    issue_id = f"token_expiring_{entry.entry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["title"] == "Maker"

    state = hass.states.get("sensor.maker_access_token_expires")
    assert state is not None
    assert dt_util.parse_datetime(state.state) == expires.replace(microsecond=0)

    assert await async_setup_component(hass, "repairs", {})
    await issue_handler.async_process_repairs_platforms(hass)
    flow = await _repair_flow(hass, issue_id)
    assert flow["step_id"] == "confirm"
    result = await _repair_flow(hass, issue_id, flow["flow_id"])
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]

    await hass.config_entries.async_remove(entry.entry_id)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def _repair_flow(
    hass: HomeAssistant, issue_id: str, flow_id: str | None = None
) -> dict[str, object]:
    manager = repairs_flow_manager(hass)
    assert manager is not None
    if flow_id is None:
        return await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    return await manager.async_configure(flow_id, {})


async def test_token_far_from_expiry(
    hass: HomeAssistant, cloud: FakeCloud, issue_registry: ir.IssueRegistry
) -> None:
    """No issue while the token has more than two weeks left."""
    expires = dt_util.utcnow() + timedelta(days=60)
    token = jwt({"exp": int(expires.timestamp())})
    cloud.tokens[token] = UID
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=UID,
        data={CONF_REGION: "global", CONF_ACCESS_TOKEN: token},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert not issue_registry.issues


def _config_entry_devices(
    device_registry: dr.DeviceRegistry, entry: MockConfigEntry
) -> dict[str, dr.DeviceEntry]:
    """The entry's devices by their (first) identifier."""
    return {
        next(key for domain, key in device.identifiers if domain == DOMAIN): device
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    }


def _unique_ids(
    entity_registry: er.EntityRegistry, entry: MockConfigEntry, prefix: str
) -> set[str]:
    return {
        e.unique_id
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
        if e.unique_id.startswith(prefix)
    }


@pytest.mark.parametrize(
    ("bound", "kept"),
    [
        ([X1C], {X1C["dev_id"]}),
        ([P1S], {P1S["dev_id"]}),
        ([], set()),
    ],
    ids=["p1s unbound", "x1c unbound", "all unbound"],
)
async def test_well_formed_list_removes_exactly_the_missing(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    bound: list[dict[str, object]],
    kept: set[str],
) -> None:
    """Only a printer a well-formed list no longer names loses its device."""
    entry = init_integration
    for serial in (X1C["dev_id"], P1S["dev_id"]):
        device = device_registry.async_get_device(identifiers={(DOMAIN, serial)})
        assert device is not None
        device_registry.async_update_device(device.id, name_by_user=f"Mine {serial}")
    before = _config_entry_devices(device_registry, entry)
    entities = {
        serial: _unique_ids(entity_registry, entry, serial)
        for serial in (X1C["dev_id"], P1S["dev_id"])
    }

    cloud.devices = bound
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()

    after = _config_entry_devices(device_registry, entry)
    assert set(after) == {f"account_{UID}", *kept}
    for serial in kept:
        assert after[serial] == before[serial]
        assert after[serial].name_by_user == f"Mine {serial}"
        assert _unique_ids(entity_registry, entry, serial) == entities[serial]
    for serial in {X1C["dev_id"], P1S["dev_id"]} - kept:
        assert not _unique_ids(entity_registry, entry, serial)
    assert set(entry.runtime_data.hub.printers) == kept


async def test_rebind_restores_device_and_cloud_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    cloud: FakeCloud,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A printer unbound and bound again gets its device and every entity back."""
    entry = init_integration
    coordinator = entry.runtime_data.coordinator
    serial = P1S["dev_id"]
    before = _unique_ids(entity_registry, entry, serial)
    assert len(before) > 20

    for rounds in range(2):  # the second round proves nothing was left behind
        cloud.devices = [X1C]
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert serial not in _config_entry_devices(device_registry, entry)
        assert not _unique_ids(entity_registry, entry, serial), rounds

        cloud.devices = [X1C, P1S]
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert serial in _config_entry_devices(device_registry, entry)
        assert _unique_ids(entity_registry, entry, serial) == before, rounds
        state = hass.states.get("binary_sensor.garage_p1s_online")
        assert state is not None
        assert state.state == "on"


@pytest.fixture
async def live_cloud(
    broker_endpoint: MqttEndpoint, printers: dict[str, VirtualPrinter]
) -> AsyncIterator[FakeCloud]:
    """The fake cloud with its broker up and both virtual printers attached."""
    async with running_cloud(mqtt=broker_endpoint) as fake:
        yield fake


async def test_rebind_restores_live_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    live_cloud: FakeCloud,
    broker: MqttBroker,
    entity_registry: er.EntityRegistry,
) -> None:
    """Live and AMS entities come back too, fed by a new subscription."""
    entry = mock_config_entry
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    serial = P1S["dev_id"]
    topic = f"device/{serial}/report"
    nozzle = "sensor.garage_p1s_nozzle_temperature"
    await wait_for(hass, lambda: state_of(hass, nozzle) not in (None, "unavailable"))
    await wait_for(
        hass,
        lambda: any(
            "_ams_" in uid for uid in _unique_ids(entity_registry, entry, serial)
        ),
    )
    before = _unique_ids(entity_registry, entry, serial)
    coordinator = entry.runtime_data.coordinator

    live_cloud.devices = [X1C]
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    await wait_for(hass, lambda: topic not in broker.connected_clients[0].subscriptions)
    assert not _unique_ids(entity_registry, entry, serial)

    live_cloud.devices = [X1C, P1S]
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    await broker.wait_for_client(subscribed_to=topic)
    await wait_for(hass, lambda: _unique_ids(entity_registry, entry, serial) == before)
    await wait_for(hass, lambda: state_of(hass, nozzle) not in (None, "unavailable"))
    for registered in er.async_entries_for_config_entry(
        entity_registry, entry.entry_id
    ):
        if registered.unique_id.startswith(serial) and not registered.disabled:
            assert hass.states.get(registered.entity_id) is not None


INVALID_SERIALS = ("+", "#", "00M09A35010000+", "ABCDEFGH/#", "01P00A45160000\u00e9")


async def test_invalid_serial_never_reaches_mqtt(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    live_cloud: FakeCloud,
    broker: MqttBroker,
    printers: dict[str, VirtualPrinter],
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An invalid bound serial: one warning, no device, topic or publish."""
    live_cloud.devices = [
        X1C,
        *(bind_entry(serial, "Odd", "P1S", "C12") for serial in INVALID_SERIALS),
        P1S,
    ]
    entry = mock_config_entry
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    # Both real printers were greeted, so every subscription has been made.
    await wait_for(hass, lambda: all(len(p.received) >= 2 for p in printers.values()))
    for _ in range(3):
        await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()

    valid = {X1C["dev_id"], P1S["dev_id"]}
    (client,) = broker.connected_clients
    assert set(client.subscriptions) == {f"device/{s}/report" for s in valid}
    requested = {m.topic for m in broker.messages if m.topic.endswith("/request")}
    assert {topic.split("/")[1] for topic in requested} == valid
    assert set(entry.runtime_data.hub.printers) == valid
    assert set(entry.runtime_data.coordinator.data.printers) == valid
    devices = set(_config_entry_devices(device_registry, entry))
    assert {key.split("_ams_")[0] for key in devices} == {f"account_{UID}", *valid}
    warnings = [r for r in caplog.records if "invalid serial" in r.getMessage()]
    assert len(warnings) == len(INVALID_SERIALS)


@pytest.mark.parametrize(
    ("stored", "issue"),
    [
        ((dt_util.utcnow() + timedelta(days=10)).isoformat(), True),
        # Naive timestamps are read as UTC.
        (
            (dt_util.utcnow() + timedelta(days=10)).replace(tzinfo=None).isoformat(),
            True,
        ),
        ((dt_util.utcnow() + timedelta(days=60)).isoformat(), False),
        ("not a date", False),
        (1234567890, False),
    ],
)
async def test_signed_in_token_expiry(
    hass: HomeAssistant,
    cloud: FakeCloud,
    issue_registry: ir.IssueRegistry,
    stored: object,
    issue: bool,
) -> None:
    """An opaque token's expiry comes from what sign-in stored."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Maker",
        unique_id=UID,
        data={CONF_REGION: "global", CONF_ACCESS_TOKEN: TOKEN, CONF_EXPIRES_AT: stored},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    issue_id = f"token_expiring_{entry.entry_id}"
    assert (issue_registry.async_get_issue(DOMAIN, issue_id) is not None) is issue
    token = entry.runtime_data.token
    assert token.value == TOKEN
    if isinstance(stored, str) and stored != "not a date":
        expected = dt_util.parse_datetime(stored)
        assert expected is not None
        assert token.expires_at == expected.replace(tzinfo=expected.tzinfo or UTC)
        state = hass.states.get("sensor.maker_access_token_expires")
        assert state is not None
        assert dt_util.parse_datetime(state.state) == token.expires_at.replace(
            microsecond=0
        )
    else:
        assert token.expires_at is None


async def test_jwt_expiry_wins_over_stored(
    hass: HomeAssistant, cloud: FakeCloud, issue_registry: ir.IssueRegistry
) -> None:
    """A JWT states its own expiry; a stored one does not override it."""
    expires = dt_util.utcnow() + timedelta(days=60)
    token = jwt({"exp": int(expires.timestamp())})
    cloud.tokens[token] = UID
    soon = (dt_util.utcnow() + timedelta(days=3)).isoformat()
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=UID,
        data={CONF_REGION: "global", CONF_ACCESS_TOKEN: token, CONF_EXPIRES_AT: soon},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert not issue_registry.issues
    assert entry.runtime_data.token.expires_at == expires.replace(microsecond=0)
