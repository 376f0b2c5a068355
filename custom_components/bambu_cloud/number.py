"""Numbers of Bambu Lab printers: nozzle, bed and chamber target temperatures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import UnitOfTemperature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.commands import (
    Command,
    set_bed_target,
    set_chamber_target,
    set_nozzle_target,
)
from .bambu.const import PrinterModel
from .bambu.state import PrinterState
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .printer_tracking import track_live_entities

# Commands wait for the printer's ack: one at a time per platform.
PARALLEL_UPDATES = 1


def _nozzle_command(_model: PrinterModel, target: int) -> Command:
    """The (active) nozzle's target."""
    return set_nozzle_target(target)


def _bed_command(_model: PrinterModel, target: int) -> Command:
    return set_bed_target(target)


def _chamber_command(model: PrinterModel, target: int) -> Command:
    """Models with an air duct switch it with the target (the X1E has none)."""
    return set_chamber_target(target, air_duct=model.air_duct)


@dataclass(frozen=True, kw_only=True)
class BambuTemperatureDescription(
    BambuPrinterEntityDescription, NumberEntityDescription
):
    """A target temperature; ``command_fn`` builds the command that sets it."""

    value_fn: Callable[[PrinterState], float | None]
    max_fn: Callable[[PrinterModel], int]
    command_fn: Callable[[PrinterModel, int], Command]
    exists_fn: Callable[[PrinterModel], bool] = lambda _: True


def _temperature(
    key: str,
    value_fn: Callable[[PrinterState], float | None],
    views: frozenset[str],
    max_fn: Callable[[PrinterModel], int],
    command_fn: Callable[[PrinterModel, int], Command],
    exists_fn: Callable[[PrinterModel], bool] = lambda _: True,
) -> BambuTemperatureDescription:
    return BambuTemperatureDescription(
        key=key,
        translation_key=key,
        device_class=NumberDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        native_min_value=0,
        native_step=1,
        mode=NumberMode.BOX,
        value_fn=value_fn,
        views=views,
        max_fn=max_fn,
        command_fn=command_fn,
        exists_fn=exists_fn,
    )


TARGETS: tuple[BambuTemperatureDescription, ...] = (
    _temperature(
        "nozzle_target_temperature",
        lambda s: s.nozzle_target_temperature,
        frozenset({"nozzle_target_temperature"}),
        lambda model: model.max_nozzle_temp,
        _nozzle_command,
    ),
    _temperature(
        "bed_target_temperature",
        lambda s: s.bed_target_temperature,
        frozenset({"bed_target_temperature"}),
        lambda model: model.max_bed_temp,
        _bed_command,
    ),
    _temperature(
        "chamber_target_temperature",
        lambda s: s.chamber_target_temperature,
        frozenset({"chamber_target_temperature"}),
        lambda model: model.max_chamber_temp,
        _chamber_command,
        exists_fn=lambda model: model.chamber_heater,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the target temperatures of every bound printer."""
    track_live_entities(entry, async_add_entities, BambuTargetTemperature, TARGETS)


class BambuTargetTemperature(BambuPrinterEntity, NumberEntity):
    """A heater's target temperature, limited by the printer model."""

    entity_description: BambuTemperatureDescription
    needs_signature = True
    sends_gcode = True

    @property
    def model(self) -> PrinterModel:
        """The printer's model (from the bind list)."""
        return self.link.spec.model

    @property
    def native_max_value(self) -> float:
        """The model's limit for this heater."""
        return self.entity_description.max_fn(self.model)

    @property
    def native_value(self) -> float | None:
        """The target the printer reports."""
        return self.entity_description.value_fn(self.state_data)

    def snapshot(self) -> object:
        """Availability, value and limit."""
        return (self.available, self.native_value, self.native_max_value)

    async def async_set_native_value(self, value: float) -> None:
        """Send the command; the printer's report shows the new target."""
        command = self.entity_description.command_fn(self.model, round(value))
        await self.async_send(command)
