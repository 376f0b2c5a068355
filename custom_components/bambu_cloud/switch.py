"""Switches of Bambu Lab printers: camera, AI detection, print and AMS options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu.commands import (
    Command,
    ams_user_setting,
    camera_control,
    print_option,
    xcam_control,
)
from .bambu.const import CameraKind, PrinterModel
from .bambu.hub import BambuHub
from .bambu.state import PrinterState
from .coordinator import BambuConfigEntry
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .printer_tracking import track_live_entities, track_reported_entities

# Commands wait for the printer's ack: one at a time per platform.
PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class BambuSwitchDescription(BambuPrinterEntityDescription, SwitchEntityDescription):
    """A printer setting: read from the report, toggled with a command."""

    value_fn: Callable[[PrinterState], bool | None]
    # The command for on (True) or off; the state gives the options that go
    # out together with this one (the AMS settings are set all at once).
    command_fn: Callable[[PrinterState, bool], Command]
    exists_fn: Callable[[PrinterModel], bool] = lambda _: True
    # Options the firmware announces in its report (support bits of
    # home_flag, the AMS read options): the switch is added once the report
    # says the printer has it, read from ``views`` too. None: by model only.
    supported_fn: Callable[[PrinterState], bool] | None = None
    # ``print`` commands need a signature on authorization firmware.
    needs_signature: bool = False
    entity_category: EntityCategory | None = EntityCategory.CONFIG


def _has_camera(model: PrinterModel) -> bool:
    return model.camera is not CameraKind.NONE


SWITCHES: tuple[BambuSwitchDescription, ...] = (
    BambuSwitchDescription(
        key="timelapse",
        translation_key="timelapse",
        value_fn=lambda s: s.camera.timelapse,
        views=frozenset({"camera"}),
        command_fn=lambda _, on: camera_control("ipcam_timelapse", on),
        exists_fn=_has_camera,
    ),
    BambuSwitchDescription(
        key="camera_recording",
        translation_key="camera_recording",
        value_fn=lambda s: s.camera.recording,
        views=frozenset({"camera"}),
        command_fn=lambda _, on: camera_control("ipcam_record_set", on),
        exists_fn=_has_camera,
    ),
    BambuSwitchDescription(
        key="spaghetti_detection",
        translation_key="spaghetti_detection",
        value_fn=lambda s: s.xcam.spaghetti_detector,
        views=frozenset({"xcam"}),
        command_fn=lambda _, on: xcam_control("spaghetti_detector", on),
        exists_fn=_has_camera,
    ),
    BambuSwitchDescription(
        key="first_layer_inspection",
        translation_key="first_layer_inspection",
        value_fn=lambda s: s.xcam.first_layer_inspector,
        views=frozenset({"xcam"}),
        command_fn=lambda _, on: xcam_control("first_layer_inspector", on),
        exists_fn=lambda model: model.lidar,
    ),
    BambuSwitchDescription(
        key="prompt_sound",
        translation_key="prompt_sound",
        value_fn=lambda s: s.home_flags.prompt_sound,
        views=frozenset({"home_flags"}),
        command_fn=lambda _, on: print_option("sound_enable", on),
        exists_fn=lambda model: model.prompt_sound,
        needs_signature=True,
    ),
    BambuSwitchDescription(
        key="auto_recovery",
        translation_key="auto_recovery",
        value_fn=lambda s: s.home_flags.auto_recovery,
        views=frozenset({"home_flags"}),
        command_fn=lambda _, on: print_option("auto_recovery", on),
        needs_signature=True,
    ),
)


def _ams_settings(
    state: PrinterState,
    *,
    startup_read: bool | None = None,
    tray_read: bool | None = None,
    remain_detection: bool | None = None,
) -> Command:
    """``ams_user_setting`` changing one option and repeating the others."""
    current = state.ams_user_settings
    return ams_user_setting(
        startup_read=bool(
            current.startup_read if startup_read is None else startup_read
        ),
        tray_read=bool(current.tray_read if tray_read is None else tray_read),
        remain_detection=bool(
            current.remain_detection if remain_detection is None else remain_detection
        ),
    )


def _has_ams_settings(state: PrinterState) -> bool:
    return state.ams_user_settings.complete


# Switches the printer's report announces (see ``supported_fn``).
REPORTED_SWITCHES: tuple[BambuSwitchDescription, ...] = (
    BambuSwitchDescription(
        key="filament_tangle_detection",
        translation_key="filament_tangle_detection",
        value_fn=lambda s: s.home_flags.filament_tangle_detect,
        views=frozenset({"home_flags"}),
        command_fn=lambda _, on: print_option("filament_tangle_detect", on),
        supported_fn=lambda s: bool(s.home_flags.filament_tangle_detect_supported),
        needs_signature=True,
    ),
    BambuSwitchDescription(
        key="nozzle_blob_detection",
        translation_key="nozzle_blob_detection",
        value_fn=lambda s: s.home_flags.nozzle_blob_detect,
        views=frozenset({"home_flags"}),
        command_fn=lambda _, on: print_option("nozzle_blob_detect", on),
        supported_fn=lambda s: bool(s.home_flags.nozzle_blob_detect_supported),
        needs_signature=True,
    ),
    BambuSwitchDescription(
        key="air_print_detection",
        translation_key="air_print_detection",
        value_fn=lambda s: s.home_flags.air_print_detect,
        views=frozenset({"home_flags"}),
        command_fn=lambda _, on: print_option("air_print_detect", on),
        supported_fn=lambda s: bool(s.home_flags.air_print_detect_supported),
        needs_signature=True,
    ),
    BambuSwitchDescription(
        key="buildplate_marker_detection",
        translation_key="buildplate_marker_detection",
        value_fn=lambda s: s.xcam.buildplate_marker_detector,
        views=frozenset({"xcam"}),
        command_fn=lambda _, on: xcam_control("buildplate_marker_detector", on),
        # Printers with the detector report its setting among the xcam options.
        supported_fn=lambda s: s.xcam.buildplate_marker_detector is not None,
    ),
    BambuSwitchDescription(
        key="print_monitoring",
        translation_key="print_monitoring",
        value_fn=lambda s: s.xcam.printing_monitor,
        views=frozenset({"xcam"}),
        command_fn=lambda _, on: xcam_control("printing_monitor", on),
        supported_fn=lambda s: s.xcam.printing_monitor is not None,
    ),
    BambuSwitchDescription(
        key="ams_auto_refill",
        translation_key="ams_auto_refill",
        value_fn=lambda s: s.home_flags.ams_auto_refill,
        views=frozenset({"home_flags", "ams_user_settings"}),
        command_fn=lambda _, on: print_option("auto_switch_filament", on),
        supported_fn=_has_ams_settings,
        needs_signature=True,
    ),
    BambuSwitchDescription(
        key="ams_startup_read",
        translation_key="ams_startup_read",
        value_fn=lambda s: s.ams_user_settings.startup_read,
        views=frozenset({"ams_user_settings"}),
        command_fn=lambda s, on: _ams_settings(s, startup_read=on),
        supported_fn=_has_ams_settings,
        needs_signature=True,
    ),
    BambuSwitchDescription(
        key="ams_tray_read",
        translation_key="ams_tray_read",
        value_fn=lambda s: s.ams_user_settings.tray_read,
        views=frozenset({"ams_user_settings"}),
        command_fn=lambda s, on: _ams_settings(s, tray_read=on),
        supported_fn=_has_ams_settings,
        needs_signature=True,
    ),
    BambuSwitchDescription(
        key="ams_remain_detection",
        translation_key="ams_remain_detection",
        value_fn=lambda s: s.ams_user_settings.remain_detection,
        views=frozenset({"ams_user_settings"}),
        command_fn=lambda s, on: _ams_settings(s, remain_detection=on),
        supported_fn=_has_ams_settings,
        needs_signature=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the switches of every bound printer."""
    track_live_entities(entry, async_add_entities, BambuSwitch, SWITCHES)
    track_reported_entities(entry, async_add_entities, BambuSwitch, REPORTED_SWITCHES)


class BambuSwitch(BambuPrinterEntity, SwitchEntity):
    """A printer setting the printer reports back after each change."""

    entity_description: BambuSwitchDescription

    def __init__(
        self, hub: BambuHub, serial: str, description: BambuSwitchDescription
    ) -> None:
        """Take the signing need from the description."""
        super().__init__(hub, serial, description)
        self.needs_signature = description.needs_signature

    @property
    def is_on(self) -> bool | None:
        """The setting as the printer reports it."""
        return self.entity_description.value_fn(self.state_data)

    def snapshot(self) -> object:
        """Availability and value."""
        return (self.available, self.is_on)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Enable; the printer's report updates the state."""
        await self.async_send(self.entity_description.command_fn(self.state_data, True))

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Disable; the printer's report updates the state."""
        await self.async_send(
            self.entity_description.command_fn(self.state_data, False)
        )
