"""Builders of the JSON commands published on ``device/<serial>/request``."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, Final

from .ams import DRYING_COOLING_TEMPERATURE, MAX_DRYING_HOURS
from .auth import AppCertificate
from .const import StorageUrl
from .enums import AirDuctMode, BuzzerMode, Fan, SpeedLevel

type Command = dict[str, Any]

# err_code of a rejected signature (missing, wrong) and of a malformed envelope.
ERR_SIGNATURE = 84033543
ERR_ENVELOPE = 84033545
SIGNATURE_REJECTED = "mqtt message verify failed"


class SequenceCounter:
    """Per-printer increasing sequence ids, echoed back in the printer's ack."""

    def __init__(self, start: int = 1) -> None:
        """Start counting at start."""
        self._counter = itertools.count(start)

    def next(self) -> str:
        """The next id, as the decimal string the firmware expects."""
        return str(next(self._counter))


def get_version(sequence_id: str) -> Command:
    """Ask for firmware versions and modules (printer model, AMS units)."""
    return {"info": {"sequence_id": sequence_id, "command": "get_version"}}


def pushall(sequence_id: str) -> Command:
    """Ask for one full status report."""
    return {
        "pushing": {
            "sequence_id": sequence_id,
            "command": "pushall",
            "version": 1,
            "push_target": 1,
        }
    }


def encode(command: Command) -> bytes:
    """Serialise a command compactly for publishing."""
    return json.dumps(command, separators=(",", ":")).encode()


def sign(command: Command, certificate: AppCertificate) -> Command:
    """Wrap a ``print`` command in the signed ``header`` envelope.

    Firmware with command authorization checks an RSA SHA-256 signature over
    the canonical bytes ``{"print":<inner>}`` (keys sorted, no whitespace).
    Other command classes are not checked and go out unchanged.
    """
    inner = command.get("print")
    if not isinstance(inner, dict):
        return command
    canonical = canonical_print_bytes(inner)
    return {
        "print": inner,
        "header": {
            "sign_ver": "v1.0",
            "sign_alg": "RSA_SHA256",
            "sign_string": certificate.sign(canonical),
            "cert_id": certificate.certificate_id,
            "payload_len": len(canonical),
        },
    }


def canonical_print_bytes(inner: dict[str, Any]) -> bytes:
    """The exact bytes the printer verifies the signature over."""
    body = json.dumps(inner, sort_keys=True, separators=(",", ":"))
    return ('{"print":' + body + "}").encode()


def command_class(command: Command) -> str:
    """The class of a command: print, system, camera, xcam, info, pushing."""
    return next(key for key in command if key != "header")


def with_sequence(command: Command, sequence_id: str) -> Command:
    """A copy of a command carrying the given sequence id."""
    kind = command_class(command)
    return {**command, kind: {**command[kind], "sequence_id": sequence_id}}


def ledctrl(node: str, on: bool) -> Command:
    """Switch a light (works without signing: system class)."""
    return {
        "system": {
            "command": "ledctrl",
            "led_node": node,
            "led_mode": "on" if on else "off",
            "led_on_time": 500,
            "led_off_time": 500,
            "loop_times": 0,
            "interval_time": 0,
        }
    }


def print_action(action: str) -> Command:
    """pause, resume or stop the current job."""
    return {"print": {"command": action, "param": ""}}


def print_speed(level: SpeedLevel) -> Command:
    """Set the speed level; a string on the wire (a bare number misbehaves on P1)."""
    return {"print": {"command": "print_speed", "param": str(int(SpeedLevel(level)))}}


def gcode_line(gcode: str) -> Command:
    """Run G-code lines (each line ends with a newline)."""
    text = gcode if gcode.endswith("\n") else gcode + "\n"
    return {"print": {"command": "gcode_line", "param": text}}


def print_option(option: str, enabled: bool) -> Command:
    """Toggle a print option such as auto_recovery or sound_enable."""
    return {"print": {"command": "print_option", option: enabled}}


def xcam_control(module: str, enabled: bool) -> Command:
    """Toggle an AI detector (spaghetti_detector, first_layer_inspector...)."""
    return {
        "xcam": {
            "command": "xcam_control_set",
            "module_name": module,
            "control": enabled,
            "print_halt": True,
        }
    }


def camera_control(command: str, enabled: bool) -> Command:
    """ipcam_record_set or ipcam_timelapse."""
    return {
        "camera": {"command": command, "control": "enable" if enabled else "disable"}
    }


# ------------------------------------------------------------ temperatures

# The air duct switches to heating above this chamber target (P2S, H2, X2D).
AIR_DUCT_HEATING_ABOVE: Final = 40
# No heater goes this hot; a larger target is a caller's mistake.
_MAX_TEMPERATURE: Final = 500


def _temperature(target: int) -> int:
    if not 0 <= target <= _MAX_TEMPERATURE:
        raise ValueError(f"temperature {target} out of range 0-{_MAX_TEMPERATURE}")
    return target


def set_nozzle_target(target: int, *, tool: int | None = None) -> Command:
    """Set a nozzle's target, °C; dual-nozzle printers name the tool (``T``)."""
    gcode = f"M104 S{_temperature(target)}"
    if tool is not None:
        if tool < 0:
            raise ValueError(f"tool {tool} is negative")
        gcode += f" T{tool}"
    return gcode_line(gcode)


def set_bed_target(target: int) -> Command:
    """Set the bed target, °C."""
    return gcode_line(f"M140 S{_temperature(target)}")


def set_chamber_target(target: int, *, air_duct: bool) -> Command:
    """Set the chamber target, °C.

    Printers with an air duct (``PrinterModel.air_duct``) heat the chamber
    only with the duct in heating mode (``M145 P1``, before the target) and
    go back to cooling (``M145 P0``, after it) for low targets; the X1E heats
    with a plain ``M141``.
    """
    line = f"M141 S{_temperature(target)}\n"
    if not air_duct:
        return gcode_line(line)
    if target > AIR_DUCT_HEATING_ABOVE:
        return gcode_line(f"M145 P1\n{line}")
    return gcode_line(f"{line}M145 P0\n")


# -------------------------------------------------------------------- fans


def set_fan_speed(fan: Fan, percent: int) -> Command:
    """Run a fan at a percentage: ``M106 P<fan> S<0-255>``, rounded up."""
    if not 0 <= percent <= 100:
        raise ValueError(f"fan percent {percent} out of range 0-100")
    pwm = math.ceil(255 * percent / 100)
    return gcode_line(f"M106 P{int(Fan(fan))} S{pwm}")


def set_air_duct(mode: AirDuctMode) -> Command:
    """Switch the air duct mode (P2S, H2 series, X2D)."""
    return {
        "print": {
            "command": "set_airduct",
            "modeId": int(AirDuctMode(mode)),
            "submode": -1,
        }
    }


def buzzer(mode: BuzzerMode) -> Command:
    """Set the buzzer (H2 series): silent, alarm or beep."""
    return {
        "print": {"command": "buzzer_ctrl", "mode": int(BuzzerMode(mode)), "reason": ""}
    }


# -------------------------------------------------------------------- jobs


def project_file(
    *,
    file: str,
    plate: int,
    storage: StorageUrl,
    use_ams: bool,
    ams_mapping: Sequence[int] | None,
    timelapse: bool,
    bed_leveling: bool,
    flow_calibration: bool,
    vibration_calibration: bool,
    bed_type: str = "auto",
    layer_inspect: bool = True,
) -> Command:
    """Print a plate of a ``.3mf`` already on the printer's storage.

    The model table says how the firmware wants the file named (``storage``:
    an SD card or USB path, or the FTP form). ``ams_mapping`` maps each
    filament of the file to a global tray id (-1 unused). Local prints carry
    the ids ``"0"`` as strings, like Bambu Studio's.
    """
    name = file.strip().lstrip("/")
    if not name.lower().endswith(".3mf") or len(name) <= len(".3mf"):
        raise ValueError(f"not a .3mf file: {file!r}")
    if plate < 1:
        raise ValueError(f"plate {plate} is not 1 or more")
    mapping = list(ams_mapping or [])
    for tray in mapping:
        if tray != -1:
            tray_location(tray)
    stem = PurePosixPath(name).name[: -len(".3mf")]
    stem = stem.removesuffix(".gcode") or stem
    return {
        "print": {
            "command": "project_file",
            "param": f"Metadata/plate_{plate}.gcode",
            "url": f"{StorageUrl(storage).value}{name}",
            "file": name,
            "md5": "",
            "project_id": "0",
            "profile_id": "0",
            "task_id": "0",
            "subtask_id": "0",
            "subtask_name": stem,
            "bed_type": bed_type,
            "timelapse": timelapse,
            "bed_leveling": bed_leveling,
            "flow_cali": flow_calibration,
            "vibration_cali": vibration_calibration,
            "layer_inspect": layer_inspect,
            "use_ams": use_ams,
            "ams_mapping": mapping,
        }
    }


def skip_objects(ids: Sequence[int], *, timestamp: int) -> Command:
    """Skip objects of the running job (``identify_id`` of the ``.3mf``)."""
    objects = list(ids)
    if not objects or any(i < 0 for i in objects):
        raise ValueError(f"object ids must be non-negative and not empty: {objects}")
    return {
        "print": {
            "command": "skip_objects",
            "obj_list": objects,
            "timestamp": timestamp,
        }
    }


# --------------------------------------------------------------------- AMS

# Unit id of the external spool holder(s) in AMS commands.
EXTERNAL_AMS_ID: Final = 255
# Global ids of the external spool holders (254 the only or main one).
EXTERNAL_TRAY_IDS: Final = (254, 255)
# Unit ids: AMS, AMS lite, AMS 2 Pro 0-3 (four slots each); AMS HT 128-135
# (one slot each, its global tray id is its unit id).
AMS_UNIT_IDS: Final = range(4)
AMS_HT_UNIT_IDS: Final = range(128, 136)
SLOTS_PER_AMS: Final = 4
_HEX_COLOR: Final = re.compile(r"#?([0-9A-Fa-f]{6}(?:[0-9A-Fa-f]{2})?)")


def global_tray_id(ams_id: int, slot: int) -> int:
    """The global tray id of a slot, as ``tray_now`` and ``ams_mapping`` use it.

    AMS units 0-3 count ``ams_id*4+slot``; an AMS HT's one slot takes its
    unit id; the external spool holders (unit ``EXTERNAL_AMS_ID``) are
    254/255. A slot no unit has raises ValueError.
    """
    if ams_id in AMS_UNIT_IDS and 0 <= slot < SLOTS_PER_AMS:
        return ams_id * SLOTS_PER_AMS + slot
    if ams_id in AMS_HT_UNIT_IDS and slot == 0:
        return ams_id
    if ams_id == EXTERNAL_AMS_ID and slot in EXTERNAL_TRAY_IDS:
        return slot
    raise ValueError(f"no slot {slot} on AMS unit {ams_id}")


def tray_location(global_id: int) -> tuple[int, int]:
    """The unit id and slot of a global tray id (``global_tray_id`` inverse)."""
    if 0 <= global_id < len(AMS_UNIT_IDS) * SLOTS_PER_AMS:
        return divmod(global_id, SLOTS_PER_AMS)
    if global_id in AMS_HT_UNIT_IDS:
        return global_id, 0
    if global_id in EXTERNAL_TRAY_IDS:
        return EXTERNAL_AMS_ID, global_id
    raise ValueError(f"no tray has the global id {global_id}")


def slot_number(slot: int) -> int:
    """The slot number people see (printer screen, Bambu Studio): 1-based."""
    return slot + 1


def unit_number(ams_id: int) -> int:
    """The unit number people see: "AMS 1" for unit 0, "AMS HT 1" for unit 128.

    AMS HT units are counted on their own, so a printer with an AMS 2 Pro
    and an AMS HT shows "AMS 1" and "AMS HT 1". Raises ValueError for an id
    no unit has.
    """
    if ams_id in AMS_HT_UNIT_IDS:
        return ams_id - AMS_HT_UNIT_IDS.start + 1
    return _ams_unit(ams_id) + 1


def _ams_unit(ams_id: int) -> int:
    if ams_id not in AMS_UNIT_IDS and ams_id not in AMS_HT_UNIT_IDS:
        raise ValueError(f"no AMS unit has the id {ams_id}")
    return ams_id


def normalize_color(color: str) -> str:
    """``RRGGBB`` or ``RRGGBBAA`` (``#`` optional) as upper-case ``RRGGBBAA``."""
    match = _HEX_COLOR.fullmatch(color.strip())
    if match is None:
        raise ValueError(f"not a hex colour: {color!r}")
    digits = match.group(1).upper()
    return digits if len(digits) == 8 else f"{digits}FF"


def ams_filament_setting(
    *,
    ams_id: int,
    tray_id: int,
    tray_type: str,
    color: str,
    min_temp: int,
    max_temp: int,
    filament_id: str = "",
) -> Command:
    """Tell the printer what filament a slot holds (third-party spools).

    The external spool is ``ams_id`` 255 with ``tray_id`` 254 (or 255 for
    the second holder of the H2 series).
    """
    global_tray_id(ams_id, tray_id)
    if not tray_type.strip():
        raise ValueError("the filament type is empty")
    _temperature(min_temp)
    _temperature(max_temp)
    if min_temp > max_temp:
        raise ValueError(f"minimum {min_temp} above maximum {max_temp}")
    return {
        "print": {
            "command": "ams_filament_setting",
            "ams_id": ams_id,
            "tray_id": tray_id,
            "tray_info_idx": filament_id,
            "tray_color": normalize_color(color),
            "nozzle_temp_min": min_temp,
            "nozzle_temp_max": max_temp,
            "tray_type": tray_type.strip(),
        }
    }


def ams_load(
    *, ams_id: int, slot: int, target_temp: int, current_temp: int | None = None
) -> Command:
    """Load a slot's filament, heating the nozzle to ``target_temp``.

    ``current_temp`` is the temperature the loaded filament is cut and pulled
    back at; without it the target serves for both.
    """
    target = global_tray_id(ams_id, slot)
    current = target_temp if current_temp is None else current_temp
    return {
        "print": {
            "command": "ams_change_filament",
            "ams_id": ams_id,
            "slot_id": slot,
            "target": target,
            "curr_temp": _temperature(current),
            "tar_temp": _temperature(target_temp),
        }
    }


def ams_unload(
    *, ams_id: int, target_temp: int = 0, current_temp: int | None = None
) -> Command:
    """Unload the filament fed from a unit (slot and target 255 = none)."""
    if ams_id != EXTERNAL_AMS_ID:
        _ams_unit(ams_id)
    current = target_temp if current_temp is None else current_temp
    return {
        "print": {
            "command": "ams_change_filament",
            "ams_id": ams_id,
            "slot_id": 255,
            "target": 255,
            "curr_temp": _temperature(current),
            "tar_temp": _temperature(target_temp),
        }
    }


def ams_read_rfid(*, ams_id: int, slot: int) -> Command:
    """Read a slot's RFID tag again."""
    _ams_unit(ams_id)
    global_tray_id(ams_id, slot)
    return {"print": {"command": "ams_get_rfid", "ams_id": ams_id, "slot_id": slot}}


# Drying limits of the AMS 2 Pro and AMS HT (the printer refuses more).
_MAX_DRYING_TEMPERATURE: Final = 100


def ams_start_drying(
    *,
    ams_id: int,
    temperature: int,
    hours: int,
    filament: str = "",
    rotate_tray: bool = False,
    cooling_temp: int = DRYING_COOLING_TEMPERATURE,
) -> Command:
    """Dry an AMS 2 Pro / AMS HT for ``hours`` at ``temperature`` °C.

    Mode 1 is Bambu Studio's timed drying; ``duration`` is in hours and the
    humidity target is unused (0).
    """
    _ams_unit(ams_id)
    if not 1 <= temperature <= _MAX_DRYING_TEMPERATURE:
        raise ValueError(f"drying temperature {temperature} out of range")
    if not 1 <= hours <= MAX_DRYING_HOURS:
        raise ValueError(f"drying hours {hours} out of range 1-{MAX_DRYING_HOURS}")
    if not 0 <= cooling_temp <= _MAX_DRYING_TEMPERATURE:
        raise ValueError(f"cooling temperature {cooling_temp} out of range")
    return _drying(
        ams_id,
        mode=1,
        temp=temperature,
        cooling_temp=cooling_temp,
        duration=hours,
        rotate_tray=rotate_tray,
        filament=filament,
    )


def ams_stop_drying(*, ams_id: int) -> Command:
    """Stop drying (mode 0)."""
    _ams_unit(ams_id)
    return _drying(
        ams_id,
        mode=0,
        temp=0,
        cooling_temp=0,
        duration=0,
        rotate_tray=False,
        filament="",
    )


def _drying(
    ams_id: int,
    *,
    mode: int,
    temp: int,
    cooling_temp: int,
    duration: int,
    rotate_tray: bool,
    filament: str,
) -> Command:
    return {
        "print": {
            "command": "ams_filament_drying",
            "ams_id": ams_id,
            "temp": temp,
            "cooling_temp": cooling_temp,
            "duration": duration,
            "humidity": 0,
            "mode": mode,
            "rotate_tray": rotate_tray,
            "filament": filament,
            "close_power_conflict": False,
        }
    }


# ------------------------------------------------------------ AMS settings

# ``ams_id`` of ``ams_user_setting`` meaning every unit.
ALL_AMS_UNITS: Final = -1


def ams_user_setting(
    *, startup_read: bool, tray_read: bool, remain_detection: bool
) -> Command:
    """Set the AMS options of every unit at once, as Bambu Studio does.

    ``startup_read``: read every spool's RFID at power on; ``tray_read``: read
    a spool when it is inserted; ``remain_detection``: estimate the filament
    left on spools. The firmware takes all three together, so a caller
    changing one repeats the reported values of the others.
    """
    return {
        "print": {
            "command": "ams_user_setting",
            "ams_id": ALL_AMS_UNITS,
            "startup_read_option": startup_read,
            "tray_read_option": tray_read,
            "calibrate_remain_flag": remain_detection,
        }
    }
