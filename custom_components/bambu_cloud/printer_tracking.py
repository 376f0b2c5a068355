"""Add a platform's entities for each bound printer, now and when bound later."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.const import PrinterModel
from .bambu.hub import BambuHub
from .coordinator import BambuConfigEntry


class ModelBoundDescription(Protocol):
    """A description that exists only on some printer models."""

    @property
    def exists_fn(self) -> Callable[[PrinterModel], bool]:
        """Whether a model has what the entity shows."""


def track_live_entities[D: ModelBoundDescription](
    entry: BambuConfigEntry,
    add_entities: AddConfigEntryEntitiesCallback,
    entity_class: Callable[[BambuHub, str, D], Entity],
    descriptions: Iterable[D],
) -> None:
    """Add one live entity per description the printer's model supports."""
    hub = entry.runtime_data.hub
    chosen = tuple(descriptions)

    def make(serial: str) -> list[Entity]:
        model = hub.printers[serial].spec.model
        return [
            entity_class(hub, serial, description)
            for description in chosen
            if description.exists_fn(model)
        ]

    track_printers(entry, add_entities, make)


def track_printers(
    entry: BambuConfigEntry,
    add_entities: AddConfigEntryEntitiesCallback,
    make_entities: Callable[[str], Iterable[Entity]],
    *,
    retry_signal: str | None = None,
) -> None:
    """Add a printer's entities now and whenever a printer is bound later.

    A printer that leaves the bind list loses its device, and its entities go
    with it; forgetting it here lets a printer bound again get them all back.
    A failed poll keeps the coordinator's last good list, so it changes nothing.
    With ``retry_signal``, a printer that got no entities is asked again when
    that dispatcher signal comes (a camera waits for the printer's address).
    """
    coordinator = entry.runtime_data.coordinator
    known: set[str] = set()

    @callback
    def _add_new() -> None:
        known.intersection_update(coordinator.data.printers)
        new = coordinator.data.printers.keys() - known
        if not new:
            return
        entities: list[Entity] = []
        for serial in sorted(new):
            made = list(make_entities(serial))
            if made or retry_signal is None:
                known.add(serial)
            entities.extend(made)
        if entities:
            add_entities(entities)

    _add_new()
    entry.async_on_unload(coordinator.async_add_listener(_add_new))
    if retry_signal is not None:
        entry.async_on_unload(
            async_dispatcher_connect(coordinator.hass, retry_signal, _add_new)
        )
