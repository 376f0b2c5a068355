"""The account coordinator: polls the cloud profile and bind list."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .bambu.auth import AccessToken
from .bambu.cloud import BambuCloud
from .bambu.errors import (
    BambuAuthError,
    BambuError,
    BambuForbiddenError,
    BambuRateLimitedError,
)
from .bambu.hub import BambuHub
from .bambu.models import BoundPrinter, Profile
from .const import (
    CONF_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    DOMAIN,
    LOGGER,
    MAX_BACKOFF,
    STALE_AFTER,
)
from .trust import PrinterTrust

type BambuConfigEntry = ConfigEntry[BambuRuntimeData]


@dataclass(slots=True)
class BambuRuntimeData:
    """What a loaded entry holds."""

    cloud: BambuCloud
    token: AccessToken
    coordinator: BambuCloudCoordinator
    hub: BambuHub
    trust: PrinterTrust


@dataclass(frozen=True, slots=True)
class CloudData:
    """One successful poll of the account."""

    profile: Profile
    printers: dict[str, BoundPrinter]


class BambuCloudCoordinator(DataUpdateCoordinator[CloudData]):
    """Polls profile and bind list; honours 429 Retry-After."""

    config_entry: BambuConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: BambuConfigEntry, cloud: BambuCloud
    ) -> None:
        """Set the poll interval from the options (default five minutes)."""
        seconds = entry.options.get(CONF_POLL_INTERVAL)
        self.poll_interval = (
            timedelta(seconds=seconds) if seconds else DEFAULT_POLL_INTERVAL
        )
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=self.poll_interval,
        )
        self.cloud = cloud
        self.last_success: datetime | None = None
        self._not_before = 0.0
        self._stale_notified = False

    @property
    def fresh(self) -> bool:
        """Whether the last good data is recent enough to show."""
        return (
            self.last_success is not None
            and dt_util.utcnow() - self.last_success < STALE_AFTER
        )

    async def _async_update_data(self) -> CloudData:
        """Fetch profile and printers; notify entities once data turns stale."""
        try:
            data = await self._async_fetch()
        except UpdateFailed:
            # The coordinator only notifies on the first of several failures;
            # entities must still learn when their last good data went stale.
            self.hass.loop.call_soon(self._notify_if_stale)
            raise
        self.update_interval = self.poll_interval
        self.last_success = dt_util.utcnow()
        self._stale_notified = False
        return data

    @callback
    def _notify_if_stale(self) -> None:
        if not self.fresh and not self._stale_notified:
            self._stale_notified = True
            self.async_update_listeners()

    async def _async_fetch(self) -> CloudData:
        """Fetch profile and printers; map errors to HA's contract."""
        wait = self._not_before - time.monotonic()
        if wait > 0:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                translation_placeholders={"seconds": str(round(wait))},
            )
        try:
            profile = await self.cloud.get_profile()
            printers = await self.cloud.get_bound_printers()
        except BambuAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        except BambuRateLimitedError as err:
            delay = min(
                max(err.retry_after or 0.0, self.poll_interval.total_seconds()),
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
        return CloudData(profile, {printer.serial: printer for printer in printers})
