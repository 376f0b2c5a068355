"""Image of each printer: the cover of its current or last cloud print task.

The task comes from the cloud's task list (newest first). It is fetched when
the entity is added, when the printer reports a new task id (a new job), and
at most once per account poll when the bind list names another job than the
one shown. A cover is downloaded once per task and kept in memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

import aiohttp
from homeassistant.components.image import (
    ImageEntity,
    ImageEntityDescription,
    infer_image_type,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util
from yarl import URL

from .bambu.cloud import BambuCloud
from .bambu.errors import BambuError
from .bambu.hub import BambuHub
from .bambu.models import PrintTask
from .bambu.state import ChangeSet
from .const import LOGGER
from .coordinator import BambuCloudCoordinator, BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .printer_tracking import track_printers

PARALLEL_UPDATES = 0

COVER_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)
MAX_COVER_BYTES: Final = 10 * 1024 * 1024
MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class BambuImageDescription(BambuPrinterEntityDescription, ImageEntityDescription):
    """An image that follows the printer's state (``views``: what it reads)."""


# A new task id means a new job: its cover is fetched.
COVER = BambuImageDescription(
    key="cover", translation_key="cover", views=frozenset({"task_id"})
)


@dataclass(frozen=True, slots=True)
class _Cover:
    """A downloaded cover and the task it belongs to."""

    task_id: str
    content: bytes
    content_type: str


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the cover image of every bound printer."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    if (cloud := runtime.cloud) is None or not isinstance(
        coordinator, BambuCloudCoordinator
    ):
        return  # the covers come from the cloud's task list

    def printer_entities(serial: str) -> list[ImageEntity]:
        return [BambuCoverImage(hass, cloud, coordinator, runtime.hub, serial, COVER)]

    track_printers(entry, async_add_entities, printer_entities)


class BambuCoverImage(BambuPrinterEntity, ImageEntity):
    """The cover of the printer's current or last print task."""

    def __init__(
        self,
        hass: HomeAssistant,
        cloud: BambuCloud,
        coordinator: BambuCloudCoordinator,
        hub: BambuHub,
        serial: str,
        description: BambuImageDescription,
    ) -> None:
        """Attach the image to the printer; nothing is fetched yet."""
        BambuPrinterEntity.__init__(self, hub, serial, description)
        ImageEntity.__init__(self, hass)
        self._cloud = cloud
        self._coordinator = coordinator
        self._session = async_get_clientsession(hass)
        self._task: PrintTask | None = None
        self._cover: _Cover | None = None
        self._download_lock = asyncio.Lock()
        self._worker: asyncio.Task[None] | None = None
        self._again = False
        self._fetch_failed = False
        # The printer's task id and the bind list's job already acted on.
        self._job_seen: str | None = None
        self._polled_job: str | None = None

    @property
    def available(self) -> bool:
        """Available while there is a task with a cover to show."""
        return self._task is not None and self._task.cover is not None

    def snapshot(self) -> object:
        """Task and cover shown."""
        return (
            self.available,
            self._task and self._task.id,
            self._attr_image_last_updated,
        )

    async def async_added_to_hass(self) -> None:
        """Fetch the newest task now; follow new jobs and account polls."""
        await super().async_added_to_hass()
        self._job_seen = self.state_data.task_id
        self._polled_job = self._bound_job()
        self.async_on_remove(
            self._coordinator.async_add_listener(self._handle_coordinator_update)
        )
        self._schedule_refresh()

    async def async_will_remove_from_hass(self) -> None:
        """Stop a fetch in flight."""
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
        await super().async_will_remove_from_hass()

    def _bound_job(self) -> str | None:
        printer = self._coordinator.data.printers.get(self.serial)
        return None if printer is None else printer.print_job

    @callback
    def _handle_change(self, changed: ChangeSet) -> None:
        """A new task id from the printer means a new job: fetch its task."""
        if "task_id" not in changed:
            return
        job = self.state_data.task_id
        if job is None or job == self._job_seen:
            return
        self._job_seen = job
        if self._task is None or self._task.id != job:
            self._schedule_refresh()

    @callback
    def _handle_coordinator_update(self) -> None:
        """At most once per poll: refetch when the bind list names another job."""
        if not self._coordinator.last_update_success:
            return
        job = self._bound_job()
        changed = job != self._polled_job
        self._polled_job = job
        shown = self._task.id if self._task is not None else None
        if self._fetch_failed or (changed and (job is None or job != shown)):
            self._schedule_refresh()

    @callback
    def _schedule_refresh(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._again = True
            return
        self._worker = self.hass.async_create_background_task(
            self._run_refresh(), name=f"bambu_cloud cover {self.serial}"
        )

    async def _run_refresh(self) -> None:
        while True:
            self._again = False
            await self._async_refresh()
            current = self._task is not None and self._task.id == self._job_seen
            if not self._again or current:
                return

    async def _async_refresh(self) -> None:
        """Fetch the newest task; download its cover when it is a new one."""
        try:
            tasks = await self._cloud.get_tasks(self.serial, limit=1)
        except BambuError as err:
            LOGGER.debug("%s: cannot fetch the print tasks: %s", self.serial, err)
            self._fetch_failed = True
            return
        self._fetch_failed = False
        task = next((t for t in tasks if t.serial in (None, self.serial)), None)
        self._task = task
        if task is not None and task.cover is not None:
            await self._async_cover(task.id, task.cover)
        self._handle_written()

    @callback
    def _handle_written(self) -> None:
        current = self.snapshot()
        if current != self._written:
            self._written = current
            self.async_write_ha_state()

    async def _async_cover(self, task_id: str, url: str) -> _Cover | None:
        """The cover of a task: cached, else downloaded once."""
        async with self._download_lock:
            if self._cover is not None and self._cover.task_id == task_id:
                return self._cover
            if (cover := await self._download(task_id, url)) is None:
                return None
            self._cover = cover
            self._attr_content_type = cover.content_type
            self._attr_image_last_updated = dt_util.utcnow()
            return cover

    async def _download(self, task_id: str, url: str) -> _Cover | None:
        """Download a cover (no credentials: the URL is public)."""
        try:
            async with asyncio.timeout(COVER_TIMEOUT.total):
                data, declared = await self._fetch(URL(url))
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            LOGGER.debug(
                "%s: cannot download the cover of %s: %r", self.serial, task_id, err
            )
            return None
        content_type = _image_type(declared) or infer_image_type(data)
        if content_type is None:
            LOGGER.debug(
                "%s: the cover of %s is not an image (%s)",
                self.serial,
                task_id,
                declared,
            )
            return None
        return _Cover(task_id, data, content_type)

    async def _fetch(self, url: URL) -> tuple[bytes, str]:
        """GET over https only, following redirects only to https URLs.

        The cloud names the URL, so a plain-HTTP one (or a redirect to one)
        could be altered on the way; it is refused before anything is sent.
        Redirects are followed here, not by aiohttp, to check every hop.
        """
        for _ in range(MAX_REDIRECTS + 1):
            if url.scheme != "https":
                raise ValueError(f"cover URL is not https: {url.scheme}")
            async with self._session.get(
                url, timeout=COVER_TIMEOUT, allow_redirects=False
            ) as response:
                if response.status in _REDIRECTS:
                    location = response.headers.get(aiohttp.hdrs.LOCATION)
                    if not location:
                        raise ValueError("redirect without a location")
                    url = url.join(URL(location))
                    continue
                response.raise_for_status()
                if (response.content_length or 0) > MAX_COVER_BYTES:
                    raise ValueError("cover too large")
                content = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    content += chunk
                    if len(content) > MAX_COVER_BYTES:
                        raise ValueError("cover too large")
                declared = response.headers.get(aiohttp.hdrs.CONTENT_TYPE, "")
                return bytes(content), declared
        raise ValueError("too many redirects")

    async def async_image(self) -> bytes | None:
        """The cover of the task shown (downloaded now if an earlier try failed)."""
        task = self._task
        if task is None or task.cover is None:
            return None
        cover = await self._async_cover(task.id, task.cover)
        if cover is None:
            return None
        self._handle_written()
        return cover.content


def _image_type(declared: str) -> str | None:
    """The declared content type without parameters, if it is an image type."""
    content_type = declared.split(";", 1)[0].strip().lower()
    return content_type if content_type.startswith("image/") else None
