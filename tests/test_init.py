"""Entry setup and unload, devices following the bind list, token expiry."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

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
    CONF_PRIVATE_KEY,
    CONF_REGION,
    DOMAIN,
)

from .app_certs import rsa_cert
from .cloud_server import A1MINI, P1S, UID, X1C, Failure, FakeCloud


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
    assert entry.reason is not None
    assert "2048" not in entry.reason or "key_too_small" in entry.reason


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
