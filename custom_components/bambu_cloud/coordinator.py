"""Coordinators: the cloud profile and bind list, and the firmware list."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers.storage import Store
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
from .bambu.models import BoundPrinter, FirmwareInfo, Profile, valid_serial
from .const import (
    DEFAULT_POLL_INTERVAL,
    DOMAIN,
    LOGGER,
    MAX_BACKOFF,
    STALE_AFTER,
)
from .trust import PrinterTrust

if TYPE_CHECKING:
    from .job_files import JobFiles
    from .print_tasks import PrintTasks

type BambuConfigEntry = ConfigEntry[BambuRuntimeData]

FIRMWARE_INTERVAL: Final = timedelta(hours=6)
# After a failed poll: try again sooner than the regular six hours.
FIRMWARE_RETRY: Final = timedelta(minutes=30)
# Entities keep the last good list through outages shorter than this.
FIRMWARE_STALE_AFTER: Final = timedelta(hours=24)

PRINTER_LIST_VERSION: Final = 1
# What a stored printer may hold: BoundPrinter's fields and their JSON types.
_STORED_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "serial": (str,),
    "name": (str,),
    "online": (bool,),
    "print_status": (str, type(None)),
    "model_id": (str, type(None)),
    "product_name": (str, type(None)),
    "access_code": (str, type(None)),
    "nozzle_diameter": (float, int, type(None)),
    "structure": (str, type(None)),
    "print_job": (str, type(None)),
}
_STORED_PROFILE: Final = ("uid", "name", "nickname")


@dataclass(slots=True)
class BambuRuntimeData:
    """What a loaded entry holds."""

    # None for a printer added without an account (LAN only).
    cloud: BambuCloud | None
    token: AccessToken | None
    # Where the platforms find the entry's printers: the account's bind list,
    # or the one printer of a LAN-only entry.
    coordinator: BambuCloudCoordinator | BambuLanCoordinator
    firmware: BambuFirmwareCoordinator | None
    hub: BambuHub
    trust: PrinterTrust
    # The LAN address each printer reported (net.info) or announced
    # (discovery): its LAN link and camera use it unless the options fix a
    # host or turn LAN off.
    learned_hosts: dict[str, str] = field(default_factory=dict)
    # The newest cloud task of each printer, shared by the cover image and the
    # job sensors (``print_tasks.entry_print_tasks`` makes it when first asked).
    tasks: PrintTasks | None = None
    # The running jobs' project files (objects, plate thumbnail), set up
    # before the platforms.
    job_files: JobFiles | None = None


@dataclass(frozen=True, slots=True)
class CloudData:
    """One successful poll of the account."""

    profile: Profile
    printers: dict[str, BoundPrinter]


def printer_list_key(entry_id: str) -> str:
    """Where one config entry keeps the printer list of its last good poll."""
    return f"{DOMAIN}.printers.{entry_id}"


def _printer_list_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    # Private: the list holds the printers' access codes, like the entry
    # holds the token.
    return Store(
        hass,
        PRINTER_LIST_VERSION,
        printer_list_key(entry_id),
        private=True,
        atomic_writes=True,
    )


async def async_remove_printer_list(hass: HomeAssistant, entry_id: str) -> None:
    """Forget the stored printer list of a deleted config entry."""
    await _printer_list_store(hass, entry_id).async_remove()


def _dump_cloud_data(data: CloudData) -> dict[str, Any]:
    """The stored form of a good poll: the profile's identity, every printer."""
    return {
        "profile": {key: getattr(data.profile, key) for key in _STORED_PROFILE},
        "printers": {
            serial: asdict(printer) for serial, printer in data.printers.items()
        },
    }


def _load_cloud_data(stored: object) -> CloudData | None:
    """The stored list as CloudData; None when anything in it is off.

    The file is ours, but a hand edit or a half-restored backup must not
    start the entry with printers that were never bound: all or nothing.
    """
    if not isinstance(stored, dict):
        return None
    profile, printers = stored.get("profile"), stored.get("printers")
    if not (
        isinstance(profile, dict)
        and isinstance(profile.get("uid"), str)
        and profile["uid"]
        and all(
            isinstance(profile.get(key), (str, type(None))) for key in _STORED_PROFILE
        )
        and isinstance(printers, dict)
    ):
        return None
    loaded: dict[str, BoundPrinter] = {}
    for serial, printer in printers.items():
        if (
            not valid_serial(serial)
            or not isinstance(printer, dict)
            or printer.keys() != _STORED_FIELDS.keys()
            or printer["serial"] != serial
            or not all(
                isinstance(printer[key], types) for key, types in _STORED_FIELDS.items()
            )
        ):
            return None
        loaded[serial] = BoundPrinter(**printer)
    return CloudData(
        Profile(
            uid=profile["uid"],
            name=profile.get("name"),
            nickname=profile.get("nickname"),
        ),
        loaded,
    )


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
    """Polls the account profile and bind list every 5 minutes.

    The interval is fixed (Home Assistant's appropriate-polling rule): users
    who want a fresh list call ``homeassistant.update_entity``. The poll
    interval option of earlier versions, still stored in old entries, is
    ignored.
    """

    def __init__(
        self, hass: HomeAssistant, entry: BambuConfigEntry, cloud: BambuCloud
    ) -> None:
        """Poll at the fixed interval."""
        self.poll_interval = DEFAULT_POLL_INTERVAL
        super().__init__(
            hass,
            entry,
            cloud,
            name=DOMAIN,
            interval=self.poll_interval,
            retry=self.poll_interval,
            stale_after=STALE_AFTER,
        )
        self._store = _printer_list_store(hass, entry.entry_id)
        self._stored: dict[str, Any] | None = None

    async def async_first_refresh(self) -> bool:
        """The first poll; with the cloud down, the last good list instead.

        Returns whether the cloud answered. When it cannot be reached (or
        answers with an error) and a list of an earlier good poll is stored,
        the entry starts from that list: LAN links come up, cloud-only
        printers stay unavailable until the cloud answers, and the regular
        polls keep trying. Without a stored list this raises
        ConfigEntryNotReady as usual; a refused token (ConfigEntryAuthFailed)
        always propagates and starts reauth.
        """
        stored = self._stored = await self._store.async_load()
        try:
            await self.async_config_entry_first_refresh()
        except ConfigEntryNotReady:
            if (last_good := _load_cloud_data(stored)) is None:
                raise
            self.data = last_good
            LOGGER.warning(
                "The Bambu Lab cloud cannot be reached; starting with the %d "
                "printer(s) of the last good poll and trying again every %s",
                len(last_good.printers),
                self.update_interval,
            )
            return False
        return True

    async def _async_poll(self) -> CloudData:
        profile = await self.cloud.get_profile()
        printers = await self.cloud.get_bound_printers()
        data = CloudData(profile, {printer.serial: printer for printer in printers})
        # Only a good poll is kept, and only when it differs from the stored.
        if (dumped := _dump_cloud_data(data)) != self._stored:
            await self._store.async_save(dumped)
            self._stored = dumped
        return data


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


@dataclass(frozen=True, slots=True)
class LanData:
    """The printer of a LAN-only entry, as the platforms read printers."""

    printers: dict[str, BoundPrinter]


class BambuLanCoordinator(DataUpdateCoordinator[LanData]):
    """The printer list of a LAN-only entry: its one printer, from the entry.

    There is no cloud to poll; the list exists so that the platforms and the
    entry set-up find a LAN-only printer where they find an account's
    printers, and serve it on the same code path (its only link is LAN).
    """

    config_entry: BambuConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: BambuConfigEntry, printer: BoundPrinter
    ) -> None:
        """Hold the printer; nothing is ever polled."""
        super().__init__(hass, LOGGER, config_entry=entry, name=f"{DOMAIN} lan")
        self.data = LanData({printer.serial: printer})

    async def _async_update_data(self) -> LanData:
        """Nothing to fetch: the printer comes from the entry."""
        return self.data
