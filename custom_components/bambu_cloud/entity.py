"""Base entities: one device per printer, one service device per account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .bambu.commands import Command
from .bambu.hub import AVAILABILITY, BambuHub
from .bambu.models import BoundPrinter
from .bambu.state import ChangeSet, PrinterState
from .command_sender import async_send_command
from .coordinator import BambuCloudCoordinator
from .devices import (
    account_device_ref,
    account_identifier,
    printer_device_info,
    printer_device_ref,
)

# Change names that can alter any live entity (availability, signing needs).
ALWAYS_RELEVANT: Final = frozenset({AVAILABILITY, "signed_commands_required"})


class BambuAccountEntity(CoordinatorEntity[BambuCloudCoordinator]):
    """An entity of the account itself."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: BambuCloudCoordinator, description: EntityDescription
    ) -> None:
        """Attach the entity to the account device."""
        super().__init__(coordinator)
        self.entity_description = description
        uid = coordinator.data.profile.uid
        self._attr_unique_id = f"{account_identifier(uid)}_{description.key}"
        self._attr_device_info = account_device_ref(uid)


class BambuPrinterCloudEntity(CoordinatorEntity[BambuCloudCoordinator]):
    """An entity of a printer fed by the cloud bind list."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: BambuCloudCoordinator,
        serial: str,
        description: EntityDescription,
    ) -> None:
        """Attach the entity to the printer's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self.serial = serial
        self._attr_unique_id = f"{serial}_{description.key}"
        self._attr_device_info = printer_device_info(
            coordinator.data.profile.uid, coordinator.data.printers[serial]
        )

    @property
    def printer(self) -> BoundPrinter | None:
        """The printer's latest bind entry, None once unbound."""
        return self.coordinator.data.printers.get(self.serial)

    @property
    def available(self) -> bool:
        """Available while bound and the cloud data is fresh."""
        return self.coordinator.fresh and self.printer is not None


@dataclass(frozen=True, kw_only=True)
class BambuPrinterEntityDescription(EntityDescription):
    """A live entity's description: which state views it reads.

    ``views`` names the PrinterState views (``VIEW_FIELDS`` of the library)
    that what the entity shows is computed from, declared next to the
    function reading them. The hub hands the entity only change sets that
    touch one of them (or availability), so a report about the bed does not
    wake every nozzle sensor. An empty set: availability only.
    """

    views: frozenset[str]


class BambuPrinterEntity(Entity):
    """An entity fed by a printer's live MQTT state.

    It writes its state only when what it shows changed: each report computes
    the entity's snapshot (availability, value, attributes) and compares it
    with the last one written.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    # Controls sending ``print`` commands: unusable when the firmware wants
    # signed commands and no app certificate is configured.
    needs_signature = False
    # Controls sending raw G-code: a signed gcode_line also needs the G-code
    # encrypted with the printer's own key, which third parties cannot get,
    # so on such firmware only Developer Mode makes them work.
    sends_gcode = False

    entity_description: BambuPrinterEntityDescription

    def __init__(
        self, hub: BambuHub, serial: str, description: BambuPrinterEntityDescription
    ) -> None:
        """Attach the entity to the printer's device and live state."""
        self.entity_description = description
        self.hub = hub
        self.serial = serial
        self.link = hub.printers[serial]
        self._attr_unique_id = f"{serial}_{description.key}"
        self._attr_device_info = printer_device_ref(serial)
        self._written: object = None
        self._stop_listening: Callable[[], None] | None = None

    @property
    def listen_views(self) -> frozenset[str] | None:
        """Change names this entity must hear about (None: every change).

        The description's views plus availability: the hub adds the names of
        affected views to each change set, so the entity is only called for
        reports that touch what it shows.
        """
        return self.entity_description.views | ALWAYS_RELEVANT

    @property
    def state_data(self) -> PrinterState:
        """The printer's merged report."""
        return self.link.state

    @property
    def available(self) -> bool:
        """Available while a session delivers the printer's reports."""
        if not self.link.available:
            return False
        if not self.link.state.signed_commands_required:
            return True
        if self.sends_gcode:
            return False
        return not (self.needs_signature and self.hub.certificate is None)

    def snapshot(self) -> object:
        """What the entity shows; platforms override to add their value."""
        return self.available

    async def async_added_to_hass(self) -> None:
        """Follow the printer's change sets."""
        await super().async_added_to_hass()
        self._written = self.snapshot()
        self._listen()
        self.async_on_remove(self._unlisten)

    @callback
    def _listen(self) -> None:
        """Hear the printer's change sets naming ``listen_views`` (from now on).

        Called again by entities whose ``listen_views`` change.
        """
        self._unlisten()
        self._stop_listening = self.hub.listen(
            self.serial, self._handle_change, self.listen_views
        )

    @callback
    def _unlisten(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None

    async def async_send(self, command: Command) -> None:
        """Send a command; failures become translated HomeAssistantErrors."""
        await async_send_command(
            self.hass, self.hub, self.serial, self.link.spec.name, command
        )

    @callback
    def _handle_change(self, changed: ChangeSet) -> None:
        self.write_if_changed()

    @callback
    def write_if_changed(self) -> None:
        """Write the state only when what the entity shows changed."""
        current = self.snapshot()
        if current != self._written:
            self._written = current
            self.async_write_ha_state()
