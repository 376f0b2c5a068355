"""Add a platform's entities for each AMS unit of a printer as units appear.

A unit's kind (AMS, AMS 2 Pro, AMS HT...) comes from the printer's module
list, which may arrive after the first report naming the unit: entities that
only some kinds have (the dryer's) are added once the kind is known. A unit
that leaves the report is forgotten here, so it gets its entities again when
it comes back (its device is removed by the sensor platform).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.hub import BambuHub
from .bambu.state import AmsUnit, ChangeSet, PrinterState
from .coordinator import BambuConfigEntry
from .devices import ams_device_info

UNIT_VIEWS = frozenset({"ams_units"})


def track_ams_units(
    entry: BambuConfigEntry,
    hub: BambuHub,
    serial: str,
    add_entities: AddConfigEntryEntitiesCallback,
    make_entities: Callable[[AmsUnit], Iterable[Entity]],
) -> None:
    """Add ``make_entities(unit)`` for each unit now and as units change kind.

    ``make_entities`` runs once per unit and kind; an entity whose unique id
    was added before for that unit is not added twice.
    """
    seen: dict[int, str] = {}
    added: dict[int, set[str]] = {}

    @callback
    def _sync(changed: ChangeSet | None = None) -> None:
        # Called by the printer's own link, so the printer is known.
        units = {unit.id: unit for unit in hub.printers[serial].state.ams_units}
        for gone in seen.keys() - units.keys():
            del seen[gone]
            added.pop(gone, None)
        new: list[Entity] = []
        for unit_id, unit in sorted(units.items()):
            if seen.get(unit_id) == unit.kind:
                continue
            seen[unit_id] = unit.kind
            ids = added.setdefault(unit_id, set())
            for entity in make_entities(unit):
                if entity.unique_id not in ids:
                    ids.add(entity.unique_id or "")
                    new.append(entity)
        if new:
            add_entities(new)

    _sync()
    entry.async_on_unload(hub.listen(serial, _sync, UNIT_VIEWS))


def ams_unit(state: PrinterState, unit_id: int | None) -> AmsUnit | None:
    """The reported AMS unit with this id (none for the external spools)."""
    return next((u for u in state.ams_units if u.id == unit_id), None)


def ams_device(hub: BambuHub, serial: str, unit_id: int) -> DeviceInfo:
    """The device of an AMS unit, as the printer reports the unit now."""
    link = hub.printers[serial]
    unit = ams_unit(link.state, unit_id)
    return ams_device_info(serial, link.spec.name or serial, unit_id, unit)
