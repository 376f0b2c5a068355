"""The Bambu Lab Cloud integration."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC
from functools import partial
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util

from .bambu import const as bambu_const
from .bambu.auth import AccessToken, AppCertificate, CertificateError
from .bambu.cloud import BambuCloud
from .bambu.hub import BambuHub, CloudSpec, PrinterSpec
from .bambu.models import BoundPrinter
from .bambu.state import ChangeSet
from .const import (
    CONF_ACCESS_CODE,
    CONF_ACCESS_TOKEN,
    CONF_CA_BUNDLE,
    CONF_CERTIFICATE_ID,
    CONF_EXPIRES_AT,
    CONF_HOST,
    CONF_LAN,
    CONF_PRINTERS,
    CONF_PRIVATE_KEY,
    CONF_REGION,
    CONF_SERIAL,
    DOMAIN,
    LAN_FIXED,
    LAN_OFF,
    PLATFORMS,
)
from .coordinator import (
    BambuCloudCoordinator,
    BambuConfigEntry,
    BambuFirmwareCoordinator,
    BambuLanCoordinator,
    BambuRuntimeData,
    async_remove_printer_list,
)
from .devices import (
    AccountId,
    PrinterId,
    account_device_info,
    device_ids,
    owning_serial,
    printer_device_info,
    printer_identifier,
)
from .discovery import (
    async_follow_addresses,
    async_start_discovery,
    async_stop_discovery,
    signal_lan_hosts,
)
from .error_reasons import certificate_error_key
from .hms_text import async_remove_stored_texts
from .issues import (
    async_delete_entry_issues,
    problem_handler,
    sync_signature_issue,
    sync_token_issue,
)
from .job_files import async_setup_job_files
from .library import entry_library_config, library_config
from .services import async_setup_services
from .trust import PrinterTrust, async_cloud_context, async_remove_trust

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

# What the printer's device shows, and what the printer follower reads: a
# printer's other reports (temperatures, progress) need not wake it.
DEVICE_VIEWS = frozenset({"firmware_version", "product_name"})
FOLLOWED_VIEWS = DEVICE_VIEWS | {"signed_commands_required"}


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions (once, for every entry)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: BambuConfigEntry) -> bool:
    """Connect to the account and set up its printers."""
    # Printers on the network are heard while any entry is loaded; the stop
    # also runs when this set-up fails.
    await async_start_discovery(hass)
    entry.async_on_unload(partial(async_stop_discovery, hass))
    certificate = await _async_certificate(hass, entry)
    if CONF_SERIAL in entry.data:
        return await _async_setup_lan_entry(hass, entry, certificate)
    token = entry_token(entry.data)
    config = library_config(entry.data[CONF_REGION])
    cloud = BambuCloud(async_get_clientsession(hass), config, token.value, certificate)
    coordinator = BambuCloudCoordinator(hass, entry, cloud)
    # With the cloud down, the last good printer list (LAN links come up).
    await coordinator.async_first_refresh()
    profile = coordinator.data.profile

    trust = PrinterTrust(
        hass, entry.entry_id, config, entry.options.get(CONF_CA_BUNDLE)
    )
    hub = BambuHub(
        hass.loop,
        CloudSpec(
            uid=profile.uid,
            token=token.value,
            ssl_context=await async_cloud_context(hass, config.endpoints),
        ),
        config=config,
        printer_context=trust.context_for,
        on_problem=problem_handler(hass, entry),
        certificate=certificate,
    )
    # A failed firmware poll does not stop the setup: it is retried later.
    firmware = BambuFirmwareCoordinator(hass, entry, cloud)
    await firmware.async_refresh()
    entry.runtime_data = BambuRuntimeData(
        cloud, token, coordinator, firmware, hub, trust
    )
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        **account_device_info(profile.uid, profile.nickname or profile.name),
    )

    followed: set[str] = set()

    @callback
    def _apply_printers() -> None:
        """Bind list, options and learnt addresses to the hub's links.

        Also when a printer's address changed while the cloud is down: the
        list is then the last good one.
        """
        hub.set_printers(
            printer_specs(
                coordinator.data.printers,
                entry.options,
                entry.runtime_data.learned_hosts,
            )
        )

    @callback
    def _on_update(*, starting: bool = False) -> None:
        # Starting from the stored list, the links and devices come from it;
        # a failed poll changes nothing and only a good one removes devices.
        if coordinator.last_update_success or starting:
            _apply_printers()
            if coordinator.last_update_success:
                _remove_unbound_devices(hass, entry)
            followed.intersection_update(hub.printers)
            registry = dr.async_get(hass)
            for serial in hub.printers.keys() - followed:
                followed.add(serial)
                registry.async_get_or_create(
                    config_entry_id=entry.entry_id,
                    **printer_device_info(
                        profile.uid, coordinator.data.printers[serial]
                    ),
                )
                hub.listen(serial, _printer_follower(hass, hub, serial), FOLLOWED_VIEWS)
        sync_token_issue(hass, entry, token)

    # Registered before the platforms' listeners: links exist before entities.
    _on_update(starting=True)
    entry.async_on_unload(coordinator.async_add_listener(_on_update))
    entry.async_on_unload(
        async_dispatcher_connect(
            hass, signal_lan_hosts(entry.entry_id), _apply_printers
        )
    )
    async_follow_addresses(hass, entry)
    await hub.start()
    entry.async_on_unload(hub.stop)
    entry.runtime_data.job_files = async_setup_job_files(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_certificate(
    hass: HomeAssistant, entry: BambuConfigEntry
) -> AppCertificate | None:
    """The entry's app certificate, if it has one."""
    if not (private_key := entry.data.get(CONF_PRIVATE_KEY)):
        return None
    try:
        return await hass.async_add_executor_job(
            AppCertificate.from_pem, entry.data.get(CONF_CERTIFICATE_ID), private_key
        )
    except CertificateError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key=certificate_error_key(err.reason),
        ) from err


async def _async_setup_lan_entry(
    hass: HomeAssistant, entry: BambuConfigEntry, certificate: AppCertificate | None
) -> bool:
    """Set up a printer added without an account: its only link is LAN.

    The printer is served like an account's printer (same hub, device,
    entities, camera and controls); its model comes from the serial prefix
    until the printer's get_version answer names it.
    """
    config = entry_library_config(entry.data)
    serial: str = entry.data[CONF_SERIAL]
    printer = BoundPrinter(
        serial=serial,
        name=entry.title,
        online=True,
        access_code=entry.data[CONF_ACCESS_CODE],
    )
    coordinator = BambuLanCoordinator(hass, entry, printer)
    trust = PrinterTrust(
        hass, entry.entry_id, config, entry.options.get(CONF_CA_BUNDLE)
    )
    hub = BambuHub(
        hass.loop,
        None,
        config=config,
        printer_context=trust.context_for,
        on_problem=problem_handler(hass, entry),
        certificate=certificate,
    )
    entry.runtime_data = BambuRuntimeData(None, None, coordinator, None, hub, trust)
    hub.set_printers(
        {
            serial: PrinterSpec(
                serial=serial,
                model=bambu_const.lookup_model(serial=serial),
                name=printer.name,
                access_code=printer.access_code,
                lan_host=entry.data[CONF_HOST],
            )
        }
    )
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **printer_device_info(None, printer)
    )
    entry.async_on_unload(
        hub.listen(serial, _printer_follower(hass, hub, serial), FOLLOWED_VIEWS)
    )
    await hub.start()
    entry.async_on_unload(hub.stop)
    entry.runtime_data.job_files = async_setup_job_files(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: BambuConfigEntry) -> bool:
    """Unload the platforms of an entry (the hub stops with the entry)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: BambuConfigEntry) -> None:
    """Drop the entry's repair issues, trust anchors and printer list with it.

    With the last entry, the downloaded HMS texts go too.
    """
    async_delete_entry_issues(hass, entry)
    await async_remove_trust(hass, entry.entry_id)
    await async_remove_printer_list(hass, entry.entry_id)
    if not any(
        other.entry_id != entry.entry_id
        for other in hass.config_entries.async_entries(DOMAIN)
    ):
        await async_remove_stored_texts(hass)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: BambuConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a device only once its printer is unbound."""
    printers = entry.runtime_data.coordinator.data.printers
    return not any(
        isinstance(found, AccountId)
        or (isinstance(found, PrinterId) and found.serial in printers)
        for found in device_ids(device)
    )


def _printer_follower(
    hass: HomeAssistant, hub: BambuHub, serial: str
) -> Callable[[ChangeSet], None]:
    """Keep the device (firmware, model) and the signing issue current."""
    signature_issue = False

    @callback
    def follow(changed: ChangeSet) -> None:
        nonlocal signature_issue
        link = hub.printers.get(serial)
        if link is None:
            return
        state = link.state
        if not changed.isdisjoint(DEVICE_VIEWS):
            registry = dr.async_get(hass)
            if device := registry.async_get_device(
                identifiers={(DOMAIN, printer_identifier(serial))}
            ):
                model = bambu_const.lookup_model(product_name=state.product_name)
                registry.async_update_device(
                    device.id,
                    sw_version=state.firmware_version,
                    model=model.name if model.model_ids else device.model,
                )
        required = bool(state.signed_commands_required) and hub.certificate is None
        if required != signature_issue:
            signature_issue = required
            sync_signature_issue(
                hass, serial, link.spec.name or serial, required=required
            )

    return follow


def entry_token(data: Mapping[str, Any]) -> AccessToken:
    """The entry's token, with the expiry sign-in recorded for opaque tokens.

    A JWT states its own expiry; an opaque token's is known only from the
    login answer's ``expiresIn``, stored by the config flow.
    """
    token = AccessToken.parse(data[CONF_ACCESS_TOKEN])
    if token.expires_at is not None:
        return token
    stored = data.get(CONF_EXPIRES_AT)
    expires_at = dt_util.parse_datetime(stored) if isinstance(stored, str) else None
    if expires_at is None:
        return token
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return dataclasses.replace(token, expires_at=expires_at)


def lan_host(settings: Mapping[str, Any], learned: str | None = None) -> str | None:
    """A printer's LAN host from its options: fixed, off, or the learnt one.

    Options of earlier versions hold just a host: that is a fixed one.
    """
    mode = settings.get(CONF_LAN)
    host = settings.get(CONF_HOST)
    if mode == LAN_FIXED or (mode is None and host):
        return str(host) if host else None
    if mode == LAN_OFF:
        return None
    return learned


def printer_specs(
    printers: Mapping[str, BoundPrinter],
    options: Mapping[str, Any],
    learned: Mapping[str, str] | None = None,
) -> dict[str, PrinterSpec]:
    """What the hub needs per printer: model, access code, LAN host."""
    settings = options.get(CONF_PRINTERS, {})
    learned = learned or {}
    return {
        serial: PrinterSpec(
            serial=serial,
            model=bambu_const.lookup_model(
                product_name=printer.product_name,
                model_id=printer.model_id,
                serial=serial,
            ),
            name=printer.name,
            access_code=printer.access_code,
            lan_host=lan_host(settings.get(serial, {}), learned.get(serial)),
        )
        for serial, printer in printers.items()
    }


@callback
def _remove_unbound_devices(hass: HomeAssistant, entry: BambuConfigEntry) -> None:
    """Remove the devices of printers that are no longer bound."""
    printers = entry.runtime_data.coordinator.data.printers
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        found = device_ids(device)
        if found and not any(
            (serial := owning_serial(device_id)) is None or serial in printers
            for device_id in found
        ):
            registry.async_update_device(
                device.id, remove_config_entry_id=entry.entry_id
            )
