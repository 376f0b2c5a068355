"""Sensors: live printer state, AMS units and trays, cloud status, account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfLength,
    UnitOfMass,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .ams_tracking import ams_device, ams_unit, track_ams_units
from .bambu.ams import DryingState
from .bambu.auth import AccessToken
from .bambu.commands import slot_number
from .bambu.const import PrinterModel
from .bambu.enums import JobState, PrintStage, PrintType, SpeedLevel
from .bambu.hub import BambuHub
from .bambu.models import BedType, BoundPrinter, PrintTask
from .bambu.state import (
    AmsUnit,
    ChangeSet,
    PrinterState,
    Tray,
)
from .const import DOMAIN
from .coordinator import BambuCloudCoordinator, BambuConfigEntry
from .devices import ams_identifier, printer_device_ref
from .entity import (
    BambuAccountEntity,
    BambuPrinterCloudEntity,
    BambuPrinterEntity,
    BambuPrinterEntityDescription,
)
from .enum_states import enum_option, enum_options
from .hms_text import HmsDescriber, HmsTextEntity
from .job_files import JobFile, JobFiles
from .print_tasks import PrintTasks, entry_print_tasks
from .printer_tracking import track_printers

PARALLEL_UPDATES = 0

type SensorValue = StateType | datetime

GCODE_STATES = enum_options(JobState)

# The bind list's free-text print status, folded to the values seen in practice.
CLOUD_PRINT_STATUSES = [
    "active",
    "failed",
    "finish",
    "idle",
    "offline",
    "pause",
    "prepare",
    "running",
    "success",
]


def _cloud_print_status(printer: BoundPrinter) -> str | None:
    status = (printer.print_status or "").lower()
    return status if status in CLOUD_PRINT_STATUSES else None


def _nozzle(index: int) -> Callable[[PrinterState], float | None]:
    def value(state: PrinterState) -> float | None:
        nozzles = state.nozzles
        return nozzles[index].temperature if len(nozzles) > index else None

    return value


def _hms_attributes(state: PrinterState, describe: HmsDescriber) -> dict[str, Any]:
    return {"errors": [describe.hms(entry) for entry in state.hms]}


def _print_error_attributes(
    state: PrinterState, describe: HmsDescriber
) -> dict[str, Any] | None:
    code = state.print_error
    return None if code is None else {"text": describe.error_text(code)}


def _active_tray(state: PrinterState) -> str | None:
    tray = state.active_tray
    if tray is None:
        return None
    return tray.name or tray.type


@dataclass(frozen=True, kw_only=True)
class BambuSensorDescription(BambuPrinterEntityDescription, SensorEntityDescription):
    """A sensor read from the printer's live state (``views``: what it reads)."""

    value_fn: Callable[[PrinterState], SensorValue]
    exists_fn: Callable[[PrinterModel], bool] = lambda _: True
    attrs_fn: Callable[[PrinterState], dict[str, Any]] | None = None
    # Attributes naming codes in words (HMS texts, downloaded at runtime).
    text_attrs_fn: (
        Callable[[PrinterState, HmsDescriber], dict[str, Any] | None] | None
    ) = None


def _temperature(
    key: str,
    value_fn: Callable[[PrinterState], SensorValue],
    views: frozenset[str],
    exists_fn: Callable[[PrinterModel], bool] = lambda _: True,
    *,
    enabled: bool = True,
) -> BambuSensorDescription:
    return BambuSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.TEMPERATURE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=0,
        entity_registry_enabled_default=enabled,
        value_fn=value_fn,
        views=views,
        exists_fn=exists_fn,
    )


def _fan(
    key: str,
    value_fn: Callable[[PrinterState], SensorValue],
    views: frozenset[str],
    *,
    enabled: bool = True,
) -> BambuSensorDescription:
    return BambuSensorDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=enabled,
        value_fn=value_fn,
        views=views,
    )


PRINTER_SENSORS: tuple[BambuSensorDescription, ...] = (
    BambuSensorDescription(
        key="print_status",
        translation_key="print_status",
        device_class=SensorDeviceClass.ENUM,
        options=GCODE_STATES,
        value_fn=lambda s: enum_option(s.gcode_state),
        views=frozenset({"gcode_state"}),
    ),
    BambuSensorDescription(
        key="stage",
        translation_key="stage",
        device_class=SensorDeviceClass.ENUM,
        options=enum_options(PrintStage),
        value_fn=lambda s: enum_option(s.stage),
        views=frozenset({"stage"}),
    ),
    BambuSensorDescription(
        key="progress",
        translation_key="progress",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.progress,
        views=frozenset({"progress"}),
    ),
    BambuSensorDescription(
        key="remaining_time",
        translation_key="remaining_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_unit_of_measurement=UnitOfTime.HOURS,
        suggested_display_precision=1,
        value_fn=lambda s: s.remaining_minutes,
        views=frozenset({"remaining_minutes"}),
    ),
    BambuSensorDescription(
        key="end_time",
        translation_key="end_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda s: s.end_time(dt_util.utcnow()),
        views=frozenset({"end_time"}),
    ),
    BambuSensorDescription(
        key="start_time",
        translation_key="start_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.start_time,
        views=frozenset({"start_time"}),
    ),
    BambuSensorDescription(
        key="current_layer",
        translation_key="current_layer",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.layer,
        views=frozenset({"layer"}),
    ),
    BambuSensorDescription(
        key="total_layers",
        translation_key="total_layers",
        value_fn=lambda s: s.total_layers,
        views=frozenset({"total_layers"}),
    ),
    BambuSensorDescription(
        key="job_name",
        translation_key="job_name",
        value_fn=lambda s: s.job_name,
        views=frozenset({"job_name"}),
    ),
    BambuSensorDescription(
        key="gcode_file",
        translation_key="gcode_file",
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.gcode_file,
        views=frozenset({"gcode_file"}),
    ),
    BambuSensorDescription(
        key="speed_level",
        translation_key="speed_level",
        device_class=SensorDeviceClass.ENUM,
        options=enum_options(SpeedLevel),
        value_fn=lambda s: enum_option(s.speed_level),
        views=frozenset({"speed_level"}),
    ),
    _temperature(
        "nozzle_temperature",
        lambda s: s.nozzle_temperature,
        frozenset({"nozzle_temperature"}),
    ),
    # Targets are set and shown by the number entities; these are for history.
    _temperature(
        "nozzle_target_temperature",
        lambda s: s.nozzle_target_temperature,
        frozenset({"nozzle_target_temperature"}),
        enabled=False,
    ),
    _temperature(
        "left_nozzle_temperature",
        _nozzle(1),
        frozenset({"nozzles"}),
        lambda m: m.nozzles > 1,
        enabled=False,
    ),
    _temperature(
        "right_nozzle_temperature",
        _nozzle(0),
        frozenset({"nozzles"}),
        lambda m: m.nozzles > 1,
        enabled=False,
    ),
    _temperature(
        "bed_temperature", lambda s: s.bed_temperature, frozenset({"bed_temperature"})
    ),
    _temperature(
        "bed_target_temperature",
        lambda s: s.bed_target_temperature,
        frozenset({"bed_target_temperature"}),
        enabled=False,
    ),
    _temperature(
        "chamber_temperature",
        lambda s: s.chamber_temperature,
        frozenset({"chamber_temperature"}),
        lambda m: m.chamber_sensor,
    ),
    _fan(
        "part_cooling_fan",
        lambda s: s.part_cooling_fan,
        frozenset({"part_cooling_fan"}),
    ),
    _fan("aux_fan", lambda s: s.aux_fan, frozenset({"aux_fan"})),
    _fan("chamber_fan", lambda s: s.chamber_fan, frozenset({"chamber_fan"})),
    _fan(
        "heatbreak_fan",
        lambda s: s.heatbreak_fan,
        frozenset({"heatbreak_fan"}),
        enabled=False,
    ),
    BambuSensorDescription(
        key="active_tray",
        translation_key="active_tray",
        value_fn=_active_tray,
        views=frozenset({"active_tray"}),
    ),
    BambuSensorDescription(
        key="hms_errors",
        translation_key="hms_errors",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: len(s.hms),
        text_attrs_fn=_hms_attributes,
        views=frozenset({"hms"}),
    ),
    BambuSensorDescription(
        key="print_error",
        translation_key="print_error",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.print_error_code,
        text_attrs_fn=_print_error_attributes,
        views=frozenset({"print_error_code", "print_error"}),
    ),
    BambuSensorDescription(
        key="wifi_signal",
        translation_key="wifi_signal",
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.wifi_signal,
        views=frozenset({"wifi_signal"}),
    ),
    BambuSensorDescription(
        key="nozzle_diameter",
        translation_key="nozzle_diameter",
        native_unit_of_measurement=UnitOfLength.MILLIMETERS,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.nozzle_diameter,
        views=frozenset({"nozzle_diameter"}),
    ),
    BambuSensorDescription(
        key="nozzle_type",
        translation_key="nozzle_type",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.nozzle_type,
        views=frozenset({"nozzle_type"}),
    ),
)


@dataclass(frozen=True, kw_only=True)
class BambuAmsSensorDescription(BambuPrinterEntityDescription, SensorEntityDescription):
    """A sensor of one AMS unit: ``value_fn`` reads the unit from ``ams_units``."""

    value_fn: Callable[[AmsUnit], SensorValue]
    attrs_fn: Callable[[AmsUnit], dict[str, Any]] | None = None
    views: frozenset[str] = frozenset({"ams_units"})


@dataclass(frozen=True, kw_only=True)
class BambuTraySensorDescription(
    BambuPrinterEntityDescription, SensorEntityDescription
):
    """A filament slot: an AMS tray or the external spool holder."""

    views: frozenset[str] = frozenset({"ams_units", "external_spools"})


AMS_SENSORS: tuple[BambuAmsSensorDescription, ...] = (
    BambuAmsSensorDescription(
        key="humidity",
        translation_key="ams_humidity",
        device_class=SensorDeviceClass.HUMIDITY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda unit: unit.humidity,
    ),
    BambuAmsSensorDescription(
        key="humidity_index",
        translation_key="ams_humidity_index",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda unit: unit.humidity_index,
    ),
    BambuAmsSensorDescription(
        key="temperature",
        translation_key="ams_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda unit: unit.temperature,
    ),
)


def _drying_state(unit: AmsUnit) -> str | None:
    state = unit.drying.state
    return None if state is None else state.value


def _drying_attributes(unit: AmsUnit) -> dict[str, Any]:
    """The drying run's settings and why drying cannot start (codes)."""
    drying = unit.drying
    return {
        "temperature": drying.temperature,
        "duration": drying.hours,
        "filament": drying.filament,
        "blocked_by": [blocker.value for blocker in drying.blockers],
    }


# Units with a heater (AMS 2 Pro, AMS HT) only: what their dryer does.
DRYER_SENSORS: tuple[BambuAmsSensorDescription, ...] = (
    BambuAmsSensorDescription(
        key="drying_state",
        translation_key="ams_drying_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in DryingState],
        value_fn=_drying_state,
        attrs_fn=_drying_attributes,
    ),
    BambuAmsSensorDescription(
        key="drying_remaining",
        translation_key="ams_drying_remaining",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=0,
        value_fn=lambda unit: unit.drying_minutes_left,
    ),
)


def _tray_attributes(tray: Tray) -> dict[str, Any]:
    return {
        "color": tray.color,
        "name": tray.name,
        "type": tray.type,
        "sub_brand": tray.sub_brand,
        "remaining": tray.remaining,
        "filament_id": tray.filament_id,
        "nozzle_temp_min": tray.nozzle_temp_min,
        "nozzle_temp_max": tray.nozzle_temp_max,
        "empty": tray.empty,
    }


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up account, cloud and live sensors, and AMS sensors as they appear."""
    runtime = entry.runtime_data
    hub = runtime.hub
    # A LAN-only entry has no account: no account or bind-list sensors.
    coordinator = runtime.coordinator
    cloud = coordinator if isinstance(coordinator, BambuCloudCoordinator) else None
    if cloud is not None and (token := runtime.token) is not None:
        async_add_entities(
            BambuAccountSensor(cloud, description, token)
            for description in ACCOUNT_SENSORS
            if description.exists_fn(token)
        )

    tasks = entry_print_tasks(entry)

    def printer_entities(serial: str) -> list[SensorEntity]:
        model = hub.printers[serial].spec.model
        job_files = entry.runtime_data.job_files
        entities: list[SensorEntity] = [
            BambuJobSensor(hub, serial, description, tasks, job_files)
            for description in JOB_SENSORS
            if tasks is not None or job_files is not None or not description.estimate
        ]
        if cloud is not None:
            entities.extend(
                BambuCloudSensor(cloud, serial, description)
                for description in CLOUD_SENSORS
            )
        entities.extend(
            (BambuSensor if description.text_attrs_fn is None else BambuTextSensor)(
                hub, serial, description
            )
            for description in PRINTER_SENSORS
            if description.exists_fn(model)
        )
        if job_files is not None:
            entities.append(BambuObjectsSensor(hub, serial, PRINT_OBJECTS, job_files))
        _track_filament(hass, entry, hub, serial, async_add_entities)
        track_ams_units(
            entry,
            hub,
            serial,
            async_add_entities,
            lambda unit: [
                BambuAmsSensor(hub, serial, unit.id, description)
                for description in DRYER_SENSORS
                if unit.can_dry
            ],
        )
        return entities

    track_printers(entry, async_add_entities, printer_entities)


def _track_filament(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    hub: BambuHub,
    serial: str,
    add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add AMS / external spool devices when they appear, remove them after."""
    known: set[int] = set()

    @callback
    def _sync(changed: ChangeSet | None = None) -> None:
        link = hub.printers.get(serial)
        if link is None:
            return
        units = {unit.id: unit for unit in link.state.ams_units}
        new: list[SensorEntity] = []
        for unit_id in sorted(units.keys() - known):
            unit = units[unit_id]
            new.extend(
                BambuAmsSensor(hub, serial, unit_id, description)
                for description in AMS_SENSORS
            )
            new.extend(
                BambuTraySensor(hub, serial, unit_id, tray.id) for tray in unit.trays
            )
        if link.state.external_spools and EXTERNAL not in known:
            known.add(EXTERNAL)
            new.extend(
                BambuTraySensor(hub, serial, None, tray.id)
                for tray in link.state.external_spools
            )
        if new:
            add_entities(new)
        registry = dr.async_get(hass)
        for unit_id in known - units.keys() - {EXTERNAL}:
            if device := registry.async_get_device(
                identifiers={(DOMAIN, ams_identifier(serial, unit_id))}
            ):
                registry.async_update_device(
                    device.id, remove_config_entry_id=entry.entry_id
                )
        known.intersection_update(units.keys() | {EXTERNAL})
        known.update(units)

    _sync()
    entry.async_on_unload(hub.listen(serial, _sync, FILAMENT_VIEWS))


EXTERNAL = -1
FILAMENT_VIEWS = frozenset({"ams_units", "external_spools"})


@dataclass(frozen=True, kw_only=True)
class BambuObjectsSensorDescription(
    BambuPrinterEntityDescription, SensorEntityDescription
):
    """The running job's objects (``views``: the skipped ones of the report)."""


# The objects come from the job's project file, the skipped ids (s_obj)
# from the report.
PRINT_OBJECTS = BambuObjectsSensorDescription(
    key="print_objects",
    translation_key="print_objects",
    views=frozenset({"skipped_objects"}),
)


class BambuObjectsSensor(BambuPrinterEntity, SensorEntity):
    """How many objects the running job prints; which ones, which are skipped.

    The objects (id and name, the ids skip_objects takes) are read from the
    job's project file on the printer's storage; unknown without a LAN link.
    """

    entity_description: BambuObjectsSensorDescription
    # A job may have hundreds of objects: the history keeps the count only.
    _unrecorded_attributes = frozenset({"objects", "skipped"})

    def __init__(
        self,
        hub: BambuHub,
        serial: str,
        description: BambuObjectsSensorDescription,
        job_files: JobFiles,
    ) -> None:
        """Attach the sensor to the printer and its job files."""
        super().__init__(hub, serial, description)
        self._job_files = job_files

    async def async_added_to_hass(self) -> None:
        """Also follow the job's file."""
        await super().async_added_to_hass()
        self.async_on_remove(self._job_files.listen(self.serial, self.write_if_changed))

    @property
    def native_value(self) -> int | None:
        """The number of printable objects of the job, once its file is read."""
        job = self._job_files.job_file(self.serial)
        return None if job is None else len(job.objects)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The objects (id, name) and the ids the printer skips."""
        job = self._job_files.job_file(self.serial)
        return {
            "objects": []
            if job is None
            else [{"id": obj.id, "name": obj.name} for obj in job.objects],
            "skipped": list(self.state_data.skipped_objects),
        }

    def snapshot(self) -> object:
        """Availability, value and attributes, compared before writing."""
        return (self.available, self.native_value, self.extra_state_attributes)


class BambuSensor(BambuPrinterEntity, SensorEntity):
    """A printer sensor fed by live MQTT state."""

    entity_description: BambuSensorDescription

    @property
    def native_value(self) -> SensorValue:
        """The value from the printer's state."""
        return self.entity_description.value_fn(self.state_data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details for sensors that summarise a list (HMS errors)."""
        if self.entity_description.attrs_fn is None:
            return None
        return self.entity_description.attrs_fn(self.state_data)

    def snapshot(self) -> object:
        """Availability, value and attributes, compared before writing."""
        return (self.available, self.native_value, self.extra_state_attributes)


class BambuTextSensor(HmsTextEntity, BambuSensor):
    """A printer sensor whose attributes put its codes in words."""

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Each code with its text (known once the model's texts arrived)."""
        attrs_fn = self.entity_description.text_attrs_fn
        return None if attrs_fn is None else attrs_fn(self.state_data, self.describer)


class BambuAmsSensor(BambuPrinterEntity, SensorEntity):
    """A sensor of one AMS unit, on the unit's own device."""

    entity_description: BambuAmsSensorDescription

    def __init__(
        self,
        hub: BambuHub,
        serial: str,
        unit_id: int,
        description: BambuAmsSensorDescription,
    ) -> None:
        """Attach to the AMS device."""
        super().__init__(hub, serial, description)
        self.unit_id = unit_id
        self._attr_unique_id = f"{ams_identifier(serial, unit_id)}_{description.key}"
        self._attr_device_info = ams_device(hub, serial, unit_id)

    @property
    def _unit(self) -> AmsUnit | None:
        return ams_unit(self.state_data, self.unit_id)

    @property
    def available(self) -> bool:
        """Available while the unit is reported."""
        return super().available and self._unit is not None

    @property
    def native_value(self) -> SensorValue:
        """The unit's value."""
        unit = self._unit
        return None if unit is None else self.entity_description.value_fn(unit)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details of the unit's value (the dryer's settings)."""
        unit, attrs_fn = self._unit, self.entity_description.attrs_fn
        return None if unit is None or attrs_fn is None else attrs_fn(unit)

    def snapshot(self) -> object:
        """Availability, value and attributes."""
        return (self.available, self.native_value, self.extra_state_attributes)


class BambuTraySensor(BambuPrinterEntity, SensorEntity):
    """One filament slot: its filament type, with colour and amount left."""

    entity_description: BambuTraySensorDescription

    def __init__(
        self, hub: BambuHub, serial: str, unit_id: int | None, tray_id: int
    ) -> None:
        """Attach to the AMS (or external spool) device."""
        slot = slot_number(tray_id)
        key = f"tray_{slot}" if unit_id is not None else "external_spool"
        super().__init__(
            hub,
            serial,
            BambuTraySensorDescription(
                key=key,
                translation_key="tray" if unit_id is not None else "external_spool",
                translation_placeholders={"slot": str(slot)},
            ),
        )
        self.unit_id = unit_id
        self.tray_id = tray_id
        if unit_id is None:
            self._attr_unique_id = f"{serial}_external_{tray_id}"
            self._attr_device_info = printer_device_ref(serial)
        else:
            self._attr_unique_id = f"{ams_identifier(serial, unit_id)}_tray_{tray_id}"
            self._attr_device_info = ams_device(hub, serial, unit_id)

    @property
    def _tray(self) -> Tray | None:
        state = self.state_data
        if self.unit_id is None:
            trays = state.external_spools
        else:
            unit = ams_unit(state, self.unit_id)
            trays = unit.trays if unit else ()
        return next((t for t in trays if t.id == self.tray_id), None)

    @property
    def available(self) -> bool:
        """Available while the slot is reported."""
        return super().available and self._tray is not None

    @property
    def native_value(self) -> str | None:
        """Filament type, or "empty"."""
        tray = self._tray
        if tray is None:
            return None
        return "empty" if tray.empty else (tray.type or None)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Colour, name, amount left and temperatures of the filament."""
        tray = self._tray
        return None if tray is None else _tray_attributes(tray)

    def snapshot(self) -> object:
        """Availability, value and attributes."""
        return (self.available, self.native_value, self.extra_state_attributes)


@dataclass(frozen=True, kw_only=True)
class BambuCloudSensorDescription(SensorEntityDescription):
    """A printer sensor read from its bind entry."""

    value_fn: Callable[[BoundPrinter], StateType]


@dataclass(frozen=True, kw_only=True)
class BambuAccountSensorDescription(SensorEntityDescription):
    """An account sensor read from the access token."""

    value_fn: Callable[[AccessToken], datetime | None]
    exists_fn: Callable[[AccessToken], bool]


CLOUD_SENSORS: tuple[BambuCloudSensorDescription, ...] = (
    BambuCloudSensorDescription(
        key="cloud_print_status",
        translation_key="cloud_print_status",
        device_class=SensorDeviceClass.ENUM,
        options=CLOUD_PRINT_STATUSES,
        value_fn=_cloud_print_status,
    ),
)

ACCOUNT_SENSORS: tuple[BambuAccountSensorDescription, ...] = (
    BambuAccountSensorDescription(
        key="token_expires",
        translation_key="token_expires",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda token: token.expires_at,
        exists_fn=lambda token: token.expires_at is not None,
    ),
)


class BambuCloudSensor(BambuPrinterCloudEntity, SensorEntity):
    """A printer sensor fed by the cloud bind list."""

    entity_description: BambuCloudSensorDescription

    @property
    def native_value(self) -> StateType:
        """The value from the latest bind entry."""
        if (printer := self.printer) is None:
            return None
        return self.entity_description.value_fn(printer)


class BambuAccountSensor(BambuAccountEntity, SensorEntity):
    """An account sensor fed by the access token."""

    entity_description: BambuAccountSensorDescription

    def __init__(
        self,
        coordinator: BambuCloudCoordinator,
        description: BambuAccountSensorDescription,
        token: AccessToken,
    ) -> None:
        """Keep the token the value is read from."""
        super().__init__(coordinator, description)
        self._token = token

    @property
    def native_value(self) -> datetime | None:
        """The value read from the token."""
        return self.entity_description.value_fn(self._token)


# ------------------------------------------------------------ job details


def job_task(state: PrinterState, task: PrintTask | None) -> PrintTask | None:
    """The cloud task of the job the printer reports, if that is the one fetched.

    The newest task of the account is the current job only when its id is the
    report's task id: during a LAN job (no task id) or before the task list
    names a new job it belongs to another job, whose details would mislead.
    """
    if task is None or state.task_id is None or task.id != state.task_id:
        return None
    return task


def _plate(
    state: PrinterState, task: PrintTask | None, file: JobFile | None
) -> int | None:
    if (plate := state.plate) is not None:
        return plate
    if task is not None and task.plate_index is not None:
        return task.plate_index
    return None if file is None else file.plate


def _plate_attributes(
    state: PrinterState, task: PrintTask | None, file: JobFile | None
) -> dict[str, Any] | None:
    return None if task is None else {"name": task.plate_name}


def _bed_type(
    _state: PrinterState, task: PrintTask | None, file: JobFile | None
) -> str | None:
    bed = None if task is None else task.bed_type
    if bed is None and file is not None:
        bed = file.bed_type
    return enum_option(bed)


def _weight(
    _state: PrinterState, task: PrintTask | None, file: JobFile | None
) -> float | None:
    if task is not None and task.weight is not None:
        return task.weight
    return None if file is None else file.weight


def _length(
    _state: PrinterState, task: PrintTask | None, file: JobFile | None
) -> float | None:
    """Centimetres, as the task lists them; the file's metres converted."""
    if task is not None and task.length is not None:
        return task.length
    if file is None or file.length is None:
        return None
    # Rounded: metres x 100 in binary floats shows digits nobody sliced.
    return round(file.length * 100, 2)


@dataclass(frozen=True, kw_only=True)
class BambuJobSensorDescription(BambuPrinterEntityDescription, SensorEntityDescription):
    """A detail of the current job: from the report, its cloud task, its file.

    ``value_fn`` gets the printer's state, the cloud task of the job it
    reports (``job_task``: None without an account, during a LAN job, or
    before the task is fetched) and the job's project file as read from the
    printer's storage (None before it is read, or without a LAN link). The
    task wins when it has the detail: it is what the cloud shows; the file
    answers for jobs the cloud has no task for (print_file, SD card, LAN
    only). ``estimate``: the value comes from the task or the file alone,
    so an entry with neither has no such sensor.
    """

    value_fn: Callable[[PrinterState, PrintTask | None, JobFile | None], SensorValue]
    attrs_fn: Callable[
        [PrinterState, PrintTask | None, JobFile | None], dict[str, Any] | None
    ] = lambda _state, _task, _file: None
    estimate: bool = False


# The job file is matched to the report's job by these views (JobKey).
_JOB_FILE_VIEWS: Final = frozenset({"task_id", "gcode_file", "job_name"})

JOB_SENSORS: tuple[BambuJobSensorDescription, ...] = (
    BambuJobSensorDescription(
        key="print_type",
        translation_key="print_type",
        device_class=SensorDeviceClass.ENUM,
        options=enum_options(PrintType),
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state, _task, _file: enum_option(state.print_type),
        views=frozenset({"print_type"}),
    ),
    BambuJobSensorDescription(
        key="plate",
        translation_key="plate",
        value_fn=_plate,
        attrs_fn=_plate_attributes,
        views=frozenset({"plate"}) | _JOB_FILE_VIEWS,
    ),
    BambuJobSensorDescription(
        key="bed_type",
        translation_key="bed_type",
        device_class=SensorDeviceClass.ENUM,
        options=enum_options(BedType),
        value_fn=_bed_type,
        views=_JOB_FILE_VIEWS,
        estimate=True,
    ),
    BambuJobSensorDescription(
        key="print_weight",
        translation_key="print_weight",
        device_class=SensorDeviceClass.WEIGHT,
        native_unit_of_measurement=UnitOfMass.GRAMS,
        suggested_display_precision=1,
        value_fn=_weight,
        views=_JOB_FILE_VIEWS,
        estimate=True,
    ),
    BambuJobSensorDescription(
        key="print_length",
        translation_key="print_length",
        device_class=SensorDeviceClass.DISTANCE,
        # The task lists centimetres (see PrintTask.length); the file's
        # metres are converted to them.
        native_unit_of_measurement=UnitOfLength.CENTIMETERS,
        suggested_unit_of_measurement=UnitOfLength.METERS,
        suggested_display_precision=2,
        value_fn=_length,
        views=_JOB_FILE_VIEWS,
        estimate=True,
    ),
)


class BambuJobSensor(BambuPrinterEntity, SensorEntity):
    """A detail of the current job: live report, the job's cloud task and file."""

    entity_description: BambuJobSensorDescription

    def __init__(
        self,
        hub: BambuHub,
        serial: str,
        description: BambuJobSensorDescription,
        tasks: PrintTasks | None,
        job_files: JobFiles | None,
    ) -> None:
        """Attach to the printer; ``tasks`` is None without an account."""
        super().__init__(hub, serial, description)
        self._tasks = tasks
        self._job_files = job_files

    async def async_added_to_hass(self) -> None:
        """Also follow the printer's cloud task (fetched once for all) and file."""
        await super().async_added_to_hass()
        if self._tasks is not None:
            self.async_on_remove(
                self._tasks.subscribe(self.serial, self.write_if_changed)
            )
        if self._job_files is not None:
            self.async_on_remove(
                self._job_files.listen(self.serial, self.write_if_changed)
            )

    @property
    def _task(self) -> PrintTask | None:
        if self._tasks is None:
            return None
        return job_task(self.state_data, self._tasks.task(self.serial))

    @property
    def _file(self) -> JobFile | None:
        """The file of the job the printer reports now (not the last one's)."""
        return None if self._job_files is None else self._job_files.current(self.serial)

    @property
    def native_value(self) -> SensorValue:
        """The detail, from the report, the task or the file."""
        return self.entity_description.value_fn(self.state_data, self._task, self._file)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """More about the detail (the plate's name in the project)."""
        return self.entity_description.attrs_fn(self.state_data, self._task, self._file)

    def snapshot(self) -> object:
        """Availability, value and attributes."""
        return (self.available, self.native_value, self.extra_state_attributes)
