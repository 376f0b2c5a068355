"""Devices: the account, its printers and their AMS units.

The only module that formats or reads the device identifiers this
integration registers: ``account_<uid>`` for the account, the serial for a
printer and ``<serial>_ams_<unit id>`` for an AMS unit. Everything else asks
here, so no other module splits or builds identifier strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo

from .bambu.commands import AMS_HT_UNIT_IDS, unit_number
from .bambu.const import lookup_model
from .bambu.models import BoundPrinter, valid_serial
from .bambu.state import AmsUnit
from .const import DOMAIN

MANUFACTURER: Final = "Bambu Lab"

_ACCOUNT_PREFIX: Final = "account_"
_AMS_INFIX: Final = "_ams_"


@dataclass(frozen=True, slots=True)
class AccountId:
    """The identifier of the account's service device."""

    uid: str


@dataclass(frozen=True, slots=True)
class PrinterId:
    """The identifier of a printer's device."""

    serial: str


@dataclass(frozen=True, slots=True)
class AmsId:
    """The identifier of an AMS unit's device, hanging off its printer."""

    serial: str
    unit_id: int


type DeviceId = AccountId | PrinterId | AmsId


def account_identifier(uid: str) -> str:
    """The identifier of the account device."""
    return f"{_ACCOUNT_PREFIX}{uid}"


def printer_identifier(serial: str) -> str:
    """The identifier of a printer device: its serial, unchanged."""
    return serial


def ams_identifier(serial: str, unit_id: int) -> str:
    """The identifier of an AMS unit's device."""
    return f"{serial}{_AMS_INFIX}{unit_id}"


def parse_identifier(identifier: str) -> DeviceId | None:
    """What one of this integration's identifiers names; None if none.

    Serials are alphanumeric, so an underscore always separates parts.
    """
    if identifier.startswith(_ACCOUNT_PREFIX):
        uid = identifier.removeprefix(_ACCOUNT_PREFIX)
        return AccountId(uid) if uid else None
    serial, infix, unit = identifier.partition(_AMS_INFIX)
    if not valid_serial(serial):
        return None
    if not infix:
        return PrinterId(serial)
    if unit.isascii() and unit.isdigit():
        return AmsId(serial, int(unit))
    return None


def device_ids(device: dr.DeviceEntry) -> list[DeviceId]:
    """What a registry device's identifiers of this integration name."""
    return [
        parsed
        for domain, identifier in device.identifiers
        if domain == DOMAIN and (parsed := parse_identifier(identifier)) is not None
    ]


def printer_serial(device: dr.DeviceEntry) -> str | None:
    """The serial of a printer device; None for the account and AMS units."""
    return next(
        (found.serial for found in device_ids(device) if isinstance(found, PrinterId)),
        None,
    )


def owning_serial(device_id: DeviceId) -> str | None:
    """The serial of the printer a device belongs to (None for the account)."""
    return None if isinstance(device_id, AccountId) else device_id.serial


def account_device_info(uid: str, name: str | None) -> DeviceInfo:
    """The account as a service device that printers hang off."""
    return DeviceInfo(
        identifiers={(DOMAIN, account_identifier(uid))},
        manufacturer=MANUFACTURER,
        name=name or "Bambu Lab account",
        entry_type=DeviceEntryType.SERVICE,
    )


def account_device_ref(uid: str) -> DeviceInfo:
    """A reference to the account device (created at entry setup)."""
    return DeviceInfo(identifiers={(DOMAIN, account_identifier(uid))})


def printer_device_info(uid: str | None, printer: BoundPrinter) -> DeviceInfo:
    """The device of one printer; under the account's device when it has one."""
    model = lookup_model(
        product_name=printer.product_name,
        model_id=printer.model_id,
        serial=printer.serial,
    )
    info = DeviceInfo(
        identifiers={(DOMAIN, printer_identifier(printer.serial))},
        manufacturer=MANUFACTURER,
        model=model.name if model.model_ids else printer.product_name,
        model_id=printer.model_id,
        name=printer.name,
        serial_number=printer.serial,
    )
    if uid is not None:
        info["via_device"] = (DOMAIN, account_identifier(uid))
    return info


def printer_device_ref(serial: str) -> DeviceInfo:
    """A reference to a printer device (created when the printer is bound)."""
    return DeviceInfo(identifiers={(DOMAIN, printer_identifier(serial))})


def ams_device_info(
    serial: str, printer_name: str, unit_id: int, unit: AmsUnit | None
) -> DeviceInfo:
    """The device of one AMS unit, named "<printer> AMS 1" or "... AMS HT 1".

    AMS HT units are numbered on their own (ids 128-135), so an H2D with an
    AMS 2 Pro and an AMS HT shows "AMS 1" and "AMS HT 1", not two "AMS 1".
    """
    ht = unit_id in AMS_HT_UNIT_IDS
    number = unit_number(unit_id)
    kind = unit.kind if unit is not None else ("ams_ht" if ht else "ams")
    return DeviceInfo(
        identifiers={(DOMAIN, ams_identifier(serial, unit_id))},
        manufacturer=MANUFACTURER,
        model=kind.replace("_", " ").upper(),
        translation_key="ams_ht" if ht else "ams",
        translation_placeholders={"printer": printer_name, "number": str(number)},
        sw_version=unit.firmware_version if unit is not None else None,
        via_device=(DOMAIN, printer_identifier(serial)),
    )
