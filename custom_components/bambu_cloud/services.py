"""Actions of the integration: send G-code to a printer; AMS filament and drying.

``set_filament`` targets a slot by its sensor entity, or by a device: an AMS
unit's device with ``slot``, or a printer's device with ``ams`` (the unit
id, ``external`` for the external spool holder) and ``slot`` (1-based).
``start_drying`` / ``stop_drying`` target an AMS unit's device, or a
printer's device with ``ams``.
``print_file`` / ``skip_objects`` start a print from the printer's storage
and skip objects of the running job; ``list_files`` answers with the
``.3mf`` files on the printer's storage.
"""

from __future__ import annotations

import re
import time
from typing import Final, cast

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.entity_platform import async_get_platforms
from homeassistant.helpers.service import async_register_admin_service

from .ams_control import start_drying_command, stop_drying_command
from .ams_tracking import ams_unit
from .bambu import ams, commands
from .bambu.commands import Command, gcode_line
from .bambu.enums import JobState
from .bambu.ftps import StorageError, StorageErrorReason
from .bambu.hub import PrinterLink
from .bambu.state import AmsUnit, Tray
from .command_sender import async_send_command
from .const import DOMAIN, LOGGER
from .coordinator import BambuConfigEntry
from .devices import AmsId, device_ids, printer_serial
from .job_files import job_active
from .sensor import BambuTraySensor

SERVICE_SEND_GCODE: Final = "send_gcode"
ATTR_DEVICE_ID: Final = "device_id"
ATTR_GCODE: Final = "gcode"
MAX_GCODE_LENGTH: Final = 4096


def _gcode(value: object) -> str:
    """G-code lines: trimmed, LF line ends, not empty, at most 4096 chars."""
    text = cv.string(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise vol.Invalid("G-code must not be empty")
    if len(text) > MAX_GCODE_LENGTH:
        raise vol.Invalid(f"G-code must be at most {MAX_GCODE_LENGTH} characters")
    return text


SEND_GCODE_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_DEVICE_ID): cv.string,
        vol.Required(ATTR_GCODE): _gcode,
    }
)


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    """A translated validation error with its placeholders."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


@callback
def _device(hass: HomeAssistant, device_id: str) -> dr.DeviceEntry:
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise _invalid("device_not_found", device_id=device_id)
    return device


@callback
def _resolve(hass: HomeAssistant, device_id: str) -> tuple[BambuConfigEntry, str]:
    """The loaded entry and the serial of a printer device."""
    device = _device(hass, device_id)
    serial = printer_serial(device)
    if serial is None:
        raise _invalid(
            "not_a_printer", device=device.name_by_user or device.name or device_id
        )
    return _loaded_entry(hass, device, serial), serial


@callback
def _loaded_entry(
    hass: HomeAssistant, device: dr.DeviceEntry, serial: str
) -> BambuConfigEntry:
    """The loaded entry serving the printer a device belongs to."""
    name = device.name_by_user or device.name or serial
    entries: list[BambuConfigEntry] = [
        entry
        for entry_id in device.config_entries
        if (entry := hass.config_entries.async_get_entry(entry_id)) is not None
        and entry.domain == DOMAIN
        and entry.state is ConfigEntryState.LOADED
    ]
    if not entries:
        raise _invalid("entry_not_loaded", device=name)
    for entry in entries:
        if serial in entry.runtime_data.hub.printers:
            return entry
    # A printer no longer bound to the account (its device lingers).
    raise _invalid("not_a_printer", device=name)


async def _async_send_gcode(call: ServiceCall) -> None:
    """Run G-code lines on a printer and wait for its ack."""
    hass = call.hass
    entry, serial = _resolve(hass, call.data[ATTR_DEVICE_ID])
    hub = entry.runtime_data.hub
    await async_send_command(
        hass,
        hub,
        serial,
        hub.printers[serial].spec.name,
        gcode_line(call.data[ATTR_GCODE]),
    )


# -------------------------------------------------------------------- AMS

SERVICE_SET_FILAMENT: Final = "set_filament"
SERVICE_START_DRYING: Final = "start_drying"
SERVICE_STOP_DRYING: Final = "stop_drying"
ATTR_ENTITY_ID: Final = "entity_id"
ATTR_AMS: Final = "ams"
ATTR_SLOT: Final = "slot"
ATTR_TYPE: Final = "type"
ATTR_COLOR: Final = "color"
ATTR_MIN_TEMP: Final = "min_temp"
ATTR_MAX_TEMP: Final = "max_temp"
ATTR_FILAMENT_ID: Final = "filament_id"
ATTR_TEMPERATURE: Final = "temperature"
ATTR_DURATION: Final = "duration"
ATTR_FILAMENT: Final = "filament"
ATTR_ROTATE_TRAY: Final = "rotate_tray"
EXTERNAL: Final = "external"
MAX_NOZZLE_TEMPERATURE: Final = 500
MAX_TEXT_LENGTH: Final = 64


def _ams_unit_id(value: object) -> int | str:
    """An AMS unit id (0-3, AMS HT 128-135) or ``external``."""
    text = cv.string(value).strip().lower()
    if text == EXTERNAL:
        return EXTERNAL
    if text.isascii() and text.isdigit() and len(text) <= 3:
        return int(text)
    raise vol.Invalid("ams must be an AMS unit id or 'external'")


_TEXT = vol.All(cv.string, vol.Length(max=MAX_TEXT_LENGTH))
_NOZZLE_TEMP = vol.All(vol.Coerce(int), vol.Range(min=0, max=MAX_NOZZLE_TEMPERATURE))

SET_FILAMENT_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(ATTR_ENTITY_ID): cv.entity_id,
        vol.Optional(ATTR_DEVICE_ID): cv.string,
        vol.Optional(ATTR_AMS): _ams_unit_id,
        vol.Optional(ATTR_SLOT): vol.All(vol.Coerce(int), vol.Range(min=1, max=4)),
        vol.Required(ATTR_TYPE): _TEXT,
        vol.Required(ATTR_COLOR): _TEXT,
        vol.Required(ATTR_MIN_TEMP): _NOZZLE_TEMP,
        vol.Required(ATTR_MAX_TEMP): _NOZZLE_TEMP,
        vol.Optional(ATTR_FILAMENT_ID): _TEXT,
    }
)

_UNIT_TARGET: Final = {
    vol.Required(ATTR_DEVICE_ID): cv.string,
    vol.Optional(ATTR_AMS): _ams_unit_id,
}
START_DRYING_SCHEMA: Final = vol.Schema(
    {
        **_UNIT_TARGET,
        vol.Optional(ATTR_TEMPERATURE): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=120)
        ),
        vol.Optional(ATTR_DURATION): vol.All(vol.Coerce(int), vol.Range(min=1, max=99)),
        vol.Optional(ATTR_FILAMENT): _TEXT,
        vol.Optional(ATTR_ROTATE_TRAY, default=False): cv.boolean,
    }
)
STOP_DRYING_SCHEMA: Final = vol.Schema(_UNIT_TARGET)


@callback
def _unit_target(
    hass: HomeAssistant, device_id: str, ams_id: int | str | None
) -> tuple[BambuConfigEntry, str, int | None]:
    """Entry, serial and unit (None: external spool) a device target names.

    An AMS unit's device names its unit; a printer's device needs ``ams``.
    """
    device = _device(hass, device_id)
    unit = next((i for i in device_ids(device) if isinstance(i, AmsId)), None)
    if unit is not None:
        return _loaded_entry(hass, device, unit.serial), unit.serial, unit.unit_id
    entry, serial = _resolve(hass, device_id)
    if ams_id is None:
        raise _invalid("ams_required")
    return entry, serial, None if ams_id == EXTERNAL else int(ams_id)


@callback
def _ams_unit(entry: BambuConfigEntry, serial: str, unit_id: int | None) -> AmsUnit:
    """The reported AMS unit (the external spool holder is none)."""
    state = entry.runtime_data.hub.printers[serial].state
    unit = ams_unit(state, unit_id)
    if unit is None:
        raise _invalid(
            "ams_unit_not_found", ams=EXTERNAL if unit_id is None else str(unit_id)
        )
    return unit


@callback
def _tray_target(
    hass: HomeAssistant, data: dict[str, object]
) -> tuple[BambuConfigEntry, str, int, int]:
    """Entry, serial, ``ams_id`` and ``tray_id`` of the slot an action names."""
    entity_id = data.get(ATTR_ENTITY_ID)
    device_id = data.get(ATTR_DEVICE_ID)
    slot = data.get(ATTR_SLOT)
    if isinstance(entity_id, str):
        found = next(
            (
                (platform.config_entry, entity)
                for platform in async_get_platforms(hass, DOMAIN)
                if isinstance(
                    entity := platform.entities.get(entity_id), BambuTraySensor
                )
            ),
            None,
        )
        if found is None or found[0] is None:
            raise _invalid("not_a_tray", entity_id=entity_id)
        entry, sensor = cast("BambuConfigEntry", found[0]), found[1]
        unit_id, slot_id, serial = sensor.unit_id, sensor.tray_id, sensor.serial
    elif isinstance(device_id, str):
        ams_id = data.get(ATTR_AMS)
        entry, serial, unit_id = _unit_target(
            hass, device_id, ams_id if isinstance(ams_id, int | str) else None
        )
        slot_id = _slot_id(entry, serial, unit_id, slot)
    else:
        raise _invalid("target_required")
    if unit_id is None:
        return entry, serial, commands.EXTERNAL_AMS_ID, slot_id
    return entry, serial, unit_id, slot_id


def _slot_id(
    entry: BambuConfigEntry, serial: str, unit_id: int | None, slot: object
) -> int:
    """The tray id of a 1-based slot; a one-slot unit needs no slot number."""
    state = entry.runtime_data.hub.printers[serial].state
    trays: tuple[Tray, ...] = (
        state.external_spools
        if unit_id is None
        else _ams_unit(entry, serial, unit_id).trays
    )
    ordered = sorted(tray.id for tray in trays)
    if slot is None:
        if len(ordered) != 1:
            raise _invalid("slot_required")
        return ordered[0]
    number = int(str(slot))
    if unit_id is None:
        if number > len(ordered):
            raise _invalid("slot_not_found", slot=str(number))
        return ordered[number - 1]
    if number - 1 not in ordered:
        raise _invalid("slot_not_found", slot=str(number))
    return number - 1


async def _async_set_filament(call: ServiceCall) -> None:
    """Tell the printer what filament a slot holds; wait for its ack."""
    hass, data = call.hass, call.data
    entry, serial, ams_id, tray_id = _tray_target(hass, dict(data))
    kind = ams.filament_type(data[ATTR_TYPE])
    if kind is None:
        raise _invalid("invalid_filament_type")
    try:
        color = commands.normalize_color(data[ATTR_COLOR])
    except ValueError as err:
        raise _invalid("invalid_color", color=data[ATTR_COLOR]) from err
    if data[ATTR_MIN_TEMP] > data[ATTR_MAX_TEMP]:
        raise _invalid(
            "filament_temperatures_reversed",
            min_temp=str(data[ATTR_MIN_TEMP]),
            max_temp=str(data[ATTR_MAX_TEMP]),
        )
    if ATTR_FILAMENT_ID in data:
        filament_id = ams.filament_id(data[ATTR_FILAMENT_ID])
        if filament_id is None:
            raise _invalid("invalid_filament_id")
    else:
        filament_id = ams.generic_filament_id(kind)
    await _async_send(
        hass,
        entry,
        serial,
        commands.ams_filament_setting(
            ams_id=ams_id,
            tray_id=tray_id,
            tray_type=kind,
            color=color,
            min_temp=data[ATTR_MIN_TEMP],
            max_temp=data[ATTR_MAX_TEMP],
            filament_id=filament_id,
        ),
    )


async def _async_start_drying(call: ServiceCall) -> None:
    """Dry an AMS 2 Pro / AMS HT; unset settings come from its spools."""
    hass, data = call.hass, call.data
    entry, serial, unit_id = _unit_target(
        hass, data[ATTR_DEVICE_ID], data.get(ATTR_AMS)
    )
    unit = _ams_unit(entry, serial, unit_id)
    filament = data.get(ATTR_FILAMENT)
    if filament is not None and ams.filament_type(filament) is None:
        raise _invalid("invalid_filament_type")
    state = entry.runtime_data.hub.printers[serial].state
    command = start_drying_command(
        state,
        unit,
        temperature=data.get(ATTR_TEMPERATURE),
        hours=data.get(ATTR_DURATION),
        filament=None if filament is None else filament.strip(),
        rotate_tray=data[ATTR_ROTATE_TRAY],
    )
    await _async_send(hass, entry, serial, command)


async def _async_stop_drying(call: ServiceCall) -> None:
    """Stop an AMS 2 Pro / AMS HT drying."""
    hass, data = call.hass, call.data
    entry, serial, unit_id = _unit_target(
        hass, data[ATTR_DEVICE_ID], data.get(ATTR_AMS)
    )
    unit = _ams_unit(entry, serial, unit_id)
    state = entry.runtime_data.hub.printers[serial].state
    await _async_send(hass, entry, serial, stop_drying_command(state, unit))


async def _async_send(
    hass: HomeAssistant, entry: BambuConfigEntry, serial: str, command: Command
) -> None:
    hub = entry.runtime_data.hub
    link = _sendable(entry, serial)
    await async_send_command(hass, hub, serial, link.spec.name, command)


# --------------------------------------------------------------- printing

SERVICE_PRINT_FILE: Final = "print_file"
SERVICE_SKIP_OBJECTS: Final = "skip_objects"
SERVICE_LIST_FILES: Final = "list_files"
ATTR_FILE: Final = "file"
ATTR_PLATE: Final = "plate"
ATTR_USE_AMS: Final = "use_ams"
ATTR_AMS_MAPPING: Final = "ams_mapping"
ATTR_TIMELAPSE: Final = "timelapse"
ATTR_BED_LEVELING: Final = "bed_leveling"
ATTR_FLOW_CALIBRATION: Final = "flow_calibration"
ATTR_VIBRATION_CALIBRATION: Final = "vibration_calibration"
ATTR_OBJECTS: Final = "objects"
MAX_PLATES: Final = 64
MAX_FILAMENTS: Final = 32
MAX_SKIPPED: Final = 256
MAX_FILE_LENGTH: Final = 255
# Control characters, quotes and backslashes never name a file on the printer.
_BAD_FILE_CHARS: Final = re.compile(r'[\x00-\x1f\x7f"\\]')
# Objects are skipped while the job prints or is paused.
_SKIPPABLE: Final = frozenset({JobState.RUNNING, JobState.PAUSE})
# Why the storage could not be listed -> the exception's translation key.
_STORAGE_ERRORS: Final = {
    StorageErrorReason.CONNECTION: "storage_connection",
    StorageErrorReason.TLS: "storage_tls",
    StorageErrorReason.AUTH: "storage_auth",
    StorageErrorReason.TIMEOUT: "storage_timeout",
}

PRINT_FILE_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_DEVICE_ID): cv.string,
        vol.Required(ATTR_FILE): cv.string,
        vol.Optional(ATTR_PLATE, default=1): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_PLATES)
        ),
        vol.Optional(ATTR_USE_AMS, default=True): cv.boolean,
        vol.Optional(ATTR_AMS_MAPPING): vol.All(
            cv.ensure_list, vol.Length(max=MAX_FILAMENTS), [vol.Coerce(int)]
        ),
        vol.Optional(ATTR_TIMELAPSE, default=False): cv.boolean,
        vol.Optional(ATTR_BED_LEVELING, default=True): cv.boolean,
        vol.Optional(ATTR_FLOW_CALIBRATION, default=True): cv.boolean,
        vol.Optional(ATTR_VIBRATION_CALIBRATION, default=True): cv.boolean,
    }
)
SKIP_OBJECTS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_DEVICE_ID): cv.string,
        vol.Required(ATTR_OBJECTS): vol.All(
            cv.ensure_list,
            vol.Length(min=1, max=MAX_SKIPPED),
            [vol.All(vol.Coerce(int), vol.Range(min=0))],
        ),
    }
)
LIST_FILES_SCHEMA: Final = vol.Schema({vol.Required(ATTR_DEVICE_ID): cv.string})


def valid_file(value: str) -> str | None:
    """A ``.3mf`` path on the printer's storage, made absolute; None if unusable.

    The path becomes part of the URL the firmware opens: no "..", no empty
    segments, no control characters, quotes or backslashes.
    """
    path = value.strip()
    name = path.lstrip("/")
    parts = name.split("/")
    if (
        len(path) > MAX_FILE_LENGTH
        or not name.lower().endswith(".3mf")
        or len(parts[-1]) <= len(".3mf")
        or _BAD_FILE_CHARS.search(path)
        or any(part in ("", ".", "..") for part in parts)
    ):
        return None
    return "/" + name


@callback
def _controllable(
    hass: HomeAssistant, device_id: str
) -> tuple[BambuConfigEntry, str, PrinterLink]:
    """The printer behind a device, when it can take ``print`` commands now."""
    entry, serial = _resolve(hass, device_id)
    return entry, serial, _sendable(entry, serial)


@callback
def _sendable(entry: BambuConfigEntry, serial: str) -> PrinterLink:
    """The printer's link, when it reports and can take ``print`` commands.

    Firmware that wants signed commands refuses them without the app
    certificate: every action says so before anything is sent.
    """
    hub = entry.runtime_data.hub
    link = hub.printers[serial]
    if not link.available:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="printer_not_connected"
        )
    if link.state.signed_commands_required and hub.certificate is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="signature_required"
        )
    return link


async def _async_print_file(call: ServiceCall) -> None:
    """Start printing a plate of a .3mf on the printer's storage."""
    hass = call.hass
    entry, serial, link = _controllable(hass, call.data[ATTR_DEVICE_ID])
    name = link.spec.name or serial
    path = valid_file(call.data[ATTR_FILE])
    if path is None:
        raise _invalid("invalid_file", file=call.data[ATTR_FILE][:MAX_FILE_LENGTH])
    mapping: list[int] | None = call.data.get(ATTR_AMS_MAPPING)
    for tray in mapping or ():
        try:
            if tray != -1:
                commands.tray_location(tray)
        except ValueError:
            raise _invalid("invalid_ams_mapping", tray=str(tray)) from None
    if job_active(link.state):
        raise _invalid("printer_busy", device=name)
    plate: int = call.data[ATTR_PLATE]
    command = commands.project_file(
        file=path,
        plate=plate,
        storage=link.spec.model.storage_url,
        use_ams=call.data[ATTR_USE_AMS],
        ams_mapping=mapping,
        timelapse=call.data[ATTR_TIMELAPSE],
        bed_leveling=call.data[ATTR_BED_LEVELING],
        flow_calibration=call.data[ATTR_FLOW_CALIBRATION],
        vibration_calibration=call.data[ATTR_VIBRATION_CALIBRATION],
    )
    job_files = entry.runtime_data.job_files
    # Said before sending: the printer may report the new job before its ack.
    if job_files is not None:
        job_files.expect(serial, path, plate)
    try:
        await _async_send(hass, entry, serial, command)
    except HomeAssistantError:
        if job_files is not None:
            job_files.expect(serial, None)
        raise


async def _async_skip_objects(call: ServiceCall) -> None:
    """Skip objects of the running job (ids as its project file numbers them)."""
    hass = call.hass
    entry, serial, link = _controllable(hass, call.data[ATTR_DEVICE_ID])
    if link.state.gcode_state not in _SKIPPABLE:
        raise _invalid("no_job_running", device=link.spec.name or serial)
    ids: list[int] = list(dict.fromkeys(call.data[ATTR_OBJECTS]))
    job_files = entry.runtime_data.job_files
    job = None if job_files is None else job_files.current(serial)
    if job is not None and (unknown := sorted(set(ids) - job.object_ids)):
        raise _invalid("unknown_objects", objects=", ".join(map(str, unknown)))
    command = commands.skip_objects(ids, timestamp=int(time.time()))
    await _async_send(hass, entry, serial, command)


async def _async_list_files(call: ServiceCall) -> ServiceResponse:
    """The .3mf files on the printer's storage (read over its LAN link)."""
    entry, serial = _resolve(call.hass, call.data[ATTR_DEVICE_ID])
    hub = entry.runtime_data.hub
    name = hub.printers[serial].spec.name or serial
    try:
        files = await hub.async_list_files(serial)
    except StorageError as err:
        if err.reason is StorageErrorReason.NO_ADDRESS:
            raise _invalid("storage_no_address", device=name) from err
        LOGGER.debug("%s: listing the storage failed: %s", serial, err)
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=_STORAGE_ERRORS.get(err.reason, "storage_failed"),
            translation_placeholders={"device": name},
        ) from err
    return {
        "files": [
            {
                "path": file.path,
                "size": file.size,
                "modified": None
                if file.modified is None
                else file.modified.isoformat(),
            }
            for file in sorted(files, key=lambda file: file.path)
        ]
    }


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions.

    Raw G-code can move the toolhead, heat the bed or erase the printer's
    storage, so only administrators may send it.
    """
    async_register_admin_service(
        hass, DOMAIN, SERVICE_SEND_GCODE, _async_send_gcode, schema=SEND_GCODE_SCHEMA
    )
    for name, handler, schema in (
        (SERVICE_SET_FILAMENT, _async_set_filament, SET_FILAMENT_SCHEMA),
        (SERVICE_START_DRYING, _async_start_drying, START_DRYING_SCHEMA),
        (SERVICE_STOP_DRYING, _async_stop_drying, STOP_DRYING_SCHEMA),
    ):
        hass.services.async_register(DOMAIN, name, handler, schema=schema)
    hass.services.async_register(
        DOMAIN, SERVICE_PRINT_FILE, _async_print_file, schema=PRINT_FILE_SCHEMA
    )
    hass.services.async_register(
        DOMAIN, SERVICE_SKIP_OBJECTS, _async_skip_objects, schema=SKIP_OBJECTS_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_LIST_FILES,
        _async_list_files,
        schema=LIST_FILES_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
