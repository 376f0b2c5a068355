"""Binary sensors of Bambu Lab printers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.models import BoundPrinter
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterCloudEntity, track_printers

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class BambuCloudBinarySensorDescription(BinarySensorEntityDescription):
    """A binary sensor read from a printer's bind entry."""

    value_fn: Callable[[BoundPrinter], bool | None]


CLOUD_BINARY_SENSORS: tuple[BambuCloudBinarySensorDescription, ...] = (
    BambuCloudBinarySensorDescription(
        key="online",
        translation_key="online",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        value_fn=lambda printer: printer.online,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up binary sensors for every bound printer."""
    coordinator = entry.runtime_data.coordinator
    track_printers(
        entry,
        async_add_entities,
        lambda serial: (
            BambuCloudBinarySensor(coordinator, serial, description)
            for description in CLOUD_BINARY_SENSORS
        ),
    )


class BambuCloudBinarySensor(BambuPrinterCloudEntity, BinarySensorEntity):
    """A printer binary sensor fed by the cloud bind list."""

    entity_description: BambuCloudBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        """The value from the latest bind entry."""
        if (printer := self.printer) is None:
            return None
        return self.entity_description.value_fn(printer)
