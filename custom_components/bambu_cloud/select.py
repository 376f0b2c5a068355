"""Selects of Bambu Lab printers: print speed, air duct mode, buzzer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .bambu.commands import buzzer, print_speed, set_air_duct
from .bambu.const import PrinterModel
from .bambu.enums import AirDuctMode, BuzzerMode, SpeedLevel
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .enum_states import enum_member, enum_option, enum_options
from .printer_tracking import track_live_entities, track_printers

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
    track_live_entities(entry, async_add_entities, BambuAirDuctSelect, (AIR_DUCT,))
    track_live_entities(entry, async_add_entities, BambuBuzzerSelect, (BUZZER,))


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


@dataclass(frozen=True, kw_only=True)
class BambuModelSelectDescription(BambuSelectDescription):
    """A select only some printer models have."""

    exists_fn: Callable[[PrinterModel], bool]


# Laser mode (AirDuctMode.LASER) belongs to the laser module, which no model
# of the table carries: cooling and heating are the duct's modes.
AIR_DUCT_MODES = (AirDuctMode.COOLING, AirDuctMode.HEATING)

AIR_DUCT = BambuModelSelectDescription(
    key="air_duct_mode",
    translation_key="air_duct_mode",
    options=[mode.name.lower() for mode in AIR_DUCT_MODES],
    views=frozenset({"air_duct_mode"}),
    exists_fn=lambda model: model.air_duct,
)

BUZZER = BambuModelSelectDescription(
    key="buzzer",
    translation_key="buzzer",
    options=enum_options(BuzzerMode),
    # A setting of the printer, like its prompt sound switch.
    entity_category=EntityCategory.CONFIG,
    views=frozenset(),
    exists_fn=lambda model: model.buzzer,
)


class BambuAirDuctSelect(BambuPrinterEntity, SelectEntity):
    """Air duct mode: cooling (fresh air) or heating (chamber air kept in)."""

    entity_description: BambuModelSelectDescription
    needs_signature = True

    @property
    def current_option(self) -> str | None:
        """The mode the printer reports; None for a mode not offered."""
        option = enum_option(self.state_data.air_duct_mode)
        return option if option in self.options else None

    def snapshot(self) -> object:
        """Availability and mode."""
        return (self.available, self.current_option)

    async def async_select_option(self, option: str) -> None:
        """Switch the duct; the printer's report shows the new mode."""
        await self.async_send(set_air_duct(enum_member(AirDuctMode, option)))


class BambuBuzzerSelect(BambuPrinterEntity, SelectEntity, RestoreEntity):
    """Buzzer mode of the H2 series: silent, alarm or beep.

    The printer acknowledges ``buzzer_ctrl`` but its report carries no buzzer
    state, so the select shows the last mode sent from here (kept across
    restarts); a mode set on the printer's screen is not seen.
    """

    entity_description: BambuModelSelectDescription
    needs_signature = True
    _attr_current_option: str | None = None

    async def async_added_to_hass(self) -> None:
        """Show the mode sent last before the restart."""
        last = await self.async_get_last_state()
        if last is not None and last.state in self.options:
            self._attr_current_option = last.state
        await super().async_added_to_hass()

    def snapshot(self) -> object:
        """Availability and the mode sent last."""
        return (self.available, self.current_option)

    async def async_select_option(self, option: str) -> None:
        """Send the mode; once the printer acknowledged it, show it."""
        await self.async_send(buzzer(enum_member(BuzzerMode, option)))
        self._attr_current_option = option
        self.write_if_changed()
