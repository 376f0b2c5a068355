"""Binary sensors of Bambu Lab printers: cloud presence and live state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.const import PrinterModel
from .bambu.models import BoundPrinter
from .bambu.state import PrinterState
from .coordinator import BambuCloudCoordinator, BambuConfigEntry
from .entity import (
    BambuPrinterCloudEntity,
    BambuPrinterEntity,
    BambuPrinterEntityDescription,
)
from .printer_tracking import track_printers

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class BambuCloudBinarySensorDescription(BinarySensorEntityDescription):
    """A binary sensor read from a printer's bind entry."""

    value_fn: Callable[[BoundPrinter], bool | None]


@dataclass(frozen=True, kw_only=True)
class BambuBinarySensorDescription(
    BambuPrinterEntityDescription, BinarySensorEntityDescription
):
    """A binary sensor read from the printer's live state (``views``: what it reads)."""

    value_fn: Callable[[PrinterState], bool | None]
    exists_fn: Callable[[PrinterModel], bool] = lambda _: True


CLOUD_BINARY_SENSORS: tuple[BambuCloudBinarySensorDescription, ...] = (
    BambuCloudBinarySensorDescription(
        key="online",
        translation_key="online",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        value_fn=lambda printer: printer.online,
    ),
)

PRINTER_BINARY_SENSORS: tuple[BambuBinarySensorDescription, ...] = (
    BambuBinarySensorDescription(
        key="door",
        translation_key="door",
        device_class=BinarySensorDeviceClass.DOOR,
        value_fn=lambda s: s.door_open,
        views=frozenset({"door_open"}),
        exists_fn=lambda model: model.enclosed,
    ),
    BambuBinarySensorDescription(
        key="printer_error",
        translation_key="printer_error",
        device_class=BinarySensorDeviceClass.PROBLEM,
        value_fn=lambda s: bool(s.hms) or s.print_error is not None,
        views=frozenset({"hms", "print_error"}),
    ),
    BambuBinarySensorDescription(
        key="filament_present",
        translation_key="filament_present",
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.filament_present,
        views=frozenset({"filament_present"}),
    ),
    BambuBinarySensorDescription(
        key="sd_card",
        translation_key="sd_card",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.sd_card,
        views=frozenset({"sd_card"}),
    ),
    BambuBinarySensorDescription(
        key="timelapse",
        translation_key="timelapse",
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.camera.timelapse,
        views=frozenset({"camera"}),
    ),
    BambuBinarySensorDescription(
        key="signed_commands_required",
        translation_key="signed_commands_required",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.signed_commands_required,
        views=frozenset({"signed_commands_required"}),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up binary sensors for every bound printer."""
    coordinator = entry.runtime_data.coordinator
    hub = entry.runtime_data.hub
    # A LAN-only entry has no bind list: no cloud binary sensors.
    cloud = coordinator if isinstance(coordinator, BambuCloudCoordinator) else None

    def printer_entities(serial: str) -> list[BinarySensorEntity]:
        model = hub.printers[serial].spec.model
        entities: list[BinarySensorEntity] = []
        if cloud is not None:
            entities.extend(
                BambuCloudBinarySensor(cloud, serial, description)
                for description in CLOUD_BINARY_SENSORS
            )
        entities.extend(
            BambuBinarySensor(hub, serial, description)
            for description in PRINTER_BINARY_SENSORS
            if description.exists_fn(model)
        )
        return entities

    track_printers(entry, async_add_entities, printer_entities)


class BambuCloudBinarySensor(BambuPrinterCloudEntity, BinarySensorEntity):
    """A printer binary sensor fed by the cloud bind list."""

    entity_description: BambuCloudBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        """The value from the latest bind entry."""
        if (printer := self.printer) is None:
            return None
        return self.entity_description.value_fn(printer)


class BambuBinarySensor(BambuPrinterEntity, BinarySensorEntity):
    """A printer binary sensor fed by live MQTT state."""

    entity_description: BambuBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        """The value from the printer's state."""
        return self.entity_description.value_fn(self.state_data)

    def snapshot(self) -> object:
        """Availability and value."""
        return (self.available, self.is_on)
