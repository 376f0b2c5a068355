"""Firmware update of each printer: installed version vs the cloud's latest.

Read-only: the integration never installs firmware (the printer does that
from its screen or the Bambu apps), so the entity offers release notes only.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.update import (
    UpdateDeviceClass,
    UpdateEntity,
    UpdateEntityDescription,
    UpdateEntityFeature,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.hub import BambuHub
from .bambu.models import FirmwareInfo, FirmwareRelease
from .coordinator import BambuConfigEntry, BambuFirmwareCoordinator
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .printer_tracking import track_printers

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class BambuUpdateDescription(BambuPrinterEntityDescription, UpdateEntityDescription):
    """An update entity that also reads the printer's state (``views``)."""


FIRMWARE = BambuUpdateDescription(
    key="firmware",
    translation_key="firmware",
    device_class=UpdateDeviceClass.FIRMWARE,
    entity_category=EntityCategory.CONFIG,
    views=frozenset({"firmware_version"}),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One update entity per printer, fed by the entry's firmware coordinator."""
    runtime = entry.runtime_data
    if (coordinator := runtime.firmware) is None:
        return  # the releases come from the cloud
    initial = True

    def printer_entities(serial: str) -> list[UpdateEntity]:
        if not initial:
            # A printer bound later: fetch its firmware now, not in six hours.
            entry.async_create_background_task(
                hass, coordinator.async_request_refresh(), "bambu_cloud firmware"
            )
        return [BambuFirmwareUpdate(coordinator, runtime.hub, serial, FIRMWARE)]

    track_printers(entry, async_add_entities, printer_entities)
    initial = False


class BambuFirmwareUpdate(BambuPrinterEntity, UpdateEntity):
    """Installed firmware (get_version) against the newest the cloud offers."""

    entity_description: BambuUpdateDescription
    _attr_supported_features = UpdateEntityFeature.RELEASE_NOTES

    def __init__(
        self,
        coordinator: BambuFirmwareCoordinator,
        hub: BambuHub,
        serial: str,
        description: BambuUpdateDescription,
    ) -> None:
        """Attach the entity to the printer and the firmware coordinator."""
        super().__init__(hub, serial, description)
        self.coordinator = coordinator

    @property
    def _info(self) -> FirmwareInfo | None:
        data = self.coordinator.data
        return None if data is None else data.get(self.serial)

    @property
    def _latest(self) -> FirmwareRelease | None:
        info = self._info
        return None if info is None else info.latest

    @property
    def available(self) -> bool:
        """Available while the cloud lists the printer and the list is fresh."""
        return self._info is not None and self.coordinator.fresh

    @property
    def installed_version(self) -> str | None:
        """What the printer runs (its get_version reply, else the cloud's word)."""
        if (version := self.state_data.firmware_version) is not None:
            return version
        info = self._info
        return None if info is None else info.installed

    @property
    def latest_version(self) -> str | None:
        """The newest release offered; the installed one when none is offered."""
        latest = self._latest
        return latest.version if latest is not None else self.installed_version

    async def async_release_notes(self) -> str | None:
        """Release notes (markdown) of the newest release."""
        latest = self._latest
        return None if latest is None else latest.release_notes

    def snapshot(self) -> object:
        """Availability and both versions."""
        return (self.available, self.installed_version, self.latest_version)

    async def async_added_to_hass(self) -> None:
        """Follow the printer's state and the firmware polls."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_listener(self._handle_coordinator_update)
        )

    @callback
    def _handle_coordinator_update(self) -> None:
        self.write_if_changed()
