"""Entities declare the state views they read, so reports can skip them.

Every live entity description carries ``views=``; these tests hold each
declaration against the library's view registry (``VIEW_FIELDS``) and
against what the code really reads: value functions and entity snapshots
run on a state that records every view they touch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, cast

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_platform
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud import (
    binary_sensor,
    button,
    camera,
    event,
    fan,
    image,
    light,
    number,
    select,
    sensor,
    switch,
    update,
)
from custom_components.bambu_cloud.bambu.hub import BambuHub
from custom_components.bambu_cloud.bambu.state import (
    VIEW_FIELDS,
    ChangeSet,
    PrinterState,
)
from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.entity import (
    ALWAYS_RELEVANT,
    BambuPrinterEntity,
    BambuPrinterEntityDescription,
)
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import X1C, MqttEndpoint
from .common import load_json_object_fixture
from .helpers import state_of, wait_for

PLATFORMS: tuple[ModuleType, ...] = (
    binary_sensor,
    button,
    camera,
    event,
    fan,
    image,
    light,
    number,
    select,
    sensor,
    switch,
    update,
)


def _descriptions() -> Iterator[tuple[str, BambuPrinterEntityDescription]]:
    """Every live description a platform module defines (alone or in tuples)."""
    for module in PLATFORMS:
        platform = module.__name__.rsplit(".", 1)[1]
        for value in vars(module).values():
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                if isinstance(item, BambuPrinterEntityDescription):
                    yield f"{platform}.{item.key}", item
    # Built per filament slot at runtime: the class declares its views.
    yield "sensor.tray", sensor.BambuTraySensorDescription(key="tray")


DESCRIPTIONS = dict(_descriptions())


class RecordingState:
    """A PrinterState stand-in that records which views are read."""

    def __init__(self, state: PrinterState) -> None:
        """Wrap a real state."""
        self._state = state
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        """Record view names; delegate everything to the real state."""
        if name in VIEW_FIELDS:
            self.read.add(name)
        return getattr(self._state, name)


def _state(*messages: dict[str, Any]) -> PrinterState:
    state = PrinterState()
    for message in messages:
        state.merge(message)
    return state


def _states() -> list[PrinterState]:
    """States that take every branch: empty, single and dual nozzle, AMS HT."""
    return [
        PrinterState(),
        _state(
            load_json_object_fixture("x1c_full.json"),
            load_json_object_fixture("x1c_version.json"),
        ),
        _state(
            load_json_object_fixture("h2d_full.json"),
            load_json_object_fixture("h2d_version.json"),
        ),
        _state(load_json_object_fixture("p1s_full.json")),
        _state(load_json_object_fixture("a1_mini_full.json")),
    ]


def test_every_platform_declares_views() -> None:
    """The discovery finds the descriptions of every live platform."""
    platforms = {name.split(".", 1)[0] for name in DESCRIPTIONS}
    assert platforms == {module.__name__.rsplit(".", 1)[1] for module in PLATFORMS}


@pytest.mark.parametrize("description", DESCRIPTIONS.values(), ids=list(DESCRIPTIONS))
def test_declared_views_exist(description: BambuPrinterEntityDescription) -> None:
    """Every declared name is a view of the library's registry."""
    assert isinstance(description.views, frozenset)
    assert description.views <= VIEW_FIELDS.keys()


READERS = {
    name: description
    for name, description in DESCRIPTIONS.items()
    if isinstance(
        description,
        sensor.BambuSensorDescription
        | binary_sensor.BambuBinarySensorDescription
        | number.BambuTemperatureDescription
        | switch.BambuSwitchDescription
        | fan.BambuFanDescription,
    )
}


@pytest.mark.parametrize("description", READERS.values(), ids=list(READERS))
def test_value_fn_reads_only_declared_views(description: Any) -> None:
    """value_fn (and attrs_fn) touch declared views only, and at least one."""
    functions: list[Callable[[PrinterState], object]] = [description.value_fn]
    if getattr(description, "attrs_fn", None) is not None:
        functions.append(description.attrs_fn)
    if getattr(description, "supported_fn", None) is not None:
        functions.append(description.supported_fn)
    for state in _states():
        recorder = RecordingState(state)
        for function in functions:
            function(cast("PrinterState", recorder))
        assert recorder.read, f"{description.key} reads no view"
        assert recorder.read <= description.views, (
            f"{description.key} reads {sorted(recorder.read - description.views)}"
            " without declaring them"
        )


def test_recording_state_catches_an_undeclared_read() -> None:
    """The recorder sees through helpers: a wrong declaration is caught."""
    by_key = {d.key: d for d in sensor.PRINTER_SENSORS}
    recorder = RecordingState(_state(load_json_object_fixture("h2d_full.json")))
    by_key["right_nozzle_temperature"].value_fn(cast("PrinterState", recorder))
    assert recorder.read == {"nozzles"}
    recorder = RecordingState(PrinterState())
    binary = {d.key: d for d in binary_sensor.PRINTER_BINARY_SENSORS}
    binary["printer_error"].value_fn(cast("PrinterState", recorder))
    assert recorder.read == {"hms", "print_error"}


# ------------------------------------------------ entities on live printers


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """These tests run with the printers reporting."""
    return broker_endpoint


@pytest.fixture
def woken(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object, ChangeSet]]:
    """Every change set the hub hands to a listener: printer, listener, changes.

    The listener is its entity for entities' handlers, else the function.
    """
    calls: list[tuple[str, object, ChangeSet]] = []
    original = BambuHub.listen

    def listen(
        self: BambuHub,
        serial: str,
        listener: Callable[[ChangeSet], None],
        views: frozenset[str] | None = None,
    ) -> Callable[[], None]:
        def recorded(changed: ChangeSet) -> None:
            calls.append((serial, getattr(listener, "__self__", listener), changed))
            listener(changed)

        return original(self, serial, recorded, views)

    monkeypatch.setattr(BambuHub, "listen", listen)
    return calls


async def _live_entities(
    hass: HomeAssistant, entry: MockConfigEntry
) -> list[BambuPrinterEntity]:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hub = entry.runtime_data.hub
    await wait_for(hass, lambda: all(link.available for link in hub.printers.values()))
    await wait_for(
        hass, lambda: state_of(hass, "sensor.garage_p1s_ams_1_humidity") is not None
    )
    return [
        entity
        for platform in entity_platform.async_get_platforms(hass, DOMAIN)
        for entity in platform.entities.values()
        if isinstance(entity, BambuPrinterEntity)
    ]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "cloud", "printers")
async def test_entities_read_only_what_they_hear(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """What each entity shows is computed from views it listens to.

    The entity classes that read the state themselves (lights, buttons,
    AMS units, trays, firmware, events) are held to their declaration too.
    """
    entities = await _live_entities(hass, mock_config_entry)
    kinds = {type(entity).__name__ for entity in entities}
    assert {"BambuAmsSensor", "BambuTraySensor", "BambuLight"} <= kinds
    for entity in entities:
        link = entity.link
        real = link.state
        recorder = RecordingState(real)
        link.state = cast("PrinterState", recorder)
        try:
            entity.snapshot()
            if isinstance(entity, event.BambuJobEvent | event.BambuHmsEvent):
                entity._remember()
                heard = entity.entity_description.views | ALWAYS_RELEVANT
            else:
                heard = entity.listen_views or frozenset()
        finally:
            link.state = real
        assert recorder.read <= heard, (
            f"{entity.entity_id} reads {sorted(recorder.read - heard)} unheard"
        )


def _woken_on(woken: list[tuple[str, object, ChangeSet]], serial: str) -> list[object]:
    """Who heard the printer's change sets: entity ids, else the listeners."""
    return [
        listener.entity_id if isinstance(listener, BambuPrinterEntity) else listener
        for heard_serial, listener, _ in woken
        if heard_serial == serial
    ]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "cloud")
@pytest.mark.parametrize(
    ("field", "value", "entity_id"),
    [
        ("bed_temper", 61.0, "sensor.workshop_x1c_bed_temperature"),
        ("nozzle_temper", 201.0, "sensor.workshop_x1c_nozzle_temperature"),
    ],
)
async def test_a_report_wakes_only_the_entities_showing_it(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    printers: dict[str, VirtualPrinter],
    woken: list[tuple[str, object, ChangeSet]],
    field: str,
    value: float,
    entity_id: str,
) -> None:
    """A new temperature reaches the one sensor showing it, nothing else.

    Not the target, diameter or type of the nozzle, not the event entities
    (settled: they compare their own views only), not the device follower.
    """
    await _live_entities(hass, mock_config_entry)
    woken.clear()
    printers["x1c"].update({field: value})
    await wait_for(hass, lambda: state_of(hass, entity_id) == str(value))
    assert _woken_on(woken, X1C["dev_id"]) == [entity_id]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "cloud")
async def test_events_hear_every_report_while_settling(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    printers: dict[str, VirtualPrinter],
    woken: list[tuple[str, object, ChangeSet]],
) -> None:
    """Back from unavailable, events hear the next report (it is the baseline).

    Then they are settled and a report of other values passes them by.
    """
    await _live_entities(hass, mock_config_entry)
    hub = mock_config_entry.runtime_data.hub
    link = hub.printers[X1C["dev_id"]]
    job = "event.workshop_x1c_print_job"
    hms = "event.workshop_x1c_hms_error"
    events = {job, hms}
    printers["x1c"].set_online(False)
    await wait_for(hass, lambda: not link.available)
    woken.clear()
    printers["x1c"].set_online(True)
    await wait_for(hass, lambda: link.available)
    await hass.async_block_till_done()
    assert events <= set(_woken_on(woken, X1C["dev_id"]))
    settling = [
        entity
        for platform in entity_platform.async_get_platforms(hass, DOMAIN)
        for entity in platform.entities.values()
        if entity.entity_id in events
    ]
    assert all(entity.listen_views is None for entity in settling)
    woken.clear()
    printers["x1c"].update({"bed_temper": 62.0})
    bed = "sensor.workshop_x1c_bed_temperature"
    await wait_for(hass, lambda: state_of(hass, bed) == "62.0")
    assert events <= set(_woken_on(woken, X1C["dev_id"]))
    assert all(entity.listen_views is not None for entity in settling)
    woken.clear()
    printers["x1c"].update({"bed_temper": 63.0})
    await wait_for(hass, lambda: state_of(hass, bed) == "63.0")
    assert _woken_on(woken, X1C["dev_id"]) == [bed]
