"""Fans of Bambu Lab printers: part cooling, aux, chamber and secondary aux.

The printer reports each fan in 15 PWM steps, which the library turns into
percent in 10 % steps, so the entities offer ten speeds. Speeds are set with
``M106`` G-code, which firmware asking for signed commands refuses from third
parties (an encrypted G-code needs the printer's own key): there the fans are
unavailable until Developer Mode is on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.fan import (
    FanEntity,
    FanEntityDescription,
    FanEntityFeature,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.commands import set_fan_speed
from .bambu.const import PrinterModel
from .bambu.enums import Fan
from .bambu.hub import BambuHub
from .bambu.state import ChangeSet, PrinterState
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .printer_tracking import track_live_entities

# Commands wait for the printer's ack: one at a time per platform.
PARALLEL_UPDATES = 1

# Speeds the printer distinguishes: its 15 steps are shown in 10 % steps.
SPEED_COUNT = 10
FULL_SPEED = 100


@dataclass(frozen=True, kw_only=True)
class BambuFanDescription(BambuPrinterEntityDescription, FanEntityDescription):
    """A fan: its ``M106`` index and the view reporting its speed (%)."""

    fan: Fan
    value_fn: Callable[[PrinterState], int | None]
    exists_fn: Callable[[PrinterModel], bool] = lambda _: True


FANS: tuple[BambuFanDescription, ...] = (
    BambuFanDescription(
        key="part_cooling_fan",
        translation_key="part_cooling_fan",
        fan=Fan.PART_COOLING,
        value_fn=lambda s: s.part_cooling_fan,
        views=frozenset({"part_cooling_fan"}),
    ),
    BambuFanDescription(
        key="aux_fan",
        translation_key="aux_fan",
        fan=Fan.AUX,
        value_fn=lambda s: s.aux_fan,
        views=frozenset({"aux_fan"}),
        exists_fn=lambda model: model.aux_fan,
    ),
    BambuFanDescription(
        key="chamber_fan",
        translation_key="chamber_fan",
        fan=Fan.CHAMBER,
        value_fn=lambda s: s.chamber_fan,
        views=frozenset({"chamber_fan"}),
        exists_fn=lambda model: model.chamber_fan,
    ),
    BambuFanDescription(
        key="secondary_aux_fan",
        translation_key="secondary_aux_fan",
        fan=Fan.SECONDARY_AUX,
        value_fn=lambda s: s.secondary_aux_fan,
        views=frozenset({"secondary_aux_fan"}),
        exists_fn=lambda model: model.secondary_aux_fan,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the fans of every bound printer its model has."""
    track_live_entities(entry, async_add_entities, BambuFan, FANS)


class BambuFan(BambuPrinterEntity, FanEntity):
    """A fan whose speed the printer reports back after each change."""

    entity_description: BambuFanDescription
    needs_signature = True
    sends_gcode = True
    _attr_speed_count = SPEED_COUNT
    _attr_supported_features = (
        FanEntityFeature.SET_SPEED
        | FanEntityFeature.TURN_ON
        | FanEntityFeature.TURN_OFF
    )

    def __init__(
        self, hub: BambuHub, serial: str, description: BambuFanDescription
    ) -> None:
        """Start with full speed as the speed to turn on at."""
        super().__init__(hub, serial, description)
        self._on_speed = FULL_SPEED

    @property
    def percentage(self) -> int | None:
        """The speed the printer reports, %."""
        return self.entity_description.value_fn(self.state_data)

    @property
    def is_on(self) -> bool | None:
        """Running; unknown while the printer has not reported the fan."""
        percentage = self.percentage
        return None if percentage is None else percentage > 0

    def snapshot(self) -> object:
        """Availability and speed."""
        return (self.available, self.percentage)

    @callback
    def _handle_change(self, changed: ChangeSet) -> None:
        """Remember the last running speed: turning on goes back to it."""
        if percentage := self.percentage:
            self._on_speed = percentage
        super()._handle_change(changed)

    async def async_set_percentage(self, percentage: int) -> None:
        """Run at a speed (0 stops); the printer's report shows it."""
        await self.async_send(
            set_fan_speed(self.entity_description.fan, max(0, min(100, percentage)))
        )

    async def async_turn_on(
        self,
        percentage: int | None = None,
        preset_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Run at the given speed, else the last running one (first: full)."""
        await self.async_set_percentage(
            self._on_speed if percentage is None else percentage
        )

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop the fan."""
        await self.async_set_percentage(0)
