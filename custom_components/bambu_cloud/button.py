"""Buttons of Bambu Lab printers: pause, resume, stop, refresh; AMS controls.

Each AMS unit gets, on its own device, a load and an RFID re-read button per
slot and an unload button; units with a heater (AMS 2 Pro, AMS HT) also get
start and stop drying. A one-press start dries with the spools' own
recommendation (the lowest temperature and longest time of the loaded
spools, 55 °C for 8 hours without any), the action takes explicit settings.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .ams_control import (
    load_command,
    start_drying_command,
    stop_drying_command,
    unload_command,
)
from .ams_tracking import ams_device, ams_unit, track_ams_units
from .bambu import commands
from .bambu.commands import AMS_HT_UNIT_IDS, SLOTS_PER_AMS, Command, print_action
from .bambu.enums import JobState
from .bambu.hub import BambuHub
from .bambu.state import AmsUnit, PrinterState, Tray
from .const import DOMAIN, LOGGER
from .coordinator import BambuConfigEntry
from .devices import ams_identifier
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .job_files import job_active
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
        track_ams_units(
            entry,
            hub,
            serial,
            async_add_entities,
            lambda unit: _ams_buttons(hub, serial, unit),
        )
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


def _idle(state: PrinterState) -> bool:
    """No job under way: filament may move."""
    return not job_active(state)


def _feeding(state: PrinterState, unit: AmsUnit) -> bool:
    """Whether the unit feeds the printer (``tray_now``: the active nozzle's).

    Not each nozzle's tray: that is read from the packed nozzle state, which
    changes with every temperature report.
    """
    active = state.active_tray_id
    return any(tray.global_id == active for tray in unit.trays)


def _drying(unit: AmsUnit) -> bool:
    state = unit.drying.state
    return bool(unit.drying_minutes_left) or (state is not None and state.active)


@dataclass(frozen=True, kw_only=True)
class BambuAmsButtonDescription(BambuPrinterEntityDescription, ButtonEntityDescription):
    """A control of an AMS unit, or of each of its slots (``per_slot``).

    ``available_fn`` gets the printer's state, the unit and the slot's tray
    (None for unit controls); ``command_fn`` builds the command (slot 0 for
    unit controls) or raises a translated error.
    """

    available_fn: Callable[[PrinterState, AmsUnit, Tray | None], bool]
    command_fn: Callable[[PrinterState, AmsUnit, int], Command]
    exists_fn: Callable[[AmsUnit], bool] = lambda _: True
    per_slot: bool = False


AMS_BUTTONS: tuple[BambuAmsButtonDescription, ...] = (
    BambuAmsButtonDescription(
        key="load",
        translation_key="load_filament",
        per_slot=True,
        available_fn=lambda s, _, tray: (
            _idle(s) and tray is not None and not tray.empty
        ),
        command_fn=load_command,
        views=frozenset({"ams_units", "gcode_state"}),
    ),
    BambuAmsButtonDescription(
        key="read_rfid",
        translation_key="read_rfid",
        per_slot=True,
        entity_category=EntityCategory.CONFIG,
        available_fn=lambda s, _, tray: _idle(s) and tray is not None,
        command_fn=lambda _, unit, slot: commands.ams_read_rfid(
            ams_id=unit.id, slot=slot
        ),
        views=frozenset({"ams_units", "gcode_state"}),
    ),
    BambuAmsButtonDescription(
        key="unload",
        translation_key="unload_filament",
        available_fn=lambda s, unit, _: _idle(s) and _feeding(s, unit),
        command_fn=lambda s, unit, _: unload_command(s, unit),
        views=frozenset({"ams_units", "gcode_state", "active_tray_id"}),
    ),
    BambuAmsButtonDescription(
        key="start_drying",
        translation_key="start_drying",
        exists_fn=lambda unit: unit.can_dry,
        available_fn=lambda s, unit, _: bool(s.remote_drying) and not _drying(unit),
        command_fn=lambda s, unit, _: start_drying_command(s, unit),
        views=frozenset({"ams_units", "remote_drying"}),
    ),
    BambuAmsButtonDescription(
        key="stop_drying",
        translation_key="stop_drying",
        exists_fn=lambda unit: unit.can_dry,
        available_fn=lambda s, unit, _: bool(s.remote_drying) and _drying(unit),
        command_fn=lambda s, unit, _: stop_drying_command(s, unit),
        views=frozenset({"ams_units", "remote_drying"}),
    ),
)


def _ams_buttons(hub: BambuHub, serial: str, unit: AmsUnit) -> list[ButtonEntity]:
    """The unit's buttons: per slot (4, the AMS HT's one) and per unit."""
    slots = range(1) if unit.id in AMS_HT_UNIT_IDS else range(SLOTS_PER_AMS)
    entities: list[ButtonEntity] = []
    for description in AMS_BUTTONS:
        if not description.exists_fn(unit):
            continue
        if description.per_slot:
            entities.extend(
                BambuAmsButton(hub, serial, unit.id, description, slot)
                for slot in slots
            )
        else:
            entities.append(BambuAmsButton(hub, serial, unit.id, description))
    return entities


class BambuAmsButton(BambuPrinterEntity, ButtonEntity):
    """A control of an AMS unit or slot, on the unit's device."""

    entity_description: BambuAmsButtonDescription
    needs_signature = True

    def __init__(
        self,
        hub: BambuHub,
        serial: str,
        unit_id: int,
        description: BambuAmsButtonDescription,
        slot: int | None = None,
    ) -> None:
        """Attach to the AMS device; a slot's button names its slot (1-based)."""
        prefix = ams_identifier(serial, unit_id)
        if slot is not None:
            description = dataclasses.replace(
                description,
                translation_placeholders={"slot": str(commands.slot_number(slot))},
            )
        super().__init__(hub, serial, description)
        self.unit_id = unit_id
        self.slot = slot
        self._attr_unique_id = (
            f"{prefix}_{description.key}"
            if slot is None
            else f"{prefix}_tray_{slot}_{description.key}"
        )
        self._attr_device_info = ams_device(hub, serial, unit_id)

    @property
    def _unit(self) -> AmsUnit | None:
        return ams_unit(self.state_data, self.unit_id)

    @property
    def available(self) -> bool:
        """Available while the unit is reported and the action makes sense."""
        if not super().available or (unit := self._unit) is None:
            return False
        tray = None
        if self.slot is not None:
            tray = next((t for t in unit.trays if t.id == self.slot), None)
        return self.entity_description.available_fn(self.state_data, unit, tray)

    async def async_press(self) -> None:
        """Send the command; the printer's report shows what follows."""
        unit = self._unit
        if unit is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="ams_unit_not_found",
                translation_placeholders={"ams": str(self.unit_id)},
            )
        command = self.entity_description.command_fn(
            self.state_data, unit, self.slot or 0
        )
        await self.async_send(command)
