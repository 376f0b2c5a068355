"""Device triggers: a printer's print job and HMS events, offered on its device page.

Each trigger follows one of the printer's event entities (``event.py``): it
fires when that entity records a new event of the trigger's type. An event
entity's state is the time of its last event, so a new event is a change of
state; a state coming back after the entity was unavailable, or restored when
Home Assistant starts, is an old event and fires nothing.
"""

from __future__ import annotations

from typing import Any, Final

import voluptuous as vol
from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.event import ATTR_EVENT_TYPE
from homeassistant.const import (
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_ENTITY_ID,
    CONF_PLATFORM,
    CONF_TYPE,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HassJob,
    HomeAssistant,
    callback,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .event import HMS, PRINT_JOB

# Event entity key -> the trigger types (its event types) it offers.
TRIGGERS: Final[dict[str, tuple[str, ...]]] = {
    description.key: tuple(description.event_types or ())
    for description in (PRINT_JOB, HMS)
}
TRIGGER_TYPES: Final = frozenset(
    event_type for types in TRIGGERS.values() for event_type in types
)

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend(
    {
        vol.Required(CONF_ENTITY_ID): cv.entity_id_or_uuid,
        vol.Required(CONF_TYPE): vol.In(TRIGGER_TYPES),
    }
)


def _event_key(entry: er.RegistryEntry) -> str | None:
    """Which of the integration's event entities a registry entry is."""
    if entry.domain != Platform.EVENT or entry.platform != DOMAIN:
        return None
    return next((key for key in TRIGGERS if entry.unique_id.endswith(f"_{key}")), None)


async def async_get_triggers(
    hass: HomeAssistant, device_id: str
) -> list[dict[str, Any]]:
    """The triggers of a printer device: one per event type of its event entities."""
    registry = er.async_get(hass)
    triggers: list[dict[str, Any]] = []
    for entry in er.async_entries_for_device(registry, device_id):
        if (key := _event_key(entry)) is None:
            continue
        triggers.extend(
            {
                CONF_PLATFORM: "device",
                CONF_DEVICE_ID: device_id,
                CONF_DOMAIN: DOMAIN,
                CONF_ENTITY_ID: entry.id,
                CONF_TYPE: event_type,
            }
            for event_type in TRIGGERS[key]
        )
    return triggers


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Run ``action`` on every new event of the configured type."""
    # An entity registry id (what the device page stores) or an entity id.
    entity_id = er.async_validate_entity_id(er.async_get(hass), config[CONF_ENTITY_ID])
    event_type: str = config[CONF_TYPE]
    trigger_data = trigger_info["trigger_data"]
    job = HassJob(action, f"{DOMAIN} device trigger {trigger_info}")

    @callback
    def state_changed(event: Event[EventStateChangedData]) -> None:
        old, new = event.data["old_state"], event.data["new_state"]
        if (
            old is None
            or new is None
            or old.state == STATE_UNAVAILABLE
            or new.state in (STATE_UNAVAILABLE, STATE_UNKNOWN)
            or new.state == old.state
            or new.attributes.get(ATTR_EVENT_TYPE) != event_type
        ):
            return
        hass.async_run_hass_job(
            job,
            {
                "trigger": {
                    **trigger_data,
                    CONF_PLATFORM: "device",
                    CONF_DOMAIN: DOMAIN,
                    CONF_DEVICE_ID: config[CONF_DEVICE_ID],
                    CONF_ENTITY_ID: entity_id,
                    CONF_TYPE: event_type,
                    "from_state": old,
                    "to_state": new,
                    "description": f"{event_type} event of {entity_id}",
                }
            },
            event.context,
        )

    return async_track_state_change_event(hass, [entity_id], state_changed)
