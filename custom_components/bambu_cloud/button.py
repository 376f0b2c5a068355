"""Buttons of Bambu Lab printers: pause, resume, stop, refresh."""

from __future__ import annotations

import time
from dataclasses import dataclass

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.commands import print_action
from .bambu.enums import JobState
from .const import DOMAIN, LOGGER
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .printer_tracking import track_printers

# Commands wait for the printer's ack: one at a time per platform.
PARALLEL_UPDATES = 1

# A manual refresh asks for a full report at most this often (seconds).
REFRESH_SPACING = 10.0


@dataclass(frozen=True, kw_only=True)
class BambuPrintButtonDescription(
    BambuPrinterEntityDescription, ButtonEntityDescription
):
    """A ``print`` action allowed in some job states only (``gcode_state``)."""

    action: str
    gcode_states: frozenset[JobState]
    views: frozenset[str] = frozenset({"gcode_state"})


@dataclass(frozen=True, kw_only=True)
class BambuButtonDescription(BambuPrinterEntityDescription, ButtonEntityDescription):
    """A button that shows nothing of the printer's state but availability."""

    views: frozenset[str] = frozenset()


PRINT_BUTTONS: tuple[BambuPrintButtonDescription, ...] = (
    BambuPrintButtonDescription(
        key="pause",
        translation_key="pause",
        action="pause",
        gcode_states=frozenset({JobState.RUNNING, JobState.PREPARE}),
    ),
    BambuPrintButtonDescription(
        key="resume",
        translation_key="resume",
        action="resume",
        gcode_states=frozenset({JobState.PAUSE}),
    ),
    BambuPrintButtonDescription(
        key="stop",
        translation_key="stop",
        action="stop",
        gcode_states=frozenset({JobState.RUNNING, JobState.PAUSE, JobState.PREPARE}),
    ),
)

REFRESH_BUTTON = BambuButtonDescription(
    key="refresh",
    translation_key="refresh",
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the buttons of every bound printer."""
    hub = entry.runtime_data.hub

    def printer_entities(serial: str) -> list[ButtonEntity]:
        entities: list[ButtonEntity] = [
            BambuPrintButton(hub, serial, description) for description in PRINT_BUTTONS
        ]
        entities.append(BambuRefreshButton(hub, serial, REFRESH_BUTTON))
        return entities

    track_printers(entry, async_add_entities, printer_entities)


class BambuPrintButton(BambuPrinterEntity, ButtonEntity):
    """Pause, resume or stop the job; available only where that makes sense."""

    entity_description: BambuPrintButtonDescription
    needs_signature = True

    @property
    def available(self) -> bool:
        """Available in the job states the action applies to."""
        return (
            super().available
            and self.state_data.gcode_state in self.entity_description.gcode_states
        )

    async def async_press(self) -> None:
        """Send the action; the printer's report shows the new job state."""
        await self.async_send(print_action(self.entity_description.action))


class BambuRefreshButton(BambuPrinterEntity, ButtonEntity):
    """Ask the printer for a full report (rate limited)."""

    entity_description: BambuButtonDescription

    _last_press = float("-inf")

    async def async_press(self) -> None:
        """Send pushall unless one was requested in the last ten seconds."""
        now = time.monotonic()
        if now - self._last_press < REFRESH_SPACING:
            LOGGER.debug("%s: refresh pressed again too soon, ignored", self.serial)
            return
        if not self.hub.request_full_report(self.serial, force=True):
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="printer_not_connected"
            )
        self._last_press = now
