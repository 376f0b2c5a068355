"""Actions of the integration: send G-code to a printer."""

from __future__ import annotations

from typing import Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service import async_register_admin_service

from .bambu.commands import gcode_line
from .command_sender import async_send_command
from .const import DOMAIN
from .coordinator import BambuConfigEntry
from .devices import printer_serial

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


@callback
def _resolve(hass: HomeAssistant, device_id: str) -> tuple[BambuConfigEntry, str]:
    """The loaded entry and the serial of a printer device."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="device_not_found",
            translation_placeholders={"device_id": device_id},
        )
    serial = printer_serial(device)
    if serial is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_printer",
            translation_placeholders={
                "device": device.name_by_user or device.name or device_id
            },
        )
    name = device.name_by_user or device.name or serial
    entries: list[BambuConfigEntry] = [
        entry
        for entry_id in device.config_entries
        if (entry := hass.config_entries.async_get_entry(entry_id)) is not None
        and entry.domain == DOMAIN
        and entry.state is ConfigEntryState.LOADED
    ]
    if not entries:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"device": name},
        )
    for entry in entries:
        if serial in entry.runtime_data.hub.printers:
            return entry, serial
    # A printer no longer bound to the account (its device lingers).
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="not_a_printer",
        translation_placeholders={"device": name},
    )


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


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions.

    Raw G-code can move the toolhead, heat the bed or erase the printer's
    storage, so only administrators may send it.
    """
    async_register_admin_service(
        hass, DOMAIN, SERVICE_SEND_GCODE, _async_send_gcode, schema=SEND_GCODE_SCHEMA
    )
