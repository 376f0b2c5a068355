"""Diagnostics: what a maintainer needs, with every secret redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .bambu.auth import AccessToken
from .const import (
    CONF_ACCESS_TOKEN,
    CONF_CA_BUNDLE,
    CONF_CERTIFICATE_ID,
    CONF_HOST,
    CONF_PRINTERS,
    CONF_PRIVATE_KEY,
)
from .coordinator import BambuCloudCoordinator, BambuConfigEntry

TO_REDACT = {
    CONF_ACCESS_TOKEN,
    CONF_CA_BUNDLE,
    CONF_CERTIFICATE_ID,
    CONF_PRIVATE_KEY,
    CONF_HOST,
    "access_code",
    "account",
    "avatar",
    "name",
    "nickname",
    "uid",
    "serial",
    "print_job",
    "unique_id",
    "title",
    "url",
}
# On top of what the library redacts in a printer's report (serials,
# addresses, access codes, URLs): job and file names, job ids, spool tags.
LIVE_TO_REDACT = {
    "gcode_file",
    "job_id",
    "profile_id",
    "project_id",
    "subtask_id",
    "subtask_name",
    "tag_uid",
    "task_id",
    "tray_uuid",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: BambuConfigEntry
) -> dict[str, Any]:
    """Entry settings, the last cloud polls and each printer's live state.

    Serials are replaced by indexes; the live state is the library's own
    redacted copy of the merged report.
    """
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    firmware = runtime.firmware
    aliases = {
        serial: f"printer_{index}"
        for index, serial in enumerate(sorted(coordinator.data.printers), start=1)
    }
    options = dict(entry.options)
    if printers := options.get(CONF_PRINTERS):
        options[CONF_PRINTERS] = {
            aliases.get(serial, "unbound_printer"): settings
            for serial, settings in printers.items()
        }
    result: dict[str, Any] = {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(options, TO_REDACT),
        },
    }
    # A LAN-only entry has neither token nor account.
    if isinstance(coordinator, BambuCloudCoordinator) and runtime.token is not None:
        result.update(_cloud_diagnostics(runtime.token, coordinator, aliases))
    if firmware is not None:
        result["firmware"] = {
            "last_update_success": firmware.last_update_success,
            "update_interval": str(firmware.update_interval),
            "data": {
                aliases[serial]: {
                    "installed": info.installed,
                    "releases": [
                        async_redact_data(asdict(release), TO_REDACT)
                        for release in info.releases
                    ],
                }
                for serial, info in (firmware.data or {}).items()
                if serial in aliases
            },
        }
    result["printers"] = {
        aliases[serial]: {
            "available": link.available,
            "lan_connected": link.lan_connected,
            "state": async_redact_data(link.state.diagnostics(), LIVE_TO_REDACT),
        }
        for serial, link in runtime.hub.printers.items()
        if serial in aliases
    }
    return result


def _cloud_diagnostics(
    token: AccessToken,
    coordinator: BambuCloudCoordinator,
    aliases: dict[str, str],
) -> dict[str, Any]:
    """The account's token and last poll (entries with an account only)."""
    return {
        "token": {
            "jwt": token.expires_at is not None or token.user_id is not None,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
        "coordinator": {
            "last_update_success": coordinator.last_update_success,
            "update_interval": str(coordinator.update_interval),
            "profile": async_redact_data(asdict(coordinator.data.profile), TO_REDACT),
            "printers": {
                aliases[serial]: async_redact_data(asdict(printer), TO_REDACT)
                for serial, printer in coordinator.data.printers.items()
            },
        },
    }
