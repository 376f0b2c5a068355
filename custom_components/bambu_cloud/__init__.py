"""The Bambu Lab Cloud integration."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import dt as dt_util

from .bambu.auth import AccessToken, AppCertificate, CertificateError
from .bambu.cloud import BambuCloud
from .const import (
    CONF_ACCESS_TOKEN,
    CONF_CERTIFICATE_ID,
    CONF_PRIVATE_KEY,
    CONF_REGION,
    DOMAIN,
    PLATFORMS,
    TOKEN_EXPIRY_WARNING,
)
from .coordinator import BambuCloudCoordinator, BambuConfigEntry, BambuRuntimeData
from .entity import account_device_info


async def async_setup_entry(hass: HomeAssistant, entry: BambuConfigEntry) -> bool:
    """Connect to the account and set up its printers."""
    token = AccessToken.parse(entry.data[CONF_ACCESS_TOKEN])
    certificate = None
    if private_key := entry.data.get(CONF_PRIVATE_KEY):
        try:
            certificate = await hass.async_add_executor_job(
                AppCertificate.from_pem,
                entry.data.get(CONF_CERTIFICATE_ID),
                private_key,
            )
        except CertificateError as err:
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="invalid_certificate",
                translation_placeholders={"reason": err.reason},
            ) from err
    cloud = BambuCloud(
        async_get_clientsession(hass), entry.data[CONF_REGION], token.value, certificate
    )
    coordinator = BambuCloudCoordinator(hass, entry, cloud)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = BambuRuntimeData(cloud, token, coordinator)
    profile = coordinator.data.profile
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        **account_device_info(profile.uid, profile.nickname or profile.name),
    )

    @callback
    def _on_update() -> None:
        _remove_unbound_devices(hass, entry)
        _sync_token_issue(hass, entry, token)

    _on_update()
    entry.async_on_unload(coordinator.async_add_listener(_on_update))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: BambuConfigEntry) -> bool:
    """Unload the platforms of an entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: BambuConfigEntry) -> None:
    """Drop the entry's repair issues when the entry is deleted."""
    ir.async_delete_issue(hass, DOMAIN, _token_issue_id(entry))


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: BambuConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a device only once its printer is unbound."""
    printers = entry.runtime_data.coordinator.data.printers
    account = f"account_{entry.unique_id}"
    return not any(
        domain == DOMAIN and (key in printers or key == account)
        for domain, key in device.identifiers
    )


@callback
def _remove_unbound_devices(hass: HomeAssistant, entry: BambuConfigEntry) -> None:
    """Remove the devices of printers that are no longer bound."""
    coordinator = entry.runtime_data.coordinator
    if not coordinator.last_update_success:
        return
    printers = coordinator.data.printers
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        serials = {key for domain, key in device.identifiers if domain == DOMAIN}
        if serials and not any(
            key in printers or key.startswith("account_") for key in serials
        ):
            registry.async_update_device(
                device.id, remove_config_entry_id=entry.entry_id
            )


def _token_issue_id(entry: BambuConfigEntry) -> str:
    return f"token_expiring_{entry.entry_id}"


@callback
def _sync_token_issue(
    hass: HomeAssistant, entry: BambuConfigEntry, token: AccessToken
) -> None:
    """Raise a repair issue two weeks before a known token expiry."""
    issue_id = _token_issue_id(entry)
    expires = token.expires_at
    if expires is None or expires - dt_util.utcnow() > TOKEN_EXPIRY_WARNING:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="token_expiring",
        translation_placeholders={
            "title": entry.title,
            "expires": dt_util.as_local(expires).strftime("%Y-%m-%d %H:%M"),
        },
        data={"entry_id": entry.entry_id},
    )
