"""The firmware coordinator: which firmware the cloud offers each printer."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from homeassistant.core import HomeAssistant

from .bambu.cloud import BambuCloud
from .bambu.models import FirmwareInfo
from .const import DOMAIN
from .coordinator import BambuCloudPoller, BambuConfigEntry

FIRMWARE_INTERVAL: Final = timedelta(hours=6)
# After a failed poll: try again sooner than the regular six hours.
FIRMWARE_RETRY: Final = timedelta(minutes=30)
# Entities keep the last good list through outages shorter than this.
FIRMWARE_STALE_AFTER: Final = timedelta(hours=24)


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
