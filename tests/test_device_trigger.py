"""Device triggers for the print job and HMS events, fired by virtual printers."""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol
from homeassistant.components import automation
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_get_device_automations,
)

from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.device_trigger import TRIGGER_SCHEMA
from custom_components.bambu_cloud.devices import account_identifier
from tools.virtual_farm.hms import HMS_HEATBED, made_up_texts
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import UID, X1C, MqttEndpoint
from .helpers import device_id_of, entity_id_of, state_of, wait_for

SERIAL = X1C["dev_id"]
FIRED = "bambu_cloud_test_fired"
HMS_A = {"attr": 0x03000100, "code": 0x00010007}  # HMS_0300_0100_0001_0007


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """This module's tests run with the cloud broker up."""
    return broker_endpoint


@pytest.fixture
def platforms() -> list[Platform]:
    """The event platform is what the triggers follow; binary sensors offer none."""
    return [Platform.EVENT, Platform.BINARY_SENSOR]


def _registry_id(hass: HomeAssistant, key: str) -> str:
    entry = er.async_get(hass).async_get(entity_id_of(hass, "event", SERIAL, key))
    assert entry is not None
    return entry.id


@pytest.mark.usefixtures("live")
async def test_triggers_of_a_printer(hass: HomeAssistant) -> None:
    """A printer offers one trigger per print job and HMS event type."""
    device_id = device_id_of(hass, SERIAL)
    every = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, device_id
    )
    # Binary sensors bring Home Assistant's own triggers; ours are the events'.
    triggers = [t for t in every if t["domain"] == DOMAIN]
    assert len(every) > len(triggers)
    job, hms = _registry_id(hass, "print_job"), _registry_id(hass, "hms")
    expected = [
        (job, "started"),
        (job, "finished"),
        (job, "failed"),
        (job, "paused"),
        (job, "resumed"),
        (hms, "error_raised"),
        (hms, "error_cleared"),
    ]
    assert sorted((t["entity_id"], t["type"]) for t in triggers) == sorted(expected)
    for trigger in triggers:
        assert trigger["platform"] == "device"
        assert trigger["domain"] == DOMAIN
        assert trigger["device_id"] == device_id
        assert trigger["metadata"] == {"secondary": False}
        TRIGGER_SCHEMA(trigger)
    # The account's device has no event entities.
    account = device_id_of(hass, account_identifier(UID))
    assert not [
        t
        for t in await async_get_device_automations(
            hass, DeviceAutomationType.TRIGGER, account
        )
        if t["domain"] == DOMAIN
    ]


@pytest.mark.usefixtures("live")
async def test_schema_refuses_unknown_types(hass: HomeAssistant) -> None:
    """Only the event types of the event entities are trigger types."""
    with pytest.raises(vol.Invalid):
        TRIGGER_SCHEMA(
            {
                "platform": "device",
                "domain": DOMAIN,
                "device_id": device_id_of(hass, SERIAL),
                "entity_id": _registry_id(hass, "print_job"),
                "type": "exploded",
            }
        )


def _automation(
    hass: HomeAssistant, alias: str, key: str, trigger_type: str, data: dict[str, str]
) -> dict[str, Any]:
    """An automation as the device page builds it, announcing itself by an event."""
    trigger = {
        "platform": "device",
        "domain": DOMAIN,
        "device_id": device_id_of(hass, SERIAL),
        "entity_id": _registry_id(hass, key),
        "type": trigger_type,
    }
    return {
        "alias": alias,
        "triggers": [trigger],
        "actions": [{"event": FIRED, "event_data": {"alias": alias, **data}}],
    }


async def test_automations_fire_on_printer_events(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    printers: dict[str, VirtualPrinter],
) -> None:
    """Automations made from the device page run on real printer reports."""
    hub = init_integration.runtime_data.hub
    await wait_for(hass, lambda: all(p.available for p in hub.printers.values()))
    await hass.async_block_till_done(wait_background_tasks=True)
    job = "{{ trigger.to_state.attributes.job_name }}"
    hms = {
        "code": "{{ trigger.to_state.attributes.code }}",
        "text": "{{ trigger.to_state.attributes.text }}",
        "type": "{{ trigger.type }}",
        "entity": "{{ trigger.entity_id }}",
    }
    configs = [
        _automation(hass, "started", "print_job", "started", {"job": job}),
        _automation(hass, "finished", "print_job", "finished", {"job": job}),
        _automation(hass, "hms", "hms", "error_raised", hms),
    ]
    assert await async_setup_component(
        hass, automation.DOMAIN, {automation.DOMAIN: configs}
    )
    await hass.async_block_till_done()
    fired = async_capture_events(hass, FIRED)
    x1c = printers["x1c"]

    x1c.update({"gcode_state": "PREPARE", "subtask_name": "Benchy"})
    await wait_for(hass, lambda: len(fired) == 1)
    assert _data(fired[0]) == {"alias": "started", "job": "Benchy"}

    x1c.update({"hms": [HMS_A]})
    await wait_for(hass, lambda: len(fired) == 2)
    assert _data(fired[1]) == {
        "alias": "hms",
        "code": "HMS_0300_0100_0001_0007",
        "text": made_up_texts()["en"]["device_hms"][HMS_HEATBED],
        "type": "error_raised",
        "entity": entity_id_of(hass, "event", SERIAL, "hms"),
    }

    # Unavailable and back: the restored last event fires nothing.
    job_entity = entity_id_of(hass, "event", SERIAL, "print_job")
    x1c.set_online(False)
    await wait_for(hass, lambda: state_of(hass, job_entity) == STATE_UNAVAILABLE)
    x1c.set_online(True)
    await wait_for(hass, lambda: state_of(hass, job_entity) != STATE_UNAVAILABLE)
    # Clearing the error fires no error_raised automation.
    x1c.update({"hms": []})
    x1c.update({"gcode_state": "RUNNING", "mc_percent": 50})
    x1c.update({"gcode_state": "FINISH", "mc_percent": 100})
    await wait_for(hass, lambda: len(fired) == 3)
    assert _data(fired[2]) == {"alias": "finished", "job": "Benchy"}
    await hass.async_block_till_done()
    assert len(fired) == 3


def _data(event: Any) -> dict[str, Any]:
    return dict(event.data)
