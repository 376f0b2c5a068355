"""Constants of the Bambu Lab Cloud integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from homeassistant.const import Platform

DOMAIN: Final = "bambu_cloud"
LOGGER = logging.getLogger(__package__)

CONF_REGION: Final = "region"
CONF_ACCESS_TOKEN: Final = "access_token"
# When a signed-in token expires (ISO 8601, UTC), from the login's expiresIn:
# opaque tokens carry no expiry of their own.
CONF_EXPIRES_AT: Final = "expires_at"
CONF_CERTIFICATE_ID: Final = "certificate_id"
CONF_PRIVATE_KEY: Final = "private_key"
CONF_ACCOUNT: Final = "account"
CONF_CODE: Final = "code"

# An option of earlier versions; entries may still hold it, it is ignored.
CONF_POLL_INTERVAL: Final = "poll_interval"
CONF_PRINTERS: Final = "printers"
CONF_PRINTER: Final = "printer"
CONF_HOST: Final = "host"
# A printer's LAN link (options[printers][serial][lan]): the address it
# reports or announces, none, or the host the user gave.
CONF_LAN: Final = "lan"
LAN_AUTO: Final = "auto"
LAN_OFF: Final = "off"
LAN_FIXED: Final = "fixed"
LAN_MODES: Final = (LAN_AUTO, LAN_OFF, LAN_FIXED)
# A printer added without an account (LAN only): its serial and access code.
CONF_SERIAL: Final = "serial"
CONF_ACCESS_CODE: Final = "access_code"
CONF_CA_BUNDLE: Final = "ca_bundle"

DEFAULT_POLL_INTERVAL: Final = timedelta(minutes=5)
# Upper bound for a cloud-requested wait (Retry-After), against absurd values.
MAX_BACKOFF: Final = timedelta(hours=6)
# Entities keep the last good cloud data through short outages.
STALE_AFTER: Final = timedelta(minutes=30)
TOKEN_EXPIRY_WARNING: Final = timedelta(days=14)

PLATFORMS: Final = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CAMERA,
    Platform.EVENT,
    Platform.FAN,
    Platform.IMAGE,
    Platform.LIGHT,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
    Platform.UPDATE,
]
