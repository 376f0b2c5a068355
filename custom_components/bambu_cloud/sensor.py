"""Sensors of Bambu Lab printers and of the account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .bambu.auth import AccessToken
from .bambu.models import BoundPrinter
from .coordinator import BambuCloudCoordinator, BambuConfigEntry
from .entity import BambuAccountEntity, BambuPrinterCloudEntity, track_printers

PARALLEL_UPDATES = 0

# The bind list's free-text print status, folded to the values seen in practice.
CLOUD_PRINT_STATUSES = [
    "active",
    "failed",
    "finish",
    "idle",
    "offline",
    "pause",
    "prepare",
    "running",
    "success",
]


def _cloud_print_status(printer: BoundPrinter) -> str | None:
    status = (printer.print_status or "").lower()
    return status if status in CLOUD_PRINT_STATUSES else None


@dataclass(frozen=True, kw_only=True)
class BambuCloudSensorDescription(SensorEntityDescription):
    """A printer sensor read from its bind entry."""

    value_fn: Callable[[BoundPrinter], StateType]


@dataclass(frozen=True, kw_only=True)
class BambuAccountSensorDescription(SensorEntityDescription):
    """An account sensor read from the access token."""

    value_fn: Callable[[AccessToken], datetime | None]
    exists_fn: Callable[[AccessToken], bool]


CLOUD_SENSORS: tuple[BambuCloudSensorDescription, ...] = (
    BambuCloudSensorDescription(
        key="cloud_print_status",
        translation_key="cloud_print_status",
        device_class=SensorDeviceClass.ENUM,
        options=CLOUD_PRINT_STATUSES,
        value_fn=_cloud_print_status,
    ),
)

ACCOUNT_SENSORS: tuple[BambuAccountSensorDescription, ...] = (
    BambuAccountSensorDescription(
        key="token_expires",
        translation_key="token_expires",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda token: token.expires_at,
        exists_fn=lambda token: token.expires_at is not None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up account sensors and sensors for every bound printer."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    async_add_entities(
        BambuAccountSensor(coordinator, description, runtime.token)
        for description in ACCOUNT_SENSORS
        if description.exists_fn(runtime.token)
    )
    track_printers(
        entry,
        async_add_entities,
        lambda serial: (
            BambuCloudSensor(coordinator, serial, description)
            for description in CLOUD_SENSORS
        ),
    )


class BambuCloudSensor(BambuPrinterCloudEntity, SensorEntity):
    """A printer sensor fed by the cloud bind list."""

    entity_description: BambuCloudSensorDescription

    @property
    def native_value(self) -> StateType:
        """The value from the latest bind entry."""
        if (printer := self.printer) is None:
            return None
        return self.entity_description.value_fn(printer)


class BambuAccountSensor(BambuAccountEntity, SensorEntity):
    """An account sensor fed by the access token."""

    entity_description: BambuAccountSensorDescription

    def __init__(
        self,
        coordinator: BambuCloudCoordinator,
        description: BambuAccountSensorDescription,
        token: AccessToken,
    ) -> None:
        """Keep the token the value is read from."""
        super().__init__(coordinator, description)
        self._token = token

    @property
    def native_value(self) -> datetime | None:
        """The value read from the token."""
        return self.entity_description.value_fn(self._token)
