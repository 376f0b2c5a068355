"""Base entities: one device per printer, one service device per account."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from types import CodeType, FunctionType
from typing import Protocol

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .bambu.commands import Command
from .bambu.const import PrinterModel, lookup_model
from .bambu.hub import (
    AVAILABILITY,
    BambuHub,
    CommandError,
    CommandTimeoutError,
    NotConnectedError,
)
from .bambu.models import BoundPrinter
from .bambu.state import VIEW_FIELDS, ChangeSet, PrinterState
from .const import DOMAIN
from .coordinator import BambuCloudCoordinator, BambuConfigEntry
from .issues import sync_signature_issue

MANUFACTURER = "Bambu Lab"


def account_device_info(uid: str, name: str | None) -> DeviceInfo:
    """The account as a service device that printers hang off."""
    return DeviceInfo(
        identifiers={(DOMAIN, f"account_{uid}")},
        manufacturer=MANUFACTURER,
        name=name or "Bambu Lab account",
        entry_type=DeviceEntryType.SERVICE,
    )


def printer_device_info(uid: str, printer: BoundPrinter) -> DeviceInfo:
    """The device of one bound printer."""
    model = lookup_model(
        product_name=printer.product_name,
        model_id=printer.model_id,
        serial=printer.serial,
    )
    return DeviceInfo(
        identifiers={(DOMAIN, printer.serial)},
        manufacturer=MANUFACTURER,
        model=model.name if model.model_ids else printer.product_name,
        model_id=printer.model_id,
        name=printer.name,
        serial_number=printer.serial,
        via_device=(DOMAIN, f"account_{uid}"),
    )


class BambuAccountEntity(CoordinatorEntity[BambuCloudCoordinator]):
    """An entity of the account itself."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: BambuCloudCoordinator, description: EntityDescription
    ) -> None:
        """Attach the entity to the account device."""
        super().__init__(coordinator)
        self.entity_description = description
        profile = coordinator.data.profile
        self._attr_unique_id = f"account_{profile.uid}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"account_{profile.uid}")}
        )


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


class ModelBoundDescription(Protocol):
    """A description that exists only on some printer models."""

    @property
    def exists_fn(self) -> Callable[[PrinterModel], bool]:
        """Whether a model has what the entity shows."""


def track_live_entities[D: ModelBoundDescription](
    entry: BambuConfigEntry,
    add_entities: AddConfigEntryEntitiesCallback,
    entity_class: Callable[[BambuHub, str, D], Entity],
    descriptions: Iterable[D],
) -> None:
    """Add one live entity per description the printer's model supports."""
    hub = entry.runtime_data.hub
    chosen = tuple(descriptions)

    def make(serial: str) -> list[Entity]:
        model = hub.printers[serial].spec.model
        return [
            entity_class(hub, serial, description)
            for description in chosen
            if description.exists_fn(model)
        ]

    track_printers(entry, add_entities, make)


def track_printers(
    entry: BambuConfigEntry,
    add_entities: AddConfigEntryEntitiesCallback,
    make_entities: Callable[[str], Iterable[Entity]],
) -> None:
    """Add a printer's entities now and whenever a printer is bound later.

    A printer that leaves the bind list loses its device, and its entities go
    with it; forgetting it here lets a printer bound again get them all back.
    A failed poll keeps the coordinator's last good list, so it changes nothing.
    """
    coordinator = entry.runtime_data.coordinator
    known: set[str] = set()

    @callback
    def _add_new() -> None:
        known.intersection_update(coordinator.data.printers)
        new = coordinator.data.printers.keys() - known
        if not new:
            return
        known.update(new)
        add_entities(
            entity for serial in sorted(new) for entity in make_entities(serial)
        )

    _add_new()
    entry.async_on_unload(coordinator.async_add_listener(_add_new))


async def async_send_command(
    hass: HomeAssistant, hub: BambuHub, serial: str, name: str, command: Command
) -> None:
    """Send a command and wait for its ack; failures become translated errors.

    A signature refusal also raises the printer's signing repair issue.
    """
    try:
        await hub.async_command(serial, command)
    except NotConnectedError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="printer_not_connected"
        ) from err
    except CommandTimeoutError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="command_timeout"
        ) from err
    except CommandError as err:
        if err.signature_rejected:
            sync_signature_issue(hass, serial, name or serial, required=True)
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="signature_required"
            ) from err
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="command_failed",
            translation_placeholders={
                "reason": err.reason or "unknown",
                "code": str(err.err_code),
            },
        ) from err


# Change names that can alter any live entity (availability, signing needs).
ALWAYS_RELEVANT = frozenset({AVAILABILITY, "signed_commands_required"})


def views_read_by(*functions: object) -> frozenset[str] | None:
    """The PrinterState views some functions read, found in their code.

    Descriptions read the state through lambdas and small helpers of this
    package; the attribute names in their code (and in the helpers they
    reference) tell which views they need, so an entity can skip reports
    that touched none of them. None when nothing could be derived.
    """
    names: set[str] = set()
    seen: set[CodeType] = set()

    def visit(obj: object) -> None:
        code = getattr(obj, "__code__", None)
        if not isinstance(code, CodeType) or not isinstance(obj, FunctionType):
            return
        visit_code(code, obj)
        for cell in obj.__closure__ or ():
            with contextlib.suppress(ValueError):
                visit(cell.cell_contents)

    def visit_code(code: CodeType, function: FunctionType) -> None:
        if code in seen:
            return
        seen.add(code)
        names.update(code.co_names)
        for const in code.co_consts:
            if isinstance(const, CodeType):
                visit_code(const, function)
        for name in code.co_names:
            target = function.__globals__.get(name)
            if isinstance(target, FunctionType) and target.__module__.startswith(
                __package__ or ""
            ):
                visit(target)

    for function in functions:
        visit(function)
    views = frozenset(names) & VIEW_FIELDS.keys()
    return views or None


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
    # PrinterState views the entity shows; None means "recompute on every
    # report". Derived from the description's functions when not set.
    views: frozenset[str] | None = None

    def __init__(
        self, hub: BambuHub, serial: str, description: EntityDescription
    ) -> None:
        """Attach the entity to the printer's device and live state."""
        self.entity_description = description
        self.hub = hub
        self.serial = serial
        self.link = hub.printers[serial]
        self._attr_unique_id = f"{serial}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, serial)})
        self._written: object = None
        if self.views is None:
            self.views = views_read_by(
                getattr(description, "value_fn", None),
                getattr(description, "attrs_fn", None),
            )
        if self.views is not None:
            self.views = self.views | ALWAYS_RELEVANT

    @property
    def listen_views(self) -> frozenset[str] | None:
        """Change names this entity must hear about (None: every change).

        The hub adds the names of affected views to each change set, so the
        entity is only called for reports that touch what it shows.
        """
        return self.views

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
        self.async_on_remove(
            self.hub.listen(self.serial, self._handle_change, self.listen_views)
        )

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
