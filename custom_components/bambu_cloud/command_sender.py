"""Send a command to a printer; its failures become translated errors."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .bambu.commands import Command
from .bambu.hub import BambuHub, CommandError, CommandTimeoutError, NotConnectedError
from .const import DOMAIN, LOGGER
from .issues import sync_signature_issue


async def async_send_command(
    hass: HomeAssistant, hub: BambuHub, serial: str, name: str, command: Command
) -> None:
    """Send a command and wait for its ack (the hub's configured timeout).

    A signature refusal also raises the printer's signing repair issue. The
    printer's own reason text is English firmware wording: it goes to the
    debug log, the user sees a translated message with the error code.
    """
    try:
        await hub.async_command(serial, command)
    except NotConnectedError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="printer_not_connected"
        ) from err
    except CommandTimeoutError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="command_timeout"
        ) from err
    except CommandError as err:
        if err.signature_rejected:
            sync_signature_issue(hass, serial, name or serial, required=True)
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="signature_required"
            ) from err
        LOGGER.debug(
            "%s rejected a command: %s (error %s)", serial, err.reason, err.err_code
        )
        if err.err_code is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="command_failed"
            ) from err
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="command_failed_code",
            translation_placeholders={"code": str(err.err_code)},
        ) from err
