"""The running job's project file: objects, plate thumbnail and estimates.

A printer's report names its job (task id, file, name) but not what is in
it; the ``.3mf`` on the printer's storage does. When a printer reports a new
job, its ``.3mf`` is read over FTPS through the hub, in the background and
once per job (a few tries), and the plate being printed is parsed for its
objects (the ids ``skip_objects`` takes), its thumbnail (the cover when
the cloud has none) and the slicer's estimates and bed type (the job
details when the cloud has no task for the job). Printers without a LAN
link have no storage to read: they simply have no objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from .bambu.ftps import StorageError, StorageErrorReason
from .bambu.hub import AVAILABILITY, BambuHub, PrinterLink
from .bambu.models import BedType
from .bambu.project_file import (
    PlateInfo,
    PrintObject,
    ProjectFileError,
    plate_indexes,
    read_plate,
)
from .bambu.state import ChangeSet, PrinterState
from .const import LOGGER
from .coordinator import BambuConfigEntry

# What names a job in the report (the hub passes view names).
JOB_VIEWS: Final = frozenset(
    {"task_id", "gcode_file", "job_name", "gcode_state", AVAILABILITY}
)
# Waits before the second and later tries to read a job's file.
RETRY_DELAYS: Final = (10.0, 60.0)
# A project file larger than this is not read (thumbnails and object lists
# sit in small parts of it, but the archive is read as a whole).
MAX_PROJECT_BYTES: Final = 64 * 1024 * 1024
# How long a file started by the print_file action names the next job.
EXPECT_WITHIN: Final = 600.0
# Folders where firmware keeps a job's .3mf besides the path it reports:
# the storage root, what Bambu Studio sends, what MakerWorld prints.
_JOB_FOLDERS: Final = ("/", "/cache/", "/model/")
# Failures another try cannot mend: no LAN link, refused certificate or
# access code, a file too large or not named properly.
_FINAL: Final = frozenset(
    {
        StorageErrorReason.NO_ADDRESS,
        StorageErrorReason.TLS,
        StorageErrorReason.AUTH,
        StorageErrorReason.TOO_LARGE,
        StorageErrorReason.INVALID_PATH,
    }
)


def job_active(state: PrinterState) -> bool:
    """Whether the printer reports a job under way (preparing, printing, paused)."""
    job = state.gcode_state
    return job is not None and job.active


@dataclass(frozen=True, slots=True)
class JobKey:
    """What tells one job from the next in a printer's report."""

    task_id: str | None
    gcode_file: str | None
    name: str | None

    @classmethod
    def of(cls, state: PrinterState) -> JobKey:
        """The key of the job a printer reports."""
        return cls(state.task_id, state.gcode_file, state.job_name)


@dataclass(frozen=True, slots=True)
class JobFile:
    """What the running job's project file says about the plate printed."""

    key: JobKey
    path: str
    plate: int
    objects: tuple[PrintObject, ...]
    # The plate's PNG thumbnail, None when the file has none.
    thumbnail: bytes | None = field(repr=False)
    # The slicer's estimates: grams and metres of filament; the build plate
    # the plate was sliced for. None when the file does not say.
    weight: float | None = None
    length: float | None = None
    bed_type: BedType | None = None

    @property
    def object_ids(self) -> frozenset[int]:
        """The ids of the printable objects."""
        return frozenset(obj.id for obj in self.objects)


@dataclass(slots=True)
class _Printer:
    """One printer's job, its file and the work reading it."""

    link: PrinterLink
    unlisten: Callable[[], None]
    key: JobKey | None = None
    # The job of ``key`` ended: the next job is new even if named alike.
    ended: bool = False
    file: JobFile | None = None
    worker: asyncio.Task[None] | None = None
    # The next try, waiting (a timer: nothing runs meanwhile).
    retry: Callable[[], None] | None = None
    # (path, plate, when) of the last print_file sent to this printer.
    expected: tuple[str, int, float] | None = None
    listeners: list[Callable[[], None]] = field(default_factory=list)


def _norm(path: str) -> str:
    return "/" + path.strip().lstrip("/")


def file_stem(path: str) -> str:
    """A project file's name without folder and ``.gcode.3mf`` / ``.3mf``.

    Printers name a job after it (``subtask_name``).
    """
    name = PurePosixPath(path.strip()).name
    name = name[: -len(".3mf")] if name.lower().endswith(".3mf") else name
    return name.removesuffix(".gcode")


def candidate_paths(key: JobKey, expected: str | None = None) -> tuple[str, ...]:
    """Where the job's ``.3mf`` may be on the printer's storage, likeliest first.

    The file a print_file action named; the reported file when it is a
    ``.3mf`` (P1/A1 report the file name, cloud jobs a cache path); else
    the job name in the folders firmware keeps jobs in (X1 firmware reports
    the G-code inside the unpacked archive).
    """
    paths: list[str] = []
    if expected:
        paths.append(_norm(expected))
    reported = (key.gcode_file or "").strip()
    if reported.lower().endswith(".3mf"):
        name = PurePosixPath(_norm(reported))
        paths.append(str(name))
        paths.extend(folder + name.name for folder in _JOB_FOLDERS)
    if key.name:
        stem = file_stem(key.name)
        if stem and "/" not in key.name:
            for folder in _JOB_FOLDERS:
                paths.extend((f"{folder}{stem}.gcode.3mf", f"{folder}{stem}.3mf"))
    return tuple(dict.fromkeys(paths))


def read_job_plate(data: bytes, wanted: int | None) -> tuple[int, PlateInfo]:
    """The plate printed and what the file says about it (blocking).

    The plate the printer or the action named; else the file's only (or
    first) plate with G-code; else plate 1.
    """
    if wanted is None:
        indexes = plate_indexes(data)
        wanted = indexes[0] if indexes else 1
    return wanted, read_plate(data, wanted)


class JobFiles:
    """The project files of the running jobs of an entry's printers."""

    def __init__(
        self,
        hass: HomeAssistant,
        hub: BambuHub,
        *,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        """Follow nothing yet; ``sync`` names the printers to follow."""
        self._hass = hass
        self._hub = hub
        self.retry_delays = retry_delays
        self._printers: dict[str, _Printer] = {}

    # -- what entities and actions read ------------------------------------

    def job_file(self, serial: str) -> JobFile | None:
        """The file of the printer's current (or last) job, once read."""
        printer = self._printers.get(serial)
        return None if printer is None else printer.file

    def current(self, serial: str) -> JobFile | None:
        """The file of the job the printer reports right now, once read."""
        found = self.job_file(serial)
        link = self._hub.printers.get(serial)
        if found is None or link is None or found.key != JobKey.of(link.state):
            return None
        return found

    @callback
    def listen(self, serial: str, listener: Callable[[], None]) -> Callable[[], None]:
        """Call listener whenever the printer's job file changes; returns unlisten."""
        printer = self._printers.get(serial)
        if printer is None:
            return lambda: None
        listeners = printer.listeners
        listeners.append(listener)

        def unlisten() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return unlisten

    @callback
    def expect(self, serial: str, path: str | None, plate: int = 1) -> None:
        """The print_file action sends ``path`` (None: it failed).

        The next job named like that file reads it first, with its plate:
        the printer may report a path inside the unpacked archive instead.
        """
        if (printer := self._printers.get(serial)) is not None:
            printer.expected = None if path is None else (path, plate, time.monotonic())

    # -- following printers ------------------------------------------------

    @callback
    def sync(self, serials: Iterable[str]) -> None:
        """Follow exactly these printers of the hub (a new link replaces the old)."""
        wanted = {s for s in serials if s in self._hub.printers}
        for serial, printer in list(self._printers.items()):
            if serial not in wanted or self._hub.printers[serial] is not printer.link:
                self._forget(serial)
        for serial in sorted(wanted - self._printers.keys()):
            self._printers[serial] = _Printer(
                link=self._hub.printers[serial],
                unlisten=self._hub.listen(serial, self._listener(serial), JOB_VIEWS),
            )
            self._check(serial)

    @callback
    def _forget(self, serial: str) -> None:
        printer = self._printers.pop(serial)
        printer.unlisten()
        _stop_reading(printer)

    async def async_stop(self) -> None:
        """Stop following; reads in flight are cancelled and awaited."""
        workers = [p.worker for p in self._printers.values() if p.worker is not None]
        for serial in list(self._printers):
            self._forget(serial)
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def _listener(self, serial: str) -> Callable[[ChangeSet], None]:
        @callback
        def changed(_: ChangeSet) -> None:
            self._check(serial)

        return changed

    @callback
    def _check(self, serial: str) -> None:
        """A new job under way: forget the last one's file, read the new one's."""
        printer = self._printers[serial]
        state = printer.link.state
        if not printer.link.available:
            return
        if not job_active(state):
            # The same file printed again may have been replaced meanwhile
            # (Bambu Studio sends a project sliced again under its name).
            printer.ended = printer.key is not None
            return
        key = JobKey.of(state)
        if key == printer.key and not printer.ended:
            return
        printer.key, printer.ended = key, False
        _stop_reading(printer)
        expected, printer.expected = printer.expected, None
        if expected is not None and (
            time.monotonic() - expected[2] > EXPECT_WITHIN
            or (key.name is not None and key.name != file_stem(expected[0]))
        ):
            expected = None
        if printer.file is not None:
            printer.file = None
            _tell(printer)
        spec = printer.link.spec
        if spec.lan_host and spec.access_code:  # else no storage to read
            self._try(serial, printer, key, expected, 1)

    @callback
    def _try(
        self,
        serial: str,
        printer: _Printer,
        key: JobKey,
        expected: tuple[str, int, float] | None,
        attempt: int,
    ) -> None:
        printer.retry = None
        if self._printers.get(serial) is not printer or printer.key != key:
            return  # pragma: no cover - the timer is cancelled with the job
        printer.worker = self._hass.async_create_background_task(
            self._async_read(serial, printer, key, expected, attempt),
            name=f"bambu_cloud job file {serial}",
        )

    # -- reading -----------------------------------------------------------

    async def _async_read(
        self,
        serial: str,
        printer: _Printer,
        key: JobKey,
        expected: tuple[str, int, float] | None,
        attempt: int,
    ) -> None:
        """One try to read the job's file; a failure may schedule the next."""
        try:
            found = await self._async_fetch(
                serial, key, expected, printer.link.state.plate
            )
        except ProjectFileError as err:
            LOGGER.debug("%s: the job's file cannot be read: %s", serial, err)
            return
        except StorageError as err:
            LOGGER.debug(
                "%s: reading the job's file failed (try %d): %s", serial, attempt, err
            )
            if err.reason in _FINAL:
                return
            if attempt > len(self.retry_delays):
                LOGGER.warning(
                    "%s: the file of the running job could not be read from "
                    "the printer's storage (%s)",
                    serial,
                    err.reason,
                )
                return

            @callback
            def again(_: object) -> None:
                self._try(serial, printer, key, expected, attempt + 1)

            printer.retry = async_call_later(
                self._hass, self.retry_delays[attempt - 1], again
            )
            return
        if found is not None:
            printer.file = found
            _tell(printer)

    async def _async_fetch(
        self,
        serial: str,
        key: JobKey,
        expected: tuple[str, int, float] | None,
        reported_plate: int | None,
    ) -> JobFile | None:
        """Find, read and parse the job's file; None when it is not there.

        The plate is the one print_file sent, else the one the report names
        (its G-code path or ``plate_idx``: the state's plate view).
        """
        listed = {file.path for file in await self._hub.async_list_files(serial)}
        wanted = candidate_paths(key, expected[0] if expected else None)
        path = next((p for p in wanted if p in listed), None)
        if path is None:
            LOGGER.debug("%s: the job's file is not on the printer's storage", serial)
            return None
        data = await self._hub.async_read_file(
            serial, path, max_bytes=MAX_PROJECT_BYTES
        )
        plate = (
            expected[1]
            if expected is not None and _norm(expected[0]) == path
            else reported_plate
        )
        index, info = await self._hass.async_add_executor_job(
            read_job_plate, data, plate
        )
        return JobFile(
            key=key,
            path=path,
            plate=index,
            objects=info.objects,
            thumbnail=info.thumbnail,
            weight=info.filament_weight,
            length=info.filament_length,
            bed_type=info.bed_type,
        )


def _stop_reading(printer: _Printer) -> None:
    if printer.worker is not None:
        printer.worker.cancel()
        printer.worker = None
    if printer.retry is not None:
        printer.retry()
        printer.retry = None


def _tell(printer: _Printer) -> None:
    for listener in list(printer.listeners):
        listener()


@callback
def async_setup_job_files(hass: HomeAssistant, entry: BambuConfigEntry) -> JobFiles:
    """Follow the entry's printers' jobs until the entry unloads."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    job_files = JobFiles(hass, runtime.hub)

    @callback
    def _sync() -> None:
        job_files.sync(coordinator.data.printers)

    _sync()
    entry.async_on_unload(coordinator.async_add_listener(_sync))
    entry.async_on_unload(job_files.async_stop)
    return job_files
