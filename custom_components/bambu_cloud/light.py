"""Lights of Bambu Lab printers: chamber lights and the X1 work light."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.light import LightEntity, LightEntityDescription
from homeassistant.components.light.const import ColorMode
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.commands import ledctrl
from .bambu.const import PrinterModel
from .bambu.hub import BambuHub
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .printer_tracking import track_live_entities

# Commands wait for the printer's ack: one at a time per platform.
PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class BambuLightDescription(BambuPrinterEntityDescription, LightEntityDescription):
    """A light switched with ``system.ledctrl`` on one LED node.

    Its state is the node's entry of the ``lights`` view.
    """

    node: str
    exists_fn: Callable[[PrinterModel], bool] = lambda _: True
    views: frozenset[str] = frozenset({"lights"})


LIGHTS: tuple[BambuLightDescription, ...] = (
    BambuLightDescription(
        key="chamber_light",
        translation_key="chamber_light",
        node="chamber_light",
    ),
    BambuLightDescription(
        key="chamber_light2",
        translation_key="chamber_light2",
        node="chamber_light2",
        exists_fn=lambda model: model.second_chamber_light,
    ),
    BambuLightDescription(
        key="work_light",
        translation_key="work_light",
        node="work_light",
        exists_fn=lambda model: model.work_light,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the lights of every bound printer."""
    track_live_entities(entry, async_add_entities, BambuLight, LIGHTS)


class BambuLight(BambuPrinterEntity, LightEntity):
    """A printer light; ``system`` commands work without signing."""

    entity_description: BambuLightDescription
    _attr_color_mode = ColorMode.ONOFF

    def __init__(
        self, hub: BambuHub, serial: str, description: BambuLightDescription
    ) -> None:
        """On/off only: the LEDs have no brightness."""
        super().__init__(hub, serial, description)
        self._attr_supported_color_modes = {ColorMode.ONOFF}

    @property
    def is_on(self) -> bool | None:
        """Whether the printer reports the light on (flashing counts as off)."""
        mode = self.state_data.lights.get(self.entity_description.node)
        return None if mode is None else mode == "on"

    def snapshot(self) -> object:
        """Availability and on/off."""
        return (self.available, self.is_on)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Switch the light on; the printer's report updates the state."""
        await self.async_send(ledctrl(self.entity_description.node, on=True))

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Switch the light off; the printer's report updates the state."""
        await self.async_send(ledctrl(self.entity_description.node, on=False))
