"""Helpers for tests that wait on real sockets and drive virtual printers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceResponse
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.const import DOMAIN
from tools.virtual_printer.printer import VirtualPrinter

TIMEOUT = 10.0


async def wait_for(
    hass: HomeAssistant, condition: Callable[[], bool], within: float = TIMEOUT
) -> None:
    """Let real sockets work until condition holds (polling, bounded)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls state of other tasks
            await asyncio.sleep(0.02)
    await hass.async_block_till_done()


def state_of(hass: HomeAssistant, entity_id: str) -> str | None:
    """The state string of an entity, None when it does not exist."""
    state = hass.states.get(entity_id)
    return None if state is None else state.state


async def wait_for_printers(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Wait until the entry's hub has printers and every one of them reports."""
    hub = entry.runtime_data.hub
    await wait_for(
        hass,
        lambda: (
            bool(hub.printers) and all(link.available for link in hub.printers.values())
        ),
    )


async def setup_integration(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set up the entry and wait until every printer reports.

    For tests that change the printers or the configuration before the set-up
    (``init_integration`` sets up before the test body runs).
    """
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for_printers(hass, entry)


def entity_id_of(hass: HomeAssistant, domain: str, serial: str, key: str) -> str:
    """The entity id of a printer's entity (unique id ``<serial>_<key>``)."""
    entity_id = er.async_get(hass).async_get_entity_id(
        domain, DOMAIN, f"{serial}_{key}"
    )
    assert entity_id is not None, f"no {domain} {key} for {serial}"
    return entity_id


def device_id_of(hass: HomeAssistant, identifier: str) -> str:
    """The registry id of the integration's device (a serial, an AMS id, ...)."""
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, identifier)})
    assert device is not None, f"no device {identifier}"
    return device.id


def commands(printer: VirtualPrinter) -> list[dict[str, Any]]:
    """The inner objects of the commands a printer received (not state queries)."""
    return [
        inner
        for message in printer.received
        for kind, inner in message.items()
        if kind not in ("header", "pushing", "info")
    ]


def last_command(printer: VirtualPrinter) -> dict[str, Any]:
    """The inner object of the newest command a printer received."""
    return commands(printer)[-1]


def sequence_ids(printer: VirtualPrinter) -> list[int]:
    """The sequence ids of every message a printer received, in order."""
    return [
        int(inner["sequence_id"])
        for message in printer.received
        for kind, inner in message.items()
        if kind != "header"
    ]


async def call_service(
    hass: HomeAssistant, domain: str, service: str, entity_id: str, **data: Any
) -> None:
    """Call an entity service and wait for it (errors are raised)."""
    await hass.services.async_call(
        domain, service, {ATTR_ENTITY_ID: entity_id, **data}, blocking=True
    )


async def call_action(
    hass: HomeAssistant, service: str, serial: str, **data: Any
) -> ServiceResponse:
    """Call an action of the integration for a printer (``list_files`` answers)."""
    return await hass.services.async_call(
        DOMAIN,
        service,
        {"device_id": device_id_of(hass, serial), **data},
        blocking=True,
        return_response=service == "list_files",
    )
