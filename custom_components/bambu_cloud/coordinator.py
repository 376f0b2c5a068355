"""Coordinators: the cloud profile and bind list, and the firmware list."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import aiohttp
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
from .bambu.models import BoundPrinter, FirmwareInfo, Profile
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

FIRMWARE_INTERVAL: Final = timedelta(hours=6)
# After a failed poll: try again sooner than the regular six hours.
FIRMWARE_RETRY: Final = timedelta(minutes=30)
# Entities keep the last good list through outages shorter than this.
FIRMWARE_STALE_AFTER: Final = timedelta(hours=24)


@dataclass(slots=True)
class BambuRuntimeData:
    """What a loaded entry holds."""

    cloud: BambuCloud
    token: AccessToken
    coordinator: BambuCloudCoordinator
    firmware: BambuFirmwareCoordinator
    hub: BambuHub
    trust: PrinterTrust


@dataclass(frozen=True, slots=True)
class CloudData:
    """One successful poll of the account."""

    profile: Profile
    printers: dict[str, BoundPrinter]


class BambuCloudPoller[DataT](DataUpdateCoordinator[DataT]):
    """Polls the cloud with one error contract and 429 back-off.

    401 starts reauth; 429 waits at least Retry-After (no request is sent
    before); 403, 5xx, timeouts and bad answers raise UpdateFailed, which logs
    one line when the cloud goes down and one when it recovers. Entities keep
    the last good data until it is older than ``stale_after``.
    """

    config_entry: BambuConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: BambuConfigEntry,
        cloud: BambuCloud,
        *,
        name: str,
        interval: timedelta,
        retry: timedelta,
        stale_after: timedelta,
    ) -> None:
        """Poll every interval; after a failure try again after retry."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=name, update_interval=interval
        )
        self.cloud = cloud
        self.interval = interval
        self.retry = retry
        self.stale_after = stale_after
        self.last_success: datetime | None = None
        self._not_before = 0.0
        self._stale_notified = False

    @property
    def fresh(self) -> bool:
        """Whether the last good data is recent enough to show."""
        return (
            self.last_success is not None
            and dt_util.utcnow() - self.last_success < self.stale_after
        )

    async def _async_poll(self) -> DataT:
        """One poll of the cloud (library errors propagate)."""
        raise NotImplementedError

    async def _async_update_data(self) -> DataT:
        """Poll; map errors; notify entities once the data turns stale."""
        try:
            data = await self._async_fetch()
        except UpdateFailed:
            # The base class only notifies on the first of several failures;
            # entities must still learn when their last good data went stale.
            self.hass.loop.call_soon(self._notify_if_stale)
            raise
        self.update_interval = self.interval
        self.last_success = dt_util.utcnow()
        self._stale_notified = False
        return data

    @callback
    def _notify_if_stale(self) -> None:
        if not self.fresh and not self._stale_notified:
            self._stale_notified = True
            self.async_update_listeners()

    async def _async_fetch(self) -> DataT:
        wait = self._not_before - time.monotonic()
        if wait > 0:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                translation_placeholders={"seconds": str(round(wait))},
            )
        self.update_interval = self.retry
        try:
            return await self._async_poll()
        except BambuAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        except BambuRateLimitedError as err:
            delay = min(
                max(err.retry_after or 0.0, self.retry.total_seconds()),
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
            # The library's wording is for maintainers; users get a
            # translated reason: the cloud was not reached, or it answered
            # with an error status or something unusable.
            LOGGER.debug("%s poll failed: %s", self.name, err)
            unreachable = isinstance(err.__cause__, (TimeoutError, aiohttp.ClientError))
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect" if unreachable else "cloud_error",
            ) from err


class BambuCloudCoordinator(BambuCloudPoller[CloudData]):
    """Polls the account profile and bind list (default every 5 minutes)."""

    def __init__(
        self, hass: HomeAssistant, entry: BambuConfigEntry, cloud: BambuCloud
    ) -> None:
        """Set the poll interval from the options."""
        seconds = entry.options.get(CONF_POLL_INTERVAL)
        self.poll_interval = (
            timedelta(seconds=seconds) if seconds else DEFAULT_POLL_INTERVAL
        )
        super().__init__(
            hass,
            entry,
            cloud,
            name=DOMAIN,
            interval=self.poll_interval,
            retry=self.poll_interval,
            stale_after=STALE_AFTER,
        )

    async def _async_poll(self) -> CloudData:
        profile = await self.cloud.get_profile()
        printers = await self.cloud.get_bound_printers()
        return CloudData(profile, {printer.serial: printer for printer in printers})


class BambuFirmwareCoordinator(BambuCloudPoller[dict[str, FirmwareInfo]]):
    """Polls the firmware list of every printer of the account in one request."""

    def __init__(
        self, hass: HomeAssistant, entry: BambuConfigEntry, cloud: BambuCloud
    ) -> None:
        """Poll every six hours; failures retry after half an hour."""
        super().__init__(
            hass,
            entry,
            cloud,
            name=f"{DOMAIN} firmware",
            interval=FIRMWARE_INTERVAL,
            retry=FIRMWARE_RETRY,
            stale_after=FIRMWARE_STALE_AFTER,
        )

    async def _async_poll(self) -> dict[str, FirmwareInfo]:
        infos = await self.cloud.get_firmware()
        return {info.serial: info for info in infos}
