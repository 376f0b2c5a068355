"""The firmware coordinator: which firmware the cloud offers each printer."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Final

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .bambu.cloud import BambuCloud
from .bambu.errors import (
    BambuAuthError,
    BambuError,
    BambuForbiddenError,
    BambuRateLimitedError,
)
from .bambu.models import FirmwareInfo
from .const import DOMAIN, LOGGER, MAX_BACKOFF
from .coordinator import BambuConfigEntry

FIRMWARE_INTERVAL: Final = timedelta(hours=6)
# After a failed poll: try again sooner than the regular six hours.
FIRMWARE_RETRY: Final = timedelta(minutes=30)
# Entities keep the last good list through outages shorter than this.
FIRMWARE_STALE_AFTER: Final = timedelta(hours=24)


class BambuFirmwareCoordinator(DataUpdateCoordinator[dict[str, FirmwareInfo]]):
    """Polls the firmware list of every printer of the account in one request."""

    config_entry: BambuConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: BambuConfigEntry, cloud: BambuCloud
    ) -> None:
        """Poll every six hours; failures retry after half an hour."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} firmware",
            update_interval=FIRMWARE_INTERVAL,
        )
        self.cloud = cloud
        self.last_success: datetime | None = None
        self._not_before = 0.0

    @property
    def fresh(self) -> bool:
        """Whether the last good firmware list is recent enough to show."""
        return (
            self.last_success is not None
            and dt_util.utcnow() - self.last_success < FIRMWARE_STALE_AFTER
        )

    async def _async_update_data(self) -> dict[str, FirmwareInfo]:
        """Fetch the firmware list; entities re-check freshness on failures."""
        try:
            data = await self._async_fetch()
        except UpdateFailed:
            # The base class notifies only on the first of several failures.
            self.hass.loop.call_soon(self.async_update_listeners)
            raise
        self.last_success = dt_util.utcnow()
        return data

    async def _async_fetch(self) -> dict[str, FirmwareInfo]:
        """Fetch the firmware list; map errors to HA's contract."""
        wait = self._not_before - time.monotonic()
        if wait > 0:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                translation_placeholders={"seconds": str(round(wait))},
            )
        self.update_interval = FIRMWARE_RETRY
        try:
            infos = await self.cloud.get_firmware()
        except BambuAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        except BambuRateLimitedError as err:
            delay = min(
                max(err.retry_after or 0.0, FIRMWARE_RETRY.total_seconds()),
                MAX_BACKOFF.total_seconds(),
            )
            self._not_before = time.monotonic() + delay
            self.update_interval = timedelta(seconds=delay)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                translation_placeholders={"seconds": str(round(delay))},
            ) from err
        except BambuForbiddenError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="forbidden_cloudflare"
                if err.cloudflare
                else "forbidden",
            ) from err
        except BambuError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err)},
            ) from err
        self.update_interval = FIRMWARE_INTERVAL
        return {info.serial: info for info in infos}
