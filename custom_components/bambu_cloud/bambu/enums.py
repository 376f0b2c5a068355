"""Protocol values as enums: job states, stages, speed levels, fans, modes.

The printer speaks in magic strings and numbers (PROTOCOL.md sections 2.4 and
2.5). They are named here once, so state views return these enums, command
builders take them, and Home Assistant's glue only maps them to its states.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final


class JobState(StrEnum):
    """``gcode_state`` of the report: where the current job is."""

    IDLE = "IDLE"
    PREPARE = "PREPARE"
    RUNNING = "RUNNING"
    PAUSE = "PAUSE"
    FINISH = "FINISH"
    FAILED = "FAILED"
    SLICING = "SLICING"
    INIT = "INIT"
    OFFLINE = "OFFLINE"

    @property
    def active(self) -> bool:
        """Whether a job is under way (its end time and controls matter)."""
        return self in _ACTIVE_JOB_STATES


_ACTIVE_JOB_STATES: Final = frozenset(
    {JobState.PREPARE, JobState.RUNNING, JobState.PAUSE}
)


class SpeedLevel(IntEnum):
    """``spd_lvl`` of the report and the ``print_speed`` parameter."""

    SILENT = 1
    STANDARD = 2
    SPORT = 3
    LUDICROUS = 4


class Fan(IntEnum):
    """The ``P`` index of ``M106`` for each fan."""

    PART_COOLING = 1
    AUX = 2
    CHAMBER = 3
    # P2S and X2D only.
    SECONDARY_AUX = 10


class AirDuctMode(IntEnum):
    """``modeId`` of ``set_airduct`` (P2S, H2 series, X2D)."""

    COOLING = 0
    HEATING = 1
    LASER = 2


class BuzzerMode(IntEnum):
    """``mode`` of ``buzzer_ctrl`` (H2 series)."""

    SILENT = 0
    ALARM = 1
    BEEP = 2


class PrintStage(StrEnum):
    """What the printer is doing within a job (``stg_cur``).

    Values are snake_case so they double as Home Assistant state and
    translation keys. ``IDLE`` has no id of its own: the firmware reports -1
    (X1) or 255 (P1/A1), or 0 with ``print_type`` idle after boot. Ids 12 and
    18 both mean calibrating the micro lidar, so the member order is the id
    order without the repeat; ``STAGES_BY_ID`` holds the id table.
    """

    IDLE = "idle"
    PRINTING = "printing"
    AUTO_BED_LEVELING = "auto_bed_leveling"
    HEATBED_PREHEATING = "heatbed_preheating"
    VIBRATION_COMPENSATION = "vibration_compensation"
    CHANGING_FILAMENT = "changing_filament"
    M400_PAUSE = "m400_pause"
    PAUSED_FILAMENT_RUNOUT = "paused_filament_runout"
    HEATING_HOTEND = "heating_hotend"
    CALIBRATING_EXTRUSION = "calibrating_extrusion"
    SCANNING_BED_SURFACE = "scanning_bed_surface"
    INSPECTING_FIRST_LAYER = "inspecting_first_layer"
    IDENTIFYING_BUILD_PLATE_TYPE = "identifying_build_plate_type"
    CALIBRATING_MICRO_LIDAR = "calibrating_micro_lidar"
    HOMING_TOOLHEAD = "homing_toolhead"
    CLEANING_NOZZLE_TIP = "cleaning_nozzle_tip"
    CHECKING_EXTRUDER_TEMPERATURE = "checking_extruder_temperature"
    PAUSED_BY_USER = "paused_by_user"
    PAUSED_FRONT_COVER_FALLING = "paused_front_cover_falling"
    CALIBRATING_EXTRUSION_FLOW = "calibrating_extrusion_flow"
    PAUSED_NOZZLE_TEMPERATURE_MALFUNCTION = "paused_nozzle_temperature_malfunction"
    PAUSED_HEAT_BED_TEMPERATURE_MALFUNCTION = "paused_heat_bed_temperature_malfunction"
    FILAMENT_UNLOADING = "filament_unloading"
    PAUSED_SKIPPED_STEP = "paused_skipped_step"
    FILAMENT_LOADING = "filament_loading"
    CALIBRATING_MOTOR_NOISE = "calibrating_motor_noise"
    PAUSED_AMS_LOST = "paused_ams_lost"
    PAUSED_LOW_HEATBREAK_FAN_SPEED = "paused_low_heatbreak_fan_speed"
    PAUSED_CHAMBER_TEMPERATURE_CONTROL_ERROR = (
        "paused_chamber_temperature_control_error"
    )
    COOLING_CHAMBER = "cooling_chamber"
    PAUSED_BY_USER_GCODE = "paused_by_user_gcode"
    MOTOR_NOISE_SHOWOFF = "motor_noise_showoff"
    PAUSED_NOZZLE_FILAMENT_COVERED = "paused_nozzle_filament_covered"
    PAUSED_CUTTER_ERROR = "paused_cutter_error"
    PAUSED_FIRST_LAYER_ERROR = "paused_first_layer_error"
    PAUSED_NOZZLE_CLOG = "paused_nozzle_clog"
    CHECK_ABSOLUTE_ACCURACY_BEFORE_CALIBRATION = (
        "check_absolute_accuracy_before_calibration"
    )
    ABSOLUTE_ACCURACY_CALIBRATION = "absolute_accuracy_calibration"
    CHECK_ABSOLUTE_ACCURACY_AFTER_CALIBRATION = (
        "check_absolute_accuracy_after_calibration"
    )
    CALIBRATE_NOZZLE_OFFSET = "calibrate_nozzle_offset"
    BED_LEVEL_HIGH_TEMPERATURE = "bed_level_high_temperature"
    CHECK_QUICK_RELEASE = "check_quick_release"
    CHECK_DOOR_AND_COVER = "check_door_and_cover"
    LASER_CALIBRATION = "laser_calibration"
    CHECK_PLATFORM = "check_platform"
    CHECK_BIRDEYE_CAMERA_POSITION = "check_birdeye_camera_position"
    CALIBRATE_BIRDEYE_CAMERA = "calibrate_birdeye_camera"
    BED_LEVEL_PHASE_1 = "bed_level_phase_1"
    BED_LEVEL_PHASE_2 = "bed_level_phase_2"
    HEATING_CHAMBER = "heating_chamber"
    HEATED_BED_COOLING = "heated_bed_cooling"
    PRINT_CALIBRATION_LINES = "print_calibration_lines"
    CHECK_MATERIAL = "check_material"
    CALIBRATING_LIVE_VIEW_CAMERA = "calibrating_live_view_camera"
    WAITING_FOR_HEATBED_TEMPERATURE = "waiting_for_heatbed_temperature"
    CHECK_MATERIAL_POSITION = "check_material_position"
    CALIBRATING_CUTTER_MODEL_OFFSET = "calibrating_cutter_model_offset"
    MEASURING_SURFACE = "measuring_surface"
    THERMAL_PRECONDITIONING = "thermal_preconditioning"
    HOMING_BLADE_HOLDER = "homing_blade_holder"
    CALIBRATING_CAMERA_OFFSET = "calibrating_camera_offset"
    CALIBRATING_BLADE_HOLDER_POSITION = "calibrating_blade_holder_position"
    HOTEND_PICK_PLACE_TEST = "hotend_pick_place_test"
    WAITING_CHAMBER_TEMPERATURE_EQUALIZE = "waiting_chamber_temperature_equalize"
    PREPARING_HOTEND = "preparing_hotend"
    CALIBRATING_NOZZLE_CLUMPING_DETECTION = "calibrating_nozzle_clumping_detection"
    PURIFYING_CHAMBER_AIR = "purifying_chamber_air"
    MEASURING_ROTARY_ATTACHMENT = "measuring_rotary_attachment"
    MOVING_TOOLHEAD_ABOVE_PURGE_CHUTE = "moving_toolhead_above_purge_chute"
    COOLING_NOZZLE = "cooling_nozzle"
    MOVING_TOOLHEAD_TO_BED_CENTER = "moving_toolhead_to_bed_center"
    ACTIVE_ARC_FITTING = "active_arc_fitting"
    HOTEND_TYPE_DETECTION = "hotend_type_detection"
    BUILD_PLATE_ALIGNMENT_DETECTION = "build_plate_alignment_detection"
    HEATBED_SURFACE_FOREIGN_OBJECT_DETECTION = (
        "heatbed_surface_foreign_object_detection"
    )
    HEATBED_UNDERSIDE_FOREIGN_OBJECT_DETECTION = (
        "heatbed_underside_foreign_object_detection"
    )
    PRE_EXTRUSION_BEFORE_PRINTING = "pre_extrusion_before_printing"
    PREPARING_AMS = "preparing_ams"


# stg_cur ids 0..77: every stage but IDLE in member order, with id 18 repeating
# id 12 (calibrating the micro lidar).
_BY_ID = [stage for stage in PrintStage if stage is not PrintStage.IDLE]
_BY_ID.insert(18, PrintStage.CALIBRATING_MICRO_LIDAR)
STAGES_BY_ID: Final[tuple[PrintStage, ...]] = tuple(_BY_ID)
del _BY_ID
IDLE_STAGE_IDS: Final = frozenset({-1, 255})


def print_stage(stage_id: int, *, idle_job: bool = False) -> PrintStage | None:
    """The stage an ``stg_cur`` id means, None for an id this table lacks.

    ``idle_job`` is whether the report's ``print_type`` says idle: P1/A1
    report stage 0 (printing) with it after boot, which means idle.
    """
    if stage_id in IDLE_STAGE_IDS or (stage_id == 0 and idle_job):
        return PrintStage.IDLE
    return STAGES_BY_ID[stage_id] if 0 <= stage_id < len(STAGES_BY_ID) else None


class PrintType(StrEnum):
    """``print_type`` of the report: where the current or last job came from."""

    CLOUD = "cloud"
    LOCAL = "local"
    IDLE = "idle"
    SYSTEM = "system"
