"""Job and HMS events from live printers on the cloud broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.bambu.enums import JobState
from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.event import SETTLE_SECONDS, job_event
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import P1S, X1C, FakeCloud, MqttEndpoint
from .helpers import state_of, wait_for

SERIALS = {"x1c": X1C["dev_id"], "p1s": P1S["dev_id"]}
HMS_A = {"attr": 0x03000100, "code": 0x00010007}  # HMS_0300_0100_0001_0007, fatal
HMS_B = {"attr": 0x07008000, "code": 0x00030001}  # HMS_0700_8000_0003_0001, common


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """This module's tests run with the cloud broker up."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the event platform is set up."""
    return [Platform.EVENT]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "live")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Event entities of an X1C and a P1S, registry entries and states match."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


def event_entity(hass: HomeAssistant, serial: str, key: str) -> str:
    """The entity id of a printer's event entity."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "event", DOMAIN, f"{serial}_{key}"
    )
    assert entity_id is not None
    return entity_id


class Recorder:
    """Event-type and attributes of every state written for one entity."""

    def __init__(self, hass: HomeAssistant, entity_id: str) -> None:
        self.entity_id = entity_id
        self.events: list[dict[str, Any]] = []
        self._unsub = hass.bus.async_listen(EVENT_STATE_CHANGED, self._record)

    @callback
    def _record(self, event: Event) -> None:
        new = event.data["new_state"]
        if (
            event.data["entity_id"] == self.entity_id
            and new is not None
            and new.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
        ):
            self.events.append({"state": new.state, **new.attributes})

    def types(self) -> list[str]:
        return [event["event_type"] for event in self.events]

    def close(self) -> None:
        self._unsub()


@pytest.fixture
async def setup(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    printers: dict[str, VirtualPrinter],
) -> Callable[[], Any]:
    """Set the entry up on demand and wait until both printers report."""

    async def _setup() -> None:
        mock_config_entry.add_to_hass(hass)
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        for serial in SERIALS.values():
            entity_id = event_entity(hass, serial, "print_job")
            await wait_for(hass, lambda e=entity_id: state_of(hass, e) == STATE_UNKNOWN)
            entity_id = event_entity(hass, serial, "hms")
            await wait_for(hass, lambda e=entity_id: state_of(hass, e) == STATE_UNKNOWN)

    return _setup


async def _expect(hass: HomeAssistant, recorder: Recorder, count: int) -> None:
    await wait_for(hass, lambda: len(recorder.events) >= count)
    await asyncio.sleep(0.1)  # nothing more arrives
    await hass.async_block_till_done()
    assert len(recorder.events) == count


@pytest.mark.parametrize("name", ["x1c", "p1s"])
async def test_job_events(
    hass: HomeAssistant,
    setup: Callable[[], Any],
    printers: dict[str, VirtualPrinter],
    name: str,
) -> None:
    """gcode_state transitions fire started/paused/resumed/finished/failed."""
    await setup()
    printer = printers[name]
    entity_id = event_entity(hass, SERIALS[name], "print_job")
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["event_types"] == [
        "started",
        "finished",
        "failed",
        "paused",
        "resumed",
    ]
    recorder = Recorder(hass, entity_id)
    try:
        steps: list[tuple[dict[str, Any], str | None]] = [
            ({"gcode_state": "PREPARE", "subtask_name": "Benchy"}, "started"),
            ({"gcode_state": "RUNNING", "mc_percent": 5}, None),
            ({"mc_percent": 40}, None),
            ({"gcode_state": "PAUSE"}, "paused"),
            ({"gcode_state": "RUNNING", "mc_percent": 41}, "resumed"),
            ({"gcode_state": "FINISH", "mc_percent": 100}, "finished"),
            ({"gcode_state": "IDLE"}, None),
            (
                {"gcode_state": "RUNNING", "subtask_name": "Cube", "mc_percent": 0},
                "started",
            ),
            ({"gcode_state": "FAILED", "mc_percent": 12}, "failed"),
        ]
        expected: list[str] = []
        for fields, event_type in steps:
            printer.update(fields)
            if event_type is not None:
                expected.append(event_type)
            await _expect(hass, recorder, len(expected))
        assert recorder.types() == expected
        jobs = [(e["job_name"], e["progress"]) for e in recorder.events]
        assert jobs == [
            ("Benchy", 0),
            ("Benchy", 40),
            ("Benchy", 41),
            ("Benchy", 100),
            ("Cube", 0),
            ("Cube", 12),
        ]
        last = hass.states.get(entity_id)
        assert last is not None
        assert last.attributes["event_type"] == "failed"
        assert last.state == recorder.events[-1]["state"]
    finally:
        recorder.close()


async def test_no_event_for_first_state(
    hass: HomeAssistant,
    setup: Callable[[], Any],
    printers: dict[str, VirtualPrinter],
) -> None:
    """A printer already printing at startup, or after a reconnect, fires nothing."""
    x1c = printers["x1c"]
    x1c.state.update(gcode_state="RUNNING", subtask_name="Boot job", mc_percent=50)
    await setup()
    entity_id = event_entity(hass, SERIALS["x1c"], "print_job")
    recorder = Recorder(hass, entity_id)
    try:
        x1c.set_online(False)
        await wait_for(hass, lambda: state_of(hass, entity_id) == STATE_UNAVAILABLE)
        # The job finished while the printer was away: no event on return.
        x1c.state.update(gcode_state="FINISH", mc_percent=100)
        x1c.set_online(True)
        await wait_for(hass, lambda: state_of(hass, entity_id) == STATE_UNKNOWN)
        await asyncio.sleep(0.1)
        assert recorder.events == []
        x1c.update({"gcode_state": "RUNNING", "subtask_name": "Next", "mc_percent": 0})
        await _expect(hass, recorder, 1)
        assert recorder.types() == ["started"]
        assert recorder.events[0]["job_name"] == "Next"
    finally:
        recorder.close()


async def test_reconnect_with_unchanged_state(
    hass: HomeAssistant,
    setup: Callable[[], Any],
    printers: dict[str, VirtualPrinter],
) -> None:
    """Back with the same state: once settled, the next transition fires."""
    await setup()
    x1c = printers["x1c"]
    entity_id = event_entity(hass, SERIALS["x1c"], "print_job")
    recorder = Recorder(hass, entity_id)
    try:
        x1c.set_online(False)
        await wait_for(hass, lambda: state_of(hass, entity_id) == STATE_UNAVAILABLE)
        x1c.set_online(True)
        await wait_for(hass, lambda: state_of(hass, entity_id) == STATE_UNKNOWN)
        async_fire_time_changed(
            hass, dt_util.utcnow() + timedelta(seconds=SETTLE_SECONDS + 1)
        )
        x1c.update({"gcode_state": "PREPARE", "subtask_name": "After"})
        await _expect(hass, recorder, 1)
    finally:
        recorder.close()
    assert recorder.types() == ["started"]


@pytest.mark.parametrize("name", ["x1c", "p1s"])
async def test_hms_events(
    hass: HomeAssistant,
    setup: Callable[[], Any],
    printers: dict[str, VirtualPrinter],
    name: str,
) -> None:
    """One error_raised / error_cleared event per HMS code."""
    await setup()
    printer = printers[name]
    entity_id = event_entity(hass, SERIALS[name], "hms")
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["event_types"] == ["error_raised", "error_cleared"]
    recorder = Recorder(hass, entity_id)
    try:
        printer.update({"hms": [HMS_A]})
        await _expect(hass, recorder, 1)
        printer.update({"hms": [HMS_A, HMS_B]})
        await _expect(hass, recorder, 2)
        printer.update({"nozzle_temper": 30.0})  # no HMS change, no event
        printer.update({"hms": []})
        await _expect(hass, recorder, 4)
    finally:
        recorder.close()
    summary = [
        (e["event_type"], e["code"], e["severity"], e["url"]) for e in recorder.events
    ]
    # Each model has its own wiki section.
    section = {"x1c": "x1", "p1s": "p1"}[name]
    wiki = f"https://wiki.bambulab.com/en/{section}/troubleshooting/hmscode/"
    assert summary == [
        (
            "error_raised",
            "HMS_0300_0100_0001_0007",
            "fatal",
            wiki + "0300_0100_0001_0007",
        ),
        (
            "error_raised",
            "HMS_0700_8000_0003_0001",
            "common",
            wiki + "0700_8000_0003_0001",
        ),
        (
            "error_cleared",
            "HMS_0300_0100_0001_0007",
            "fatal",
            wiki + "0300_0100_0001_0007",
        ),
        (
            "error_cleared",
            "HMS_0700_8000_0003_0001",
            "common",
            wiki + "0700_8000_0003_0001",
        ),
    ]


async def test_hms_present_at_startup_is_baseline(
    hass: HomeAssistant,
    setup: Callable[[], Any],
    printers: dict[str, VirtualPrinter],
) -> None:
    """An HMS error active at startup raises nothing; clearing it is an event."""
    printers["p1s"].state["hms"] = [HMS_A]
    await setup()
    entity_id = event_entity(hass, SERIALS["p1s"], "hms")
    recorder = Recorder(hass, entity_id)
    try:
        await asyncio.sleep(0.1)
        assert recorder.events == []
        printers["p1s"].update({"hms": []})
        await _expect(hass, recorder, 1)
    finally:
        recorder.close()
    assert recorder.types() == ["error_cleared"]
    assert recorder.events[0]["code"] == "HMS_0300_0100_0001_0007"


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        ("IDLE", "PREPARE", "started"),
        ("FINISH", "RUNNING", "started"),
        ("FAILED", "PREPARE", "started"),
        ("SLICING", "RUNNING", "started"),
        ("PREPARE", "RUNNING", None),
        ("RUNNING", "PREPARE", None),
        ("RUNNING", "PAUSE", "paused"),
        ("PREPARE", "PAUSE", "paused"),
        ("PAUSE", "RUNNING", "resumed"),
        ("PAUSE", "PREPARE", "resumed"),
        ("RUNNING", "FINISH", "finished"),
        ("PAUSE", "FINISH", "finished"),
        ("RUNNING", "FAILED", "failed"),
        ("PAUSE", "FAILED", "failed"),
        ("IDLE", "FINISH", None),
        ("IDLE", "FAILED", None),
        ("FINISH", "FAILED", None),
        ("IDLE", "PAUSE", None),
        ("RUNNING", "IDLE", None),
        ("RUNNING", "OFFLINE", None),
    ],
)
def test_job_event_table(previous: str, current: str, expected: str | None) -> None:
    """The transition table."""
    assert job_event(JobState(previous), JobState(current)) == expected
