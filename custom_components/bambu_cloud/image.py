"""Image of each printer: the cover of its current or last print job.

The task is the newest of the cloud's task list, fetched for this image and
the job sensors together (``print_tasks``: when the entity is added, on a new
job, and when an account poll names another job). A cover is downloaded once
per task and kept in memory. When the cloud has no cover for the job the
printer runs (a LAN job, a task without cover, a printer without an
account), the plate thumbnail of the job's project file is shown
(``job_files``, read from the printer's storage).
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

from .bambu.hub import BambuHub
from .bambu.models import PrintTask
from .const import LOGGER
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .job_files import JobFile, JobFiles
from .print_tasks import PrintTasks, entry_print_tasks
from .printer_tracking import track_printers

PARALLEL_UPDATES = 0

COVER_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)
MAX_COVER_BYTES: Final = 10 * 1024 * 1024
MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CHUNK: Final = 64 * 1024
# What plate thumbnails of project files are.
PLATE_CONTENT_TYPE: Final = "image/png"


@dataclass(frozen=True, kw_only=True)
class BambuImageDescription(BambuPrinterEntityDescription, ImageEntityDescription):
    """An image that follows the printer's state (``views``: what it reads)."""


# The task (and so the cover) comes from ``print_tasks``, which follows the
# printer's task id itself: the image reads no view.
COVER = BambuImageDescription(key="cover", translation_key="cover", views=frozenset())


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
    tasks = entry_print_tasks(entry)
    job_files = runtime.job_files
    if tasks is None and job_files is None:
        return  # neither the cloud's covers nor plate thumbnails

    def printer_entities(serial: str) -> list[ImageEntity]:
        return [BambuCoverImage(hass, tasks, job_files, runtime.hub, serial, COVER)]

    track_printers(entry, async_add_entities, printer_entities)


class BambuCoverImage(BambuPrinterEntity, ImageEntity):
    """The cover of the printer's current or last print job.

    The cloud task's cover, or the plate thumbnail of the job's file when
    the cloud has none for the job (without an account: always).
    """

    def __init__(
        self,
        hass: HomeAssistant,
        tasks: PrintTasks | None,
        job_files: JobFiles | None,
        hub: BambuHub,
        serial: str,
        description: BambuImageDescription,
    ) -> None:
        """Attach the image to the printer; nothing is fetched yet."""
        BambuPrinterEntity.__init__(self, hub, serial, description)
        ImageEntity.__init__(self, hass)
        self._tasks = tasks
        self._job_files = job_files
        self._shown: tuple[object, ...] | None = None
        self._session = async_get_clientsession(hass)
        self._task: PrintTask | None = None
        self._cover: _Cover | None = None
        self._download_lock = asyncio.Lock()
        self._worker: asyncio.Task[None] | None = None
        # The task whose cover could not be downloaded: its plate is shown.
        self._cover_failed: str | None = None

    @property
    def available(self) -> bool:
        """Available while there is a cover or a plate thumbnail to show."""
        return self._source() is not None

    def _plate(self) -> JobFile | None:
        """The job file whose thumbnail is shown instead of a cloud cover."""
        job = None if self._job_files is None else self._job_files.job_file(self.serial)
        if job is None or job.thumbnail is None:
            return None
        task = self._task
        if (
            task is not None
            and task.cover is not None
            and task.id == job.key.task_id
            and task.id != self._cover_failed
        ):
            return None  # the cloud's cover of the same job
        return job

    def _source(self) -> tuple[object, ...] | None:
        """What is shown: a plate thumbnail, a task's cover, or nothing."""
        if (job := self._plate()) is not None:
            return ("plate", job.key, job.path, job.plate)
        task = self._task
        if task is not None and task.cover is not None:
            return ("task", task.id)
        return None

    def snapshot(self) -> object:
        """Task and cover shown."""
        return (
            self.available,
            self._source(),
            self._attr_image_last_updated,
        )

    async def async_added_to_hass(self) -> None:
        """Show the printer's newest task, fetched now if nobody has yet."""
        await super().async_added_to_hass()
        if self._job_files is not None:
            self.async_on_remove(
                self._job_files.listen(self.serial, self._handle_written)
            )
        if self._tasks is None:
            self._handle_written()
            return
        self.async_on_remove(self._tasks.subscribe(self.serial, self._task_fetched))
        if self._tasks.task(self.serial) is not None:
            self._task_fetched()

    async def async_will_remove_from_hass(self) -> None:
        """Stop a download in flight."""
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
        await super().async_will_remove_from_hass()

    @callback
    def _task_fetched(self) -> None:
        """Show the task just fetched; a new cover is downloaded first."""
        if self._tasks is None:  # pragma: no cover - only subscribed with tasks
            return
        task = self._task = self._tasks.task(self.serial)
        if task is None or task.cover is None or self._plate() is not None:
            self._handle_written()
            return
        worker = self._worker
        if worker is not None and not worker.done():
            worker.cancel()  # the cover of an older task
        self._worker = self.hass.async_create_background_task(
            self._async_show(task.id, task.cover),
            name=f"bambu_cloud cover {self.serial}",
        )

    async def _async_show(self, task_id: str, url: str) -> None:
        await self._async_cover(task_id, url)
        self._handle_written()

    @callback
    def _handle_written(self) -> None:
        source = self._source()
        if source != self._shown:
            # Another image from now on (a cover not downloaded yet is
            # dated by its download).
            self._shown = source
            if source is not None and (
                source[0] == "plate"
                or (self._cover is not None and self._cover.task_id == source[1])
            ):
                self._attr_image_last_updated = dt_util.utcnow()
        self.write_if_changed()

    async def _async_cover(self, task_id: str, url: str) -> _Cover | None:
        """The cover of a task: cached, else downloaded once."""
        async with self._download_lock:
            if self._cover is not None and self._cover.task_id == task_id:
                return self._cover
            if (cover := await self._download(task_id, url)) is None:
                self._cover_failed = task_id
                return None
            self._cover = cover
            if self._cover_failed == task_id:
                self._cover_failed = None
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
        """The image shown (a cover is downloaded now if an earlier try failed)."""
        if (job := self._plate()) is not None:
            self._attr_content_type = PLATE_CONTENT_TYPE
            return job.thumbnail
        task = self._task
        if task is None or task.cover is None:
            return None
        cover = await self._async_cover(task.id, task.cover)
        if cover is None:
            if (job := self._plate()) is not None:  # the job's own plate
                self._attr_content_type = PLATE_CONTENT_TYPE
                self._handle_written()
                return job.thumbnail
            return None
        self._attr_content_type = cover.content_type
        self._handle_written()
        return cover.content


def _image_type(declared: str) -> str | None:
    """The declared content type without parameters, if it is an image type."""
    content_type = declared.split(";", 1)[0].strip().lower()
    return content_type if content_type.startswith("image/") else None
