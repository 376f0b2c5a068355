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
from .bambu.state import ChangeSet, PrinterState
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


class ReportBoundDescription(ModelBoundDescription, Protocol):
    """A description whose feature the printer announces in its report."""

    @property
    def views(self) -> frozenset[str]:
        """The state views the entity (and ``supported_fn``) reads."""

    @property
    def supported_fn(self) -> Callable[[PrinterState], bool] | None:
        """Whether the report says the printer has the feature."""


def track_reported_entities[D: ReportBoundDescription](
    entry: BambuConfigEntry,
    add_entities: AddConfigEntryEntitiesCallback,
    entity_class: Callable[[BambuHub, str, D], Entity],
    descriptions: Iterable[D],
) -> None:
    """Add a printer's entity once its report says the printer has the feature.

    Support bits come with the firmware, not the model (a firmware update
    adds a detector), and the first report may arrive after the set-up: each
    printer is watched until every candidate of its model is added.
    """
    hub = entry.runtime_data.hub
    chosen = tuple(descriptions)

    def make(serial: str) -> list[Entity]:
        link = hub.printers[serial]
        pending = [d for d in chosen if d.exists_fn(link.spec.model)]

        def ready() -> list[Entity]:
            found = [
                d
                for d in pending
                if d.supported_fn is None or d.supported_fn(link.state)
            ]
            for description in found:
                pending.remove(description)
            if not pending:
                stop()
            return [entity_class(hub, serial, d) for d in found]

        @callback
        def on_change(_changed: ChangeSet) -> None:
            if entities := ready():
                add_entities(entities)

        views = frozenset[str]().union(*(d.views for d in pending))
        stop = hub.listen(serial, on_change, views) if pending else _nothing
        entry.async_on_unload(stop)
        return ready()

    track_printers(entry, add_entities, make)


def _nothing() -> None:
    """Nothing to stop."""


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
