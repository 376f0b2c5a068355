"""The newest cloud print task of each printer, shared by what shows it.

The cover image and the job sensors (bed type, weight, filament length, plate
name) show the same task, so it is fetched once for all of them: when the
first of them is added, when the printer reports a new task id (a new job),
and at most once per account poll when the bind list names another job than
the one fetched, or the last fetch failed. A printer nobody shows the task of
is not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from homeassistant.core import HomeAssistant, callback

from .bambu.cloud import BambuCloud
from .bambu.errors import BambuError
from .bambu.hub import BambuHub
from .bambu.models import PrintTask
from .bambu.state import ChangeSet, PrinterState
from .const import LOGGER
from .coordinator import BambuCloudCoordinator, BambuConfigEntry

# The only view whose change means a new job.
TASK_VIEWS: Final = frozenset({"task_id"})

type TaskListener = Callable[[], None]


def entry_print_tasks(entry: BambuConfigEntry) -> PrintTasks | None:
    """The entry's shared tasks; None for an entry without an account."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    if runtime.cloud is None or not isinstance(coordinator, BambuCloudCoordinator):
        return None
    if runtime.tasks is None:
        runtime.tasks = PrintTasks(
            coordinator.hass, runtime.cloud, coordinator, runtime.hub
        )
    return runtime.tasks


class PrintTasks:
    """The newest print task of each followed printer of one account."""

    def __init__(
        self,
        hass: HomeAssistant,
        cloud: BambuCloud,
        coordinator: BambuCloudCoordinator,
        hub: BambuHub,
    ) -> None:
        """Follow nothing until something subscribes."""
        self.hass = hass
        self.cloud = cloud
        self.coordinator = coordinator
        self.hub = hub
        self._printers: dict[str, _PrinterTasks] = {}

    def task(self, serial: str) -> PrintTask | None:
        """The printer's newest task as last fetched (None before or without)."""
        printer = self._printers.get(serial)
        return None if printer is None else printer.task

    @callback
    def subscribe(self, serial: str, listener: TaskListener) -> Callable[[], None]:
        """Call listener after each fetch of the printer's task; returns unsubscribe.

        The first subscriber of a printer starts following it (and fetching
        its task), the last one to leave stops it.
        """
        printer = self._printers.get(serial)
        if printer is None:
            printer = self._printers[serial] = _PrinterTasks(self, serial)
            printer.listeners.append(listener)
            printer.start()
        else:
            printer.listeners.append(listener)

        @callback
        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                printer.listeners.remove(listener)
            if not printer.listeners and self._printers.get(serial) is printer:
                del self._printers[serial]
                printer.stop()

        return unsubscribe


class _PrinterTasks:
    """One printer's newest task and what makes it fetch again."""

    def __init__(self, owner: PrintTasks, serial: str) -> None:
        self.owner = owner
        self.serial = serial
        self.listeners: list[TaskListener] = []
        self.task: PrintTask | None = None
        self._fetch_failed = False
        self._worker: asyncio.Task[None] | None = None
        self._again = False
        # The printer's task id and the bind list's job already acted on.
        self._job_seen: str | None = None
        self._polled_job: str | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def _state(self) -> PrinterState:
        return self.owner.hub.printers[self.serial].state

    def _bound_job(self) -> str | None:
        printer = self.owner.coordinator.data.printers.get(self.serial)
        return None if printer is None else printer.print_job

    @callback
    def start(self) -> None:
        """Fetch the newest task now; follow new jobs and account polls."""
        self._job_seen = self._state.task_id
        self._polled_job = self._bound_job()
        self._unsubscribe = [
            self.owner.hub.listen(self.serial, self._handle_change, TASK_VIEWS),
            self.owner.coordinator.async_add_listener(self._handle_poll),
        ]
        self._schedule_refresh()

    @callback
    def stop(self) -> None:
        """Stop following the printer and a fetch in flight."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()

    @callback
    def _handle_change(self, changed: ChangeSet) -> None:
        """A new task id from the printer means a new job: fetch its task."""
        if "task_id" not in changed:
            return
        job = self._state.task_id
        if job is None or job == self._job_seen:
            return
        self._job_seen = job
        if self.task is None or self.task.id != job:
            self._schedule_refresh()

    @callback
    def _handle_poll(self) -> None:
        """At most once per poll: refetch when the bind list names another job."""
        if not self.owner.coordinator.last_update_success:
            return
        job = self._bound_job()
        changed = job != self._polled_job
        self._polled_job = job
        shown = self.task.id if self.task is not None else None
        if self._fetch_failed or (changed and (job is None or job != shown)):
            self._schedule_refresh()

    @callback
    def _schedule_refresh(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._again = True
            return
        self._worker = self.owner.hass.async_create_background_task(
            self._run_refresh(), name=f"bambu_cloud print task {self.serial}"
        )

    async def _run_refresh(self) -> None:
        while True:
            self._again = False
            await self._async_refresh()
            current = self.task is not None and self.task.id == self._job_seen
            if not self._again or current:
                return

    async def _async_refresh(self) -> None:
        """Fetch the newest task and tell every listener."""
        try:
            tasks = await self.owner.cloud.get_tasks(self.serial, limit=1)
        except BambuError as err:
            LOGGER.debug("%s: cannot fetch the print tasks: %s", self.serial, err)
            self._fetch_failed = True
            return
        self._fetch_failed = False
        self.task = next((t for t in tasks if t.serial in (None, self.serial)), None)
        for listener in list(self.listeners):
            listener()
