"""Selects of Bambu Lab printers: print speed."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.commands import print_speed
from .bambu.enums import SpeedLevel
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .enum_states import enum_member, enum_option, enum_options
from .printer_tracking import track_printers

# Commands wait for the printer's ack: one at a time per platform.
PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class BambuSelectDescription(BambuPrinterEntityDescription, SelectEntityDescription):
    """A printer setting chosen from options (``views``: what it reads)."""


SPEED = BambuSelectDescription(
    key="print_speed",
    translation_key="print_speed",
    options=enum_options(SpeedLevel),
    views=frozenset({"speed_level"}),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the speed select of every bound printer."""
    hub = entry.runtime_data.hub
    track_printers(
        entry, async_add_entities, lambda serial: [BambuSpeedSelect(hub, serial, SPEED)]
    )


class BambuSpeedSelect(BambuPrinterEntity, SelectEntity):
    """Speed level: silent, standard, sport, ludicrous."""

    entity_description: BambuSelectDescription
    needs_signature = True

    @property
    def current_option(self) -> str | None:
        """The speed level the printer reports."""
        return enum_option(self.state_data.speed_level)

    def snapshot(self) -> object:
        """Availability and level."""
        return (self.available, self.current_option)

    async def async_select_option(self, option: str) -> None:
        """Send the level (1 silent .. 4 ludicrous)."""
        await self.async_send(print_speed(enum_member(SpeedLevel, option)))
