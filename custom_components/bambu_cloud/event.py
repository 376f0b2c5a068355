"""Events of each printer: print job transitions and HMS errors.

Both entities compare each report with the previous one. The first state seen
after Home Assistant starts, or after the printer comes back from being
unavailable, is only remembered: a restart or reconnect fires nothing. After a
reconnect the cached state may be older than the printer, so the first report
that follows (within SETTLE_SECONDS, timed by Home Assistant's scheduler)
replaces the remembered state silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_call_later

from .bambu.enums import JobState
from .bambu.hub import AVAILABILITY
from .bambu.state import ChangeSet, HmsEntry
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .hms_text import HmsTextEntity
from .printer_tracking import track_printers

PARALLEL_UPDATES = 0

STARTED: Final = "started"
FINISHED: Final = "finished"
FAILED: Final = "failed"
PAUSED: Final = "paused"
RESUMED: Final = "resumed"
ERROR_RAISED: Final = "error_raised"
ERROR_CLEARED: Final = "error_cleared"

# How long after a reconnect the first report still counts as the baseline.
SETTLE_SECONDS: Final = 10.0
# Change names that come without a report (presence and availability).
_NO_REPORT: Final = frozenset({AVAILABILITY, "online"})

_RUNNING: Final = frozenset({JobState.PREPARE, JobState.RUNNING})
_ENDED: Final = {
    JobState.PAUSE: PAUSED,
    JobState.FINISH: FINISHED,
    JobState.FAILED: FAILED,
}


@dataclass(frozen=True, kw_only=True)
class BambuEventDescription(BambuPrinterEntityDescription, EventEntityDescription):
    """An event entity; ``views`` are the views whose transitions it fires on."""


PRINT_JOB = BambuEventDescription(
    key="print_job",
    translation_key="print_job",
    event_types=[STARTED, FINISHED, FAILED, PAUSED, RESUMED],
    views=frozenset({"gcode_state"}),
)
HMS = BambuEventDescription(
    key="hms",
    translation_key="hms",
    event_types=[ERROR_RAISED, ERROR_CLEARED],
    views=frozenset({"hms"}),
)


def job_event(previous: JobState, current: JobState) -> str | None:
    """The event a job state transition means, None for no event."""
    if current in _RUNNING:
        if previous is JobState.PAUSE:
            return RESUMED
        return None if previous.active else STARTED
    if not previous.active:
        return None
    return _ENDED.get(current)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the job and HMS event entities of every bound printer."""
    hub = entry.runtime_data.hub

    def printer_entities(serial: str) -> list[EventEntity]:
        return [
            BambuJobEvent(hub, serial, PRINT_JOB),
            BambuHmsEvent(hub, serial, HMS),
        ]

    track_printers(entry, async_add_entities, printer_entities)


class _BambuTransitionEvent(BambuPrinterEntity, EventEntity):
    """Fires on changes of its views, from a baseline taken once available."""

    entity_description: BambuEventDescription
    _has_baseline = False
    # Set while settling (the next report replaces the baseline silently):
    # cancels the timer that ends the window.
    _cancel_settling: CALLBACK_TYPE | None = None

    @property
    def listen_views(self) -> frozenset[str] | None:
        """Every change set while settling, else the views fired on.

        While settling any report replaces the baseline. Otherwise only the
        description's views are compared, and availability (in the base
        class's set) is all that can take the baseline away or bring the
        entity back: a printer's other reports need not wake it.
        """
        if self._cancel_settling is not None:
            return None
        return super().listen_views

    async def async_added_to_hass(self) -> None:
        """Take the baseline if the printer already reports."""
        await super().async_added_to_hass()
        self.async_on_remove(self._stop_settling)
        if self.available:
            self._remember()
            self._has_baseline = True

    @callback
    def _handle_change(self, changed: ChangeSet) -> None:
        settling = self._cancel_settling is not None
        if not self.available:
            self._has_baseline = False
        elif not self._has_baseline:
            self._remember()
            self._has_baseline = True
            if not changed - _NO_REPORT:
                # Back without a report yet: the cached state may be stale.
                self._stop_settling()
                self._cancel_settling = async_call_later(
                    self.hass, SETTLE_SECONDS, self._settled
                )
        elif self._cancel_settling is not None and changed - _NO_REPORT:
            self._remember()
            self._stop_settling()
        elif not self.entity_description.views.isdisjoint(changed):
            self._compare()
        if (self._cancel_settling is not None) != settling:
            self._listen()
        super()._handle_change(changed)

    @callback
    def _settled(self, _now: datetime) -> None:
        """The window passed without a report: compare from now on."""
        self._cancel_settling = None
        self._listen()

    @callback
    def _stop_settling(self) -> None:
        if self._cancel_settling is not None:
            self._cancel_settling()
            self._cancel_settling = None

    @callback
    def _fire(self, event_type: str, attributes: dict[str, Any]) -> None:
        self._trigger_event(event_type, attributes)
        self.async_write_ha_state()

    def _remember(self) -> None:
        raise NotImplementedError

    def _compare(self) -> None:
        raise NotImplementedError


class BambuJobEvent(_BambuTransitionEvent):
    """started / finished / failed / paused / resumed, from gcode_state."""

    _last: JobState | None = None

    def _remember(self) -> None:
        self._last = self.state_data.gcode_state

    def _compare(self) -> None:
        current = self.state_data.gcode_state
        if current is None or current == self._last:
            return
        previous, self._last = self._last, current
        if previous is None or (event := job_event(previous, current)) is None:
            return
        state = self.state_data
        self._fire(event, {"job_name": state.job_name, "progress": state.progress})


class BambuHmsEvent(HmsTextEntity, _BambuTransitionEvent):
    """error_raised / error_cleared, one event per HMS code, with its words.

    The event data hold the code, its severity, the model's wiki page and the
    text known when it fires (None before the model's texts arrived).
    """

    _active: dict[str, HmsEntry]

    def _current(self) -> dict[str, HmsEntry]:
        return {entry.hms_code: entry for entry in self.state_data.hms}

    def _remember(self) -> None:
        self._active = self._current()

    def _compare(self) -> None:
        current = self._current()
        previous, self._active = self._active, current
        describe = self.describer
        for code, entry in current.items():
            if code not in previous:
                self._fire(ERROR_RAISED, describe.hms(entry))
        for code, entry in previous.items():
            if code not in current:
                self._fire(ERROR_CLEARED, describe.hms(entry))
