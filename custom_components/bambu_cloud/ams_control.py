"""AMS commands shared by the buttons and the actions: what to send, or why not.

Each function reads the printer's state and returns the command to send,
or raises a translated error before anything goes out: a unit without a
heater, firmware that dries from its screen only, a dryer that says it
cannot start now, settings outside the unit's range.
"""

from __future__ import annotations

from typing import Final

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .bambu import commands
from .bambu.ams import (
    DRYING_COOLING_TEMPERATURE,
    DRYING_LIMITS,
    DryingBlocker,
    FilamentDrying,
    default_drying,
)
from .bambu.commands import Command
from .bambu.state import AmsUnit, PrinterState, Tray
from .const import DOMAIN

# Nozzle temperature for a filament that names none (suits PLA and PETG).
DEFAULT_NOZZLE_TEMPERATURE: Final = 220
# Why a dryer cannot start -> the exception saying so (a translated
# sentence each: a reason code is no text to show).
DRYING_BLOCKED: Final = {
    blocker: f"drying_blocked_{blocker.value}" for blocker in DryingBlocker
}


def nozzle_temperature(tray: Tray | None) -> int:
    """The middle of a filament's nozzle range (220 °C when unknown)."""
    if tray is None:
        return DEFAULT_NOZZLE_TEMPERATURE
    low, high = tray.nozzle_temp_min, tray.nozzle_temp_max
    if low and high and 0 < low <= high:
        return (low + high) // 2
    return high or low or DEFAULT_NOZZLE_TEMPERATURE


def loaded_tray_ids(state: PrinterState) -> set[int]:
    """Global ids of the trays feeding the printer (one per nozzle)."""
    loaded = {nozzle.tray_id for nozzle in state.nozzles if nozzle.tray_id is not None}
    if (active := state.active_tray_id) is not None:
        loaded.add(active)
    return loaded


def loaded_tray(state: PrinterState, unit: AmsUnit) -> Tray | None:
    """The tray of this unit feeding the printer, if one does."""
    loaded = loaded_tray_ids(state)
    return next((tray for tray in unit.trays if tray.global_id in loaded), None)


def load_command(state: PrinterState, unit: AmsUnit, slot: int) -> Command:
    """Feed a slot's filament, hot enough for it and for the one pulled out."""
    tray = next((t for t in unit.trays if t.id == slot), None)
    current = state.active_tray
    return commands.ams_load(
        ams_id=unit.id,
        slot=slot,
        target_temp=nozzle_temperature(tray),
        current_temp=None if current is None else nozzle_temperature(current),
    )


def unload_command(state: PrinterState, unit: AmsUnit) -> Command:
    """Pull the unit's loaded filament back, at that filament's temperature."""
    return commands.ams_unload(
        ams_id=unit.id, target_temp=nozzle_temperature(loaded_tray(state, unit))
    )


def check_can_dry(state: PrinterState, unit: AmsUnit) -> None:
    """Raise unless the unit has a heater and the firmware dries on command."""
    if not unit.can_dry:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="ams_cannot_dry"
        )
    if not state.remote_drying:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="remote_drying_unsupported"
        )


def start_drying_command(
    state: PrinterState,
    unit: AmsUnit,
    *,
    temperature: int | None = None,
    hours: int | None = None,
    filament: str | None = None,
    rotate_tray: bool = False,
) -> Command:
    """Dry a unit; settings not given come from its spools (``default_drying``)."""
    check_can_dry(state, unit)
    if unit.drying.blockers:
        # The first reason the unit gives, as a sentence of its own.
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=DRYING_BLOCKED[unit.drying.blockers[0]],
        )
    defaults = default_drying(
        unit.kind,
        [
            FilamentDrying(
                filament=tray.type,
                temperature=tray.drying_temperature,
                hours=tray.drying_hours,
            )
            for tray in unit.trays
            if not tray.empty
        ],
    )
    limits = DRYING_LIMITS[unit.kind]
    temperature = defaults.temperature if temperature is None else temperature
    hours = defaults.hours if hours is None else hours
    _check_range(
        temperature,
        limits.min_temperature,
        limits.max_temperature,
        "drying_temperature_out_of_range",
    )
    _check_range(
        hours, limits.min_hours, limits.max_hours, "drying_duration_out_of_range"
    )
    return commands.ams_start_drying(
        ams_id=unit.id,
        temperature=temperature,
        hours=hours,
        filament=defaults.filament if filament is None else filament,
        rotate_tray=rotate_tray,
        cooling_temp=DRYING_COOLING_TEMPERATURE,
    )


def _check_range(value: int, low: int, high: int, translation_key: str) -> None:
    """Refuse a drying setting outside the unit's range, naming the range."""
    if not low <= value <= high:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=translation_key,
            translation_placeholders={"min": str(low), "max": str(high)},
        )


def stop_drying_command(state: PrinterState, unit: AmsUnit) -> Command:
    """Stop a unit's dryer."""
    check_can_dry(state, unit)
    return commands.ams_stop_drying(ams_id=unit.id)
