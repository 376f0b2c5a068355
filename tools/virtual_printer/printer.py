"""Virtual Bambu Lab printer "firmware": a real MQTT client of a test broker.

Why: integration tests and the virtual printer farm need a printer that
answers like the real one (PROTOCOL.md 2.3-2.5) without hardware. Like
firmware, it is an MQTT client: it subscribes to ``device/<serial>/request``
and publishes on ``device/<serial>/report``, on the broker it was made for
and on any mirror (a printer reachable via the cloud and on the LAN). It
connects over the broker's internal listener (see
:mod:`tools.virtual_printer.mosquitto`) and reconnects when the broker comes
back. Command handling is synchronous and public (:meth:`VirtualPrinter.handle`,
:meth:`VirtualPrinter.on_request`) so firmware behaviour is testable without
a network.

Behaviour:

* ``pushing.pushall`` / ``pushing.start`` -> a full ``push_status`` (msg 0).
* ``info.get_version`` -> module list (ota, ap/esp32, mc, th, AMS units).
* ``print.*`` -> ack ``{"print":{...echo...,"result":"success"}}`` and the
  effect applied to the state (pause, resume, stop, print_speed, gcode_line
  temperatures/fans, project_file, skip_objects, AMS commands); then a report.
* ``system.ledctrl`` -> ``lights_report`` updated, acked and reported.
* X1/H2 style printers report the full object, P1/A1 style only the changed
  top-level fields (``msg`` 1).
* With ``signature_required`` ``print.*`` commands need a signed ``header``
  envelope (see :func:`canonical_print_bytes`), otherwise they are refused
  with ``err_code`` 84033543 (84033545 for a malformed envelope).

All state values below are made up for tests, written from PROTOCOL.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .client import MqttClient
from .mosquitto import MqttBroker

_LOGGER = logging.getLogger(__name__)

ERR_VERIFY_FAILED = 0x05024007
"""84033543: ``print.*`` without (or with a wrong) signature."""
ERR_ENVELOPE_MALFORMED = 0x05024009
"""84033545: the ``header`` envelope is not well formed."""
VERIFY_FAILED_REASON = "mqtt message verify failed"
FUN_SIGNATURE_REQUIRED = 0x20000000
FUN2_REMOTE_DRYING = 1 << 5
"""``fun2`` bit 5: the AMS 2 Pro / AMS HT dry on command (else screen only)."""
DRYER_MAX_TEMPERATURE = {"n3f": 65, "n3s": 85}
"""Units with a heater (get_version module prefix) and their top temperature."""
DRYING = 2
"""Dryer state (``info`` bits 4-7) while drying; 0 idle."""
NO_REMOTE_DRYING_REASON = "remote drying not supported"
CANNOT_DRY_REASON = "ams does not support drying"
DRYING_BLOCKED_REASON = "drying not allowed now"
PRINT_CANCELLED = 50348044
"""``print_error`` 0300_400C "print cancelled by user", reset on the next tick."""
SPEED_MAGNITUDE = {1: 50, 2: 100, 3: 124, 4: 166}
LED_MODES = ("on", "off", "flashing")
LED_TIMING = ("led_on_time", "led_off_time", "loop_times", "interval_time")
CLASSES = ("print", "pushing", "info", "system", "camera", "xcam", "upgrade")

type State = dict[str, Any]


def canonical_print_bytes(inner: Mapping[str, Any]) -> bytes:
    """The exact bytes a signed ``print`` command's signature covers.

    ``'{"print":' + json.dumps(inner, sort_keys=True, separators=(",", ":"))
    + '}'`` encoded as UTF-8, where ``inner`` is the value of the ``"print"``
    key as received (``json.dumps`` defaults otherwise, so ``ensure_ascii``
    is on). ``header.payload_len`` must equal the length of these bytes and
    ``header.sign_string`` is base64 of an RSA PKCS#1 v1.5 SHA-256 signature
    over them. The rest of the envelope: ``sign_ver`` "v1.0", ``sign_alg``
    "RSA_SHA256", ``cert_id`` a non-empty string.
    """
    body = json.dumps(inner, sort_keys=True, separators=(",", ":"))
    return ('{"print":' + body + "}").encode("utf-8")


def pack_temp(current: float, target: float) -> int:
    """Newer firmware packing: low 16 bits current, high 16 bits target."""
    return (int(target) & 0xFFFF) << 16 | (int(current) & 0xFFFF)


def unpack_temp(packed: int) -> tuple[int, int]:
    """``(current, target)`` of a packed ``device.*.temp`` value."""
    return packed & 0xFFFF, packed >> 16 & 0xFFFF


def deep_merge(into: State, update: Mapping[str, Any]) -> None:
    """Merge a delta like clients do: dicts recursively, the rest replaced."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


# -- initial state builders --------------------------------------------------

_LOCALHOST_LE = 0x0100007F  # 127.0.0.1 as the little-endian uint32 printers send


def _tray(
    slot: int,
    kind: str,
    color: str,
    remain: int,
    *,
    brand: str = "Bambu",
    idx: str = "GFA00",
    temps: tuple[int, int] = (190, 230),
) -> dict[str, Any]:
    bambu = brand == "Bambu"
    return {
        "id": str(slot),
        "state": 11,
        "tray_type": kind,
        "tray_sub_brands": f"{kind} Basic" if bambu else "",
        "tray_color": color,
        "cols": [color],
        "ctype": 0,
        "tray_info_idx": idx,
        "tray_id_name": f"A00-{kind[0]}{slot}" if bambu else "",
        "tray_weight": "1000",
        "tray_diameter": "1.75",
        "drying_temp": "55",
        "drying_time": "8",
        "bed_temp_type": "0",
        "bed_temp": "0",
        "nozzle_temp_min": str(temps[0]),
        "nozzle_temp_max": str(temps[1]),
        "remain": remain if bambu else -1,
        "cali_idx": -1,
        "total_len": 330000,
        "tag_uid": f"51C0FFEE0000{slot:04d}" if bambu else "0000000000000000",
        "tray_uuid": f"{slot:032X}" if bambu else "0" * 32,
    }


def _ams_block(units: list[dict[str, Any]]) -> dict[str, Any]:
    unit_bits = tray_bits = 0
    for unit in units:
        unit_id = int(unit["id"])
        base = unit_id if unit_id >= 128 else unit_id * 4
        if unit_id < 128:
            unit_bits |= 1 << unit_id
        for tray in unit["tray"]:
            if tray.get("tray_type") and base + int(tray["id"]) < 64:
                tray_bits |= 1 << (base + int(tray["id"]))
    return {
        "ams": units,
        "ams_exist_bits": f"{unit_bits:x}",
        "tray_exist_bits": f"{tray_bits:x}",
        "tray_is_bbl_bits": f"{tray_bits:x}",
        "tray_read_done_bits": f"{tray_bits:x}",
        "tray_reading_bits": "0",
        "tray_now": "255",
        "tray_pre": "255",
        "tray_tar": "255",
        "version": 4,
        "insert_flag": True,
        "power_on_flag": False,
    }


def _ams_unit(unit: int, trays: list[dict[str, Any]], humidity: str) -> State:
    return {
        "id": str(unit),
        "humidity": humidity,
        "humidity_raw": {"5": "11", "4": "24", "3": "37"}.get(humidity, "50"),
        "temp": "24.6",
        "dry_time": 0,
        "tray": trays,
    }


def _external_spool(slot_id: str = "254") -> dict[str, Any]:
    return {
        "id": slot_id,
        "tray_type": "",
        "tray_color": "00000000",
        "tray_info_idx": "",
        "nozzle_temp_min": "0",
        "nozzle_temp_max": "0",
        "remain": 0,
    }


def _common(*, idle_stage: int, chamber: float, fun: int) -> State:
    """Fields every family reports, idle after boot."""
    return {
        "nozzle_temper": 24.0,
        "nozzle_target_temper": 0.0,
        "bed_temper": 23.5,
        "bed_target_temper": 0.0,
        "chamber_temper": chamber,
        "gcode_state": "IDLE",
        "print_type": "idle",
        "mc_percent": 0,
        "mc_remaining_time": 0,
        "mc_print_stage": "1",
        "mc_print_sub_stage": 0,
        "layer_num": 0,
        "total_layer_num": 0,
        "stg_cur": idle_stage,
        "stg": [],
        "subtask_name": "",
        "gcode_file": "",
        "task_id": "0",
        "subtask_id": "0",
        "project_id": "0",
        "profile_id": "0",
        "spd_lvl": 2,
        "spd_mag": 100,
        "cooling_fan_speed": "0",
        "big_fan1_speed": "0",
        "big_fan2_speed": "0",
        "heatbreak_fan_speed": "0",
        "wifi_signal": "-47dBm",
        "net": {"conf": 16, "info": [{"ip": _LOCALHOST_LE, "mask": 0x00FFFFFF}]},
        "hms": [],
        "print_error": 0,
        "sdcard": True,
        "hw_switch_state": 1,
        "home_flag": 0x100 | 0x80 | 0x400,
        "nozzle_diameter": "0.4",
        "nozzle_type": "hardened_steel",
        "s_obj": [],
        "fun": f"{fun:X}",
        "online": {"ahb": False, "rfid": False, "version": 3},
        "upload": {"status": "idle", "progress": 0, "message": ""},
        "xcam": {
            "first_layer_inspector": True,
            "spaghetti_detector": True,
            "print_halt": True,
            "printing_monitor": True,
            "halt_print_sensitivity": "medium",
            "buildplate_marker_detector": True,
            "allow_skip_parts": False,
        },
    }


def _ipcam(
    *,
    record: str = "enable",
    resolution: str = "1080p",
    rtsp_url: str | None = None,
    mode_bits: int = 3,
) -> dict[str, Any]:
    """The camera block; only X1-class models (and the P2S) report ``rtsp_url``."""
    ipcam: dict[str, Any] = {
        "ipcam_dev": "1",
        "ipcam_record": record,
        "timelapse": "disable",
        "resolution": resolution,
        "tutk_server": "disable",
    }
    if rtsp_url is not None:
        ipcam["rtsp_url"] = rtsp_url
    ipcam["mode_bits"] = mode_bits
    return ipcam


def _upgrade_state(**extra: str) -> dict[str, Any]:
    """The idle upgrade block of the X1, H2D and P2S; ``extra``: more versions."""
    return {
        "status": "IDLE",
        "progress": "0",
        "new_version_state": 2,
        "ota_new_version_number": "",
        "ams_new_version_number": "",
        **extra,
    }


def _p1_upgrade_state(version: str) -> dict[str, Any]:
    return {
        "status": "IDLE",
        "progress": "0",
        "new_version_state": 2,
        "new_ver_list": [],
        "message": "",
        "err_code": 0,
        "force_upgrade": False,
        "dis_state": 0,
        "sequence_id": 0,
        "ota_new_version_number": "",
        "cur_ver": version,
    }


def x1c_state() -> State:
    """X1 Carbon, idle, one AMS with three spools, full reports."""
    state = _common(idle_stage=-1, chamber=27.0, fun=0x18CFF8CFF)
    state.update(
        lights_report=[
            {"node": "chamber_light", "mode": "on"},
            {"node": "work_light", "mode": "off"},
        ],
        ipcam=_ipcam(rtsp_url="rtsps://127.0.0.1/streaming/live/1"),
        upgrade_state=_upgrade_state(ahb_new_version_number=""),
        ams=_ams_block(
            [
                _ams_unit(
                    0,
                    [
                        _tray(0, "PLA", "F4EE2AFF", 87, idx="GFA00"),
                        _tray(1, "PETG", "1F79E5FF", 42, idx="GFG00", temps=(220, 260)),
                        _tray(2, "PLA", "FFFFFFFF", -1, brand="Generic", idx="GFL99"),
                        {"id": "3", "state": 0},
                    ],
                    humidity="4",
                )
            ]
        ),
        vt_tray=_external_spool(),
    )
    return state


def p1s_state() -> State:
    """P1S, idle, one AMS; ESP32 firmware that pushes deltas."""
    state = _common(idle_stage=255, chamber=5.0, fun=0x0C8FF8CFF)
    state.update(
        nozzle_type="stainless_steel",
        lights_report=[{"node": "chamber_light", "mode": "on"}],
        ipcam=_ipcam(mode_bits=2),
        upgrade_state=_p1_upgrade_state("01.08.02.00"),
        ams=_ams_block(
            [
                _ams_unit(
                    0,
                    [
                        {**_tray(0, "PLA", "000000FF", 64), "k": 0.02, "n": 1},
                        {**_tray(1, "PLA", "D02E2EFF", 100), "k": 0.02, "n": 1},
                        {"id": "2", "state": 0},
                        {"id": "3", "state": 0},
                    ],
                    humidity="5",
                )
            ]
        ),
        vt_tray=_external_spool(),
    )
    return state


def a1mini_state() -> State:
    """A1 mini, idle, AMS lite with four spools; delta pushes, no lights."""
    state = _common(idle_stage=255, chamber=5.0, fun=0x08CFF8CFF)
    state.update(
        nozzle_type="stainless_steel",
        lights_report=[],
        ipcam=_ipcam(record="disable", resolution="720p", mode_bits=2),
        upgrade_state=_p1_upgrade_state("01.05.00.00"),
        ams=_ams_block(
            [
                _ams_unit(
                    0,
                    [
                        _tray(0, "PLA", "E87B1CFF", 77),
                        _tray(1, "PLA", "27AE60FF", 12),
                        _tray(2, "PLA", "8E44ADFF", 55),
                        _tray(3, "TPU", "101010FF", -1, brand="Generic"),
                    ],
                    humidity="5",
                )
            ]
        ),
        vt_tray=_external_spool(),
    )
    return state


def h2d_state() -> State:
    """H2D, idle, two nozzles with packed ``device.*`` temperatures."""
    state = _common(idle_stage=255, chamber=26.0, fun=0x1CCFF8CFF)
    state.update(
        nozzle_type="HS01",
        lights_report=[
            {"node": "chamber_light", "mode": "on"},
            {"node": "chamber_light2", "mode": "on"},
        ],
        ipcam=_ipcam(rtsp_url="disable"),
        upgrade_state=_upgrade_state(),
        device={
            "extruder": {
                "info": [
                    {"id": 0, "temp": pack_temp(24, 0)},
                    {"id": 1, "temp": pack_temp(25, 0)},
                ]
            },
            "bed": {"info": {"temp": pack_temp(23, 0)}},
            "ctc": {"info": {"temp": pack_temp(26, 0)}},
            "nozzle": {
                "info": [
                    {"id": 0, "diameter": 0.4, "type": "HS01"},
                    {"id": 1, "diameter": 0.4, "type": "HS01"},
                ]
            },
            "airduct": _airduct(),
        },
        ams=_ams_block(
            [
                _ams_unit(
                    0,
                    [
                        _tray(0, "PLA", "2E86C1FF", 93),
                        _tray(1, "PLA", "C0392BFF", 58),
                        _tray(2, "PETG", "17A589FF", 31, idx="GFG00"),
                        _tray(3, "ABS", "7F8C8DFF", 80, idx="GFB00"),
                    ],
                    humidity="3",
                ),
                _ams_unit(
                    128,
                    [_tray(0, "PA", "202020FF", 66, idx="GFN03", temps=(260, 290))],
                    humidity="5",
                ),
            ]
        ),
        vir_slot=[_external_spool("254"), _external_spool("255")],
    )
    # Firmware that dries its AMS 2 Pro / AMS HT on command (fun2 bit 5).
    state["fun2"] = f"{FUN2_REMOTE_DRYING:X}"
    for unit in state["ams"]["ams"]:
        unit.update(
            info="1001",
            dry_setting={"dry_temperature": -1, "dry_duration": -1, "dry_filament": ""},
            dry_sf_reason=[],
        )
    return state


def _airduct(*extra_parts: dict[str, int]) -> dict[str, Any]:
    """``device.airduct``: cooling mode; fans and flaps as parts (state in %)."""
    return {
        "modeCur": 0,
        "modeList": [
            {"modeId": 0, "ctrl": [16, 32, 48], "off": [96]},
            {"modeId": 1, "ctrl": [16], "off": [32, 48]},
        ],
        "parts": [
            {"id": 16, "func": 0, "range": 6553600, "state": 0},
            {"id": 32, "func": 1, "range": 6553600, "state": 0},
            {"id": 48, "func": 2, "range": 6553600, "state": 0},
            {"id": 96, "func": 3, "range": 6553600, "state": 100},
            *extra_parts,
        ],
    }


def p2s_state() -> State:
    """P2S, idle, one AMS 2 Pro; air duct with the secondary aux fan (P10)."""
    state = _common(idle_stage=255, chamber=25.0, fun=0x1CCFF8CFF)
    state.update(
        nozzle_type="HS01",
        lights_report=[{"node": "chamber_light", "mode": "on"}],
        ipcam=_ipcam(rtsp_url="rtsps://127.0.0.1/streaming/live/1"),
        upgrade_state=_upgrade_state(),
        device={
            "extruder": {"info": [{"id": 0, "temp": pack_temp(24, 0)}]},
            "bed": {"info": {"temp": pack_temp(23, 0)}},
            "ctc": {"info": {"temp": pack_temp(25, 0)}},
            "airduct": _airduct(
                {"id": SECONDARY_AUX_FAN_PART, "func": 4, "range": 6553600, "state": 0}
            ),
        },
        # Every detector announced: tangle, nozzle clumping, air printing.
        home_flag=0x100
        | 0x80
        | 0x400
        | HOME_FLAG_TANGLE_SUPPORTED
        | HOME_FLAG_BLOB_SUPPORTED
        | HOME_FLAG_AIR_PRINT_SUPPORTED,
        ams=_ams_block(
            [
                _ams_unit(
                    0,
                    [
                        _tray(0, "PLA", "F5F5F5FF", 71),
                        _tray(1, "PETG", "1ABC9CFF", 45, idx="GFG00"),
                        {"id": "2", "state": 0},
                        {"id": "3", "state": 0},
                    ],
                    humidity="4",
                )
            ]
        ),
        vt_tray=_external_spool(),
    )
    return state


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """How one model family looks on the wire."""

    key: str
    product_name: str
    project_name: str
    """``ota.project_name``: vendor model id (``C12``, ``N1``; empty on X1C)."""
    serial_prefix: str
    ap_module: str
    ap_hw: str
    full_reports: bool
    build_state: Callable[[], State]
    ams_modules: tuple[tuple[str, str, str], ...]
    """``(module name, hw_ver, serial prefix)`` per AMS unit."""
    sw_ver: str


MODELS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec(
            "X1C",
            "Bambu Lab X1-Carbon",
            "",  # X1C firmware leaves project_name empty (PROTOCOL 5)
            "00M",
            "ap",
            "AP05",
            True,
            x1c_state,
            (("ams/0", "AMS08", "006"),),
            "01.09.01.00",
        ),
        ModelSpec(
            "P1S",
            "Bambu Lab P1S",
            "C12",
            "01P",
            "esp32",
            "AP04",
            False,
            p1s_state,
            (("ams/0", "AMS08", "006"),),
            "01.08.02.00",
        ),
        ModelSpec(
            "A1MINI",
            "Bambu Lab A1 mini",
            "N1",
            "030",
            "esp32",
            "AP05",
            False,
            a1mini_state,
            (("ams_f1/0", "AMS_F102", "03C"),),
            "01.05.00.00",
        ),
        ModelSpec(
            "H2D",
            "Bambu Lab H2D",
            "O1D",
            "094",
            "ap",
            "AP07",
            True,
            h2d_state,
            (("n3f/0", "N3F05", "19C"), ("n3s/128", "N3S05", "19F")),
            "01.02.00.00",
        ),
        ModelSpec(
            "P2S",
            "Bambu Lab P2S",
            "N7",
            "22E",
            "ap",
            "AP08",
            True,
            p2s_state,
            (("n3f/0", "N3F05", "19C"),),
            "01.00.00.00",
        ),
    )
}


# -- the printer ---------------------------------------------------------------

type _Outcome = tuple[str | None, tuple[str, ...]]
"""``(error reason or None, top-level keys whose state changed)``."""

_GCODE_WORD = re.compile(r"([A-Z])(-?\d+(?:\.\d+)?)")
_PRINT_EFFECTS = frozenset(
    {
        "pause",
        "resume",
        "stop",
        "print_speed",
        "gcode_line",
        "project_file",
        "gcode_file",
        "skip_objects",
        "print_option",
        "ams_change_filament",
        "ams_filament_setting",
        "ams_filament_drying",
        "ams_get_rfid",
        "ams_user_setting",
        "buzzer_ctrl",
        "set_airduct",
    }
)
"""``print`` commands with a ``_cmd_<name>`` method changing the state."""
_ACK_ONLY = frozenset(
    {
        "calibration",
        "unload_filament",
        "ams_control",
        "extrusion_cali_sel",
    }
)
"""``print`` commands acknowledged without a modelled effect."""
_BUSY_STATES = frozenset({"RUNNING", "PAUSE", "PREPARE"})
BUSY_REASON = "printer is busy printing"
FILE_NOT_FOUND_REASON = "file not found"
NOT_PRINTING_REASON = "no print job running"
_STORAGE_PREFIXES = ("file:///sdcard/", "file:///media/usb0/", "ftp://")


def storage_path(inner: Mapping[str, Any]) -> str:
    """The storage path a ``project_file`` / ``gcode_file`` names.

    The URL (``file:///sdcard/<path>``, ``file:///media/usb0/<path>``,
    ``ftp://<path>``) or, without one, ``file`` / ``param``; always absolute.
    """
    url = str(inner.get("url") or "")
    for prefix in _STORAGE_PREFIXES:
        if url.startswith(prefix):
            return "/" + url[len(prefix) :].lstrip("/")
    name = str(inner.get("file") or inner.get("param") or "")
    return "/" + name.removeprefix("/sdcard").lstrip("/")


_FAN_KEYS = {"1": "cooling_fan_speed", "2": "big_fan1_speed", "3": "big_fan2_speed"}
SECONDARY_AUX_FAN_PART = 160
"""``device.airduct.parts`` id of the P2S/X2D secondary aux fan (``M106 P10``)."""
UNSUPPORTED_REASON = "unsupported command"
AIR_DUCT_MODES = (0, 1)
BUZZER_MODES = (0, 1, 2)
BUZZER_MODELS = frozenset({"H2D"})
"""Models with the buzzer of ``buzzer_ctrl``; other firmware refuses it."""
HOME_FLAG_AMS_REMAIN = 1 << 7
HOME_FLAG_AMS_AUTO_REFILL = 1 << 10
HOME_FLAG_TANGLE_SUPPORTED = 1 << 19
HOME_FLAG_BLOB_SUPPORTED = 1 << 25
HOME_FLAG_AIR_PRINT_SUPPORTED = 1 << 29
_DETECTOR_BITS = {
    "filament_tangle_detect": (1 << 20, HOME_FLAG_TANGLE_SUPPORTED),
    "nozzle_blob_detect": (1 << 24, HOME_FLAG_BLOB_SUPPORTED),
    "air_print_detect": (1 << 28, HOME_FLAG_AIR_PRINT_SUPPORTED),
}
"""``print_option`` key -> (home_flag bit when on, bit saying it is supported)."""


class VirtualPrinter:
    """One printer's firmware: state, command handling and reports.

    ``model`` is a key of :data:`MODELS`; ``state`` overrides the initial
    ``print`` object; ``full_reports`` overrides the family's report style.
    ``await start()`` connects to the broker (and the mirrors) and begins
    answering; :meth:`detach` / :meth:`attach` make it fall silent and talk
    again without disconnecting.
    """

    def __init__(
        self,
        broker: MqttBroker,
        serial: str,
        model: str = "X1C",
        *,
        state: State | None = None,
        full_reports: bool | None = None,
        signature_required: bool = False,
        public_key: rsa.RSAPublicKey | None = None,
        access_code: str = "12345678",
        log_size: int = 1000,
    ) -> None:
        self.broker = broker
        self.serial = serial
        self.spec = MODELS[model]
        self.state: State = state if state is not None else self.spec.build_state()
        self.full_reports = (
            self.spec.full_reports if full_reports is None else full_reports
        )
        self.public_key = public_key
        self.access_code = access_code
        self.online = True
        self.answering = True
        """False after :meth:`detach`: requests are ignored, nothing is reported."""
        self.received: list[dict[str, Any]] = []
        """Every command received while online, oldest first (bounded)."""
        self.storage: dict[str, bytes] | None = None
        """Files on the printer's storage (absolute path -> content), as the
        FTPS server serves them; None: storage not modelled, any file prints."""
        self._log_size = log_size
        self._report_seq = 0
        self._brokers: list[MqttBroker] = [broker]
        self._clients: dict[MqttBroker, MqttClient] = {}
        self._started = False
        self._ticker: asyncio.Task[None] | None = None
        self.signature_required = signature_required

    # -- wiring ------------------------------------------------------------

    @property
    def request_topic(self) -> str:
        """Where clients publish commands."""
        return f"device/{self.serial}/request"

    @property
    def report_topic(self) -> str:
        """Where the printer publishes reports and acks."""
        return f"device/{self.serial}/report"

    def attach(self) -> None:
        """Answer requests and report again (after :meth:`detach`)."""
        self.answering = True

    def detach(self) -> None:
        """Fall silent: requests are ignored and nothing is reported."""
        self.answering = False

    async def add_mirror(self, broker: MqttBroker) -> None:
        """Also serve ``broker`` (e.g. the printer's own LAN broker).

        Reports go to every broker, and requests from any of them are
        handled, like one printer reachable both via the cloud and the LAN.
        Once started, the printer connects to a new mirror at once.
        """
        if broker in self._brokers:
            return
        self._brokers.append(broker)
        if self._started:
            await self._connect(broker)

    @property
    def brokers(self) -> tuple[MqttBroker, ...]:
        """The broker given at construction, then the mirrors."""
        return tuple(self._brokers)

    async def start(self, interval: float | None = None) -> None:
        """Connect to every broker; subscribed when this returns.

        With ``interval``, also :meth:`tick` periodically.
        """
        self._started = True
        for broker in self._brokers:
            await self._connect(broker)
        if interval is not None and self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_forever(interval))

    async def _connect(self, broker: MqttBroker) -> None:
        if broker in self._clients:
            return
        client = broker.own_client(
            f"virtual-printer-{self.serial}",
            subscriptions=[(self.request_topic, 1)],
            on_message=self._on_message,
        )
        self._clients[broker] = client
        await client.start()

    async def stop(self) -> None:
        """Disconnect and stop the periodic ticker (no task is left behind)."""
        self._started = False
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.stop()

    async def __aenter__(self) -> VirtualPrinter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _tick_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick()

    # -- state and reports -------------------------------------------------

    @property
    def signature_required(self) -> bool:
        """Authorization firmware: ``print.*`` needs a signed envelope."""
        return bool(int(self.state.get("fun", "0"), 16) & FUN_SIGNATURE_REQUIRED)

    @signature_required.setter
    def signature_required(self, required: bool) -> None:
        fun = int(self.state.get("fun", "0"), 16) & ~FUN_SIGNATURE_REQUIRED
        self.state["fun"] = f"{fun | (FUN_SIGNATURE_REQUIRED if required else 0):X}"

    def publish(self, message: Mapping[str, Any]) -> int:
        """Publish anything on the report topic (unless offline or detached).

        Returns on how many broker connections the message went out.
        """
        if not self.online or not self.answering:
            return 0
        return self._deliver(json.dumps(message, separators=(",", ":")).encode())

    def _deliver(self, payload: bytes) -> int:
        """Hand a report to every connected broker (tests may record instead)."""
        return sum(
            client.publish(self.report_topic, payload)
            for client in self._clients.values()
        )

    def _next_seq(self) -> str:
        self._report_seq += 1
        return str(self._report_seq)

    def publish_full(self) -> int:
        """A full ``push_status`` snapshot (``msg`` 0), what pushall returns."""
        body = {**copy.deepcopy(self.state), "command": "push_status", "msg": 0}
        body["sequence_id"] = self._next_seq()
        return self.publish({"print": body})

    def publish_delta(self, fields: Mapping[str, Any]) -> int:
        """Merge ``fields`` into the state and push only them (P1/A1 style)."""
        deep_merge(self.state, fields)
        body = {**copy.deepcopy(dict(fields)), "command": "push_status", "msg": 1}
        body["sequence_id"] = self._next_seq()
        return self.publish({"print": body})

    def update(self, fields: Mapping[str, Any]) -> int:
        """Merge ``fields`` and report them in this family's style."""
        if self.full_reports:
            deep_merge(self.state, fields)
            return self.publish_full()
        return self.publish_delta(fields)

    def _report_keys(self, *keys: str) -> None:
        self.update({key: self.state[key] for key in keys})

    def set_online(self, online: bool) -> None:
        """Cloud presence: going offline announces it and stops reporting."""
        if online == self.online:
            return
        if online:
            self.online = True
            self.publish({"event": {"event": "client.connected"}})
            self.publish_full()
        else:
            self.publish({"event": {"event": "client.disconnected"}})
            self.online = False

    def tick(self) -> None:
        """One simulation step: temperatures settle, a running job advances."""
        if not self.online:
            return
        changed: set[str] = set()
        for current_key, target_key in (
            ("nozzle_temper", "nozzle_target_temper"),
            ("bed_temper", "bed_target_temper"),
        ):
            current = float(self.state.get(current_key, 0.0))
            target = max(float(self.state.get(target_key, 0.0)), 23.0)
            if current != target:
                step = max(-5.0, min(5.0, target - current))
                self.state[current_key] = round(current + step, 1)
                changed.add(current_key)
        if "device" in self.state and self._settle_packed():
            changed.add("device")
        if self.state.get("print_error") == PRINT_CANCELLED:
            self.state["print_error"] = 0
            changed.add("print_error")
        if self._advance_drying():
            changed.add("ams")
        if self.state.get("gcode_state") == "RUNNING":
            self._advance_job()
            changed.update(
                ("mc_percent", "mc_remaining_time", "layer_num", "gcode_state")
            )
        if changed:
            self._report_keys(*sorted(changed))

    def _settle_packed(self) -> bool:
        device = self.state["device"]
        slots = [*device["extruder"]["info"], device["bed"]["info"]]
        moved = False
        for slot in slots:
            current, target = unpack_temp(int(slot["temp"]))
            goal = max(target, 23)
            if current != goal:
                current += max(-5, min(5, goal - current))
                slot["temp"] = pack_temp(current, target)
                moved = True
        return moved

    def _advance_job(self) -> None:
        percent = min(100, int(self.state.get("mc_percent", 0)) + 1)
        total = int(self.state.get("total_layer_num", 0))
        self.state["mc_percent"] = percent
        self.state["layer_num"] = total * percent // 100
        self.state["mc_remaining_time"] = max(
            0, int(self.state.get("mc_remaining_time", 0)) - 1
        )
        if percent == 100:
            self.state.update(
                gcode_state="FINISH",
                mc_remaining_time=0,
                stg_cur=self._idle_stage(),
                mc_print_stage="1",
            )

    def _idle_stage(self) -> int:
        return -1 if self.spec.key.startswith("X1") else 255

    @property
    def idle_stage(self) -> int:
        """``stg_cur`` this family reports when idle (-1 on X1, else 255)."""
        return self._idle_stage()

    def set_hms(self, entries: list[tuple[int, int]]) -> int:
        """Raise HMS notifications ``(attr, code)``; an empty list clears them."""
        return self.update({"hms": [{"attr": a, "code": c} for a, c in entries]})

    # -- requests ----------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes, _qos: int) -> None:
        self.on_request(topic, payload)

    def on_request(self, topic: str, payload: bytes) -> None:
        """One message from the broker, as firmware gets it (public for tests)."""
        if topic != self.request_topic or not self.online or not self.answering:
            return
        try:
            message = json.loads(payload)
        except ValueError:
            _LOGGER.debug("%s: ignoring a non-JSON request", self.serial)
            return
        if not isinstance(message, dict):
            return
        self.received.append(message)
        del self.received[: -self._log_size]
        self.handle(message)

    def handle(self, message: Mapping[str, Any]) -> None:
        """Process one request as the firmware would (public for tests)."""
        kind = next((k for k in CLASSES if isinstance(message.get(k), dict)), None)
        if kind is None:
            return
        inner: dict[str, Any] = message[kind]
        command = inner.get("command")
        if kind == "pushing":
            if command in ("pushall", "start"):
                self.publish_full()
        elif kind == "info":
            if command == "get_version":
                self._reply_version(inner)
        elif kind == "print":
            self._handle_print(message, inner)
        elif kind == "system":
            self._handle_system(inner)
        else:
            self._handle_other(kind, inner)

    def _ack(
        self,
        kind: str,
        inner: Mapping[str, Any],
        error: str | None = None,
        **extra: Any,
    ) -> None:
        body = {**inner, **extra}
        body["result"] = "failed" if error else "success"
        if error:
            body["reason"] = error
        self.publish({kind: body})

    def _reply_version(self, inner: Mapping[str, Any]) -> None:
        spec = self.spec
        modules: list[dict[str, Any]] = [
            {
                "name": "ota",
                "project_name": spec.project_name,
                "product_name": spec.product_name,
                "sw_ver": spec.sw_ver,
                "hw_ver": "OTA",
                "sn": self.serial,
                "loader_ver": "00.00.00.00",
                "visible": True,
                "flag": 0,
            },
            {
                "name": spec.ap_module,
                "project_name": spec.project_name,
                "sw_ver": spec.sw_ver,
                "hw_ver": spec.ap_hw,
                "sn": self.serial,
                "visible": True,
                "flag": 0,
            },
            {"name": "mc", "sw_ver": "00.00.31.12", "hw_ver": "MC07", "sn": ""},
            {"name": "th", "sw_ver": "00.00.09.04", "hw_ver": "TH07", "sn": ""},
        ]
        for name, hw_ver, prefix in spec.ams_modules:
            unit = name.rsplit("/", 1)[-1]
            modules.append(
                {
                    "name": name,
                    "sw_ver": "00.00.06.49",
                    "hw_ver": hw_ver,
                    "sn": f"{prefix}00A{self.serial[-6:]}{int(unit):03d}"[:15],
                    "visible": True,
                    "flag": 0,
                }
            )
        self.publish(
            {
                "info": {
                    "command": "get_version",
                    "sequence_id": inner.get("sequence_id", "0"),
                    "module": modules,
                    "result": "success",
                }
            }
        )

    # -- print.* -----------------------------------------------------------

    def verify_envelope(self, message: Mapping[str, Any]) -> int | None:
        """``None`` when the signed envelope is valid, else the err_code."""
        header = message.get("header")
        if header is None:
            return ERR_VERIFY_FAILED
        if not isinstance(header, dict):
            return ERR_ENVELOPE_MALFORMED
        texts = ("sign_ver", "sign_alg", "sign_string", "cert_id")
        if (
            any(not isinstance(header.get(key), str) for key in texts)
            or type(header.get("payload_len")) is not int
            or header["sign_ver"] != "v1.0"
            or header["sign_alg"] != "RSA_SHA256"
            or not header["cert_id"]
        ):
            return ERR_ENVELOPE_MALFORMED
        try:
            signature = base64.b64decode(header["sign_string"], validate=True)
        except binascii.Error:
            return ERR_ENVELOPE_MALFORMED
        signed = canonical_print_bytes(message["print"])
        if header["payload_len"] != len(signed) or self.public_key is None:
            return ERR_VERIFY_FAILED
        try:
            self.public_key.verify(
                signature, signed, padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return ERR_VERIFY_FAILED
        return None

    def _handle_print(self, message: Mapping[str, Any], inner: dict[str, Any]) -> None:
        command = inner.get("command")
        if self.signature_required:
            err_code = self.verify_envelope(message)
            if err_code is not None:
                self._ack(
                    "print",
                    {"command": command, "sequence_id": inner.get("sequence_id")},
                    VERIFY_FAILED_REASON,
                    err_code=err_code,
                )
                return
        error: str | None = None
        changed: tuple[str, ...] = ()
        if command in _ACK_ONLY:
            pass
        elif command in _PRINT_EFFECTS:
            handler: Callable[[Mapping[str, Any]], _Outcome]
            handler = getattr(self, f"_cmd_{command}")
            error, changed = handler(inner)
        else:
            self._ack("print", inner, "unsupported command")
            return
        self._ack("print", inner, error)
        if changed:
            self._report_keys(*changed)

    def _cmd_pause(self, _inner: Mapping[str, Any]) -> _Outcome:
        if self.state.get("gcode_state") not in ("RUNNING", "PREPARE"):
            return None, ()
        self.state.update(gcode_state="PAUSE", stg_cur=16)
        return None, ("gcode_state", "stg_cur")

    def _cmd_resume(self, _inner: Mapping[str, Any]) -> _Outcome:
        if self.state.get("gcode_state") != "PAUSE":
            return None, ()
        self.state.update(gcode_state="RUNNING", stg_cur=0)
        return None, ("gcode_state", "stg_cur")

    def _cmd_stop(self, _inner: Mapping[str, Any]) -> _Outcome:
        if self.state.get("gcode_state") not in ("RUNNING", "PAUSE", "PREPARE"):
            return None, ()
        self.state.update(
            gcode_state="FAILED",
            print_error=PRINT_CANCELLED,
            stg_cur=self._idle_stage(),
            mc_print_stage="1",
        )
        return None, ("gcode_state", "print_error", "stg_cur", "mc_print_stage")

    def _cmd_print_speed(self, inner: Mapping[str, Any]) -> _Outcome:
        param = inner.get("param")
        if not isinstance(param, str) or not param.isdigit():
            return "invalid param", ()
        level = int(param)
        if level not in SPEED_MAGNITUDE:
            return "invalid param", ()
        self.state.update(spd_lvl=level, spd_mag=SPEED_MAGNITUDE[level])
        return None, ("spd_lvl", "spd_mag")

    def _cmd_project_file(self, inner: Mapping[str, Any]) -> _Outcome:
        if self.state.get("gcode_state") in _BUSY_STATES:
            return BUSY_REASON, ()
        if self.storage is not None and storage_path(inner) not in self.storage:
            return FILE_NOT_FOUND_REASON, ()
        name = str(inner.get("subtask_name") or inner.get("file") or "")
        self.state.update(
            gcode_state="RUNNING",
            print_type="local",
            gcode_file=str(inner.get("file") or inner.get("param") or ""),
            subtask_name=name,
            task_id=str(inner.get("task_id", "0")),
            subtask_id=str(inner.get("subtask_id", "0")),
            mc_percent=0,
            mc_remaining_time=60,
            layer_num=0,
            total_layer_num=100,
            mc_print_stage="2",
            stg_cur=0,
            print_error=0,
            s_obj=[],
        )
        return None, (
            "gcode_state",
            "print_type",
            "gcode_file",
            "subtask_name",
            "task_id",
            "subtask_id",
            "mc_percent",
            "mc_remaining_time",
            "layer_num",
            "total_layer_num",
            "mc_print_stage",
            "stg_cur",
            "print_error",
            "s_obj",
        )

    def _cmd_gcode_file(self, inner: Mapping[str, Any]) -> _Outcome:
        return self._cmd_project_file({"file": inner.get("param", "")})

    def _cmd_skip_objects(self, inner: Mapping[str, Any]) -> _Outcome:
        if self.state.get("gcode_state") not in ("RUNNING", "PAUSE"):
            return NOT_PRINTING_REASON, ()
        ids = inner.get("obj_list")
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            return "invalid param", ()
        self.state["s_obj"] = sorted({*self.state.get("s_obj", []), *ids})
        return None, ("s_obj",)

    def _cmd_print_option(self, inner: Mapping[str, Any]) -> _Outcome:
        flag = int(self.state.get("home_flag", 0))
        for key, bit in (("auto_recovery", 0x10), ("sound_enable", 0x20000)):
            if key in inner:
                flag = flag | bit if inner[key] else flag & ~bit
        # Detectors the firmware announces (support bit): others are ignored.
        for key, (bit, support) in _DETECTOR_BITS.items():
            if key in inner and flag & support:
                flag = flag | bit if inner[key] else flag & ~bit
        if "auto_switch_filament" in inner and "ams" in self.state:
            bit = HOME_FLAG_AMS_AUTO_REFILL
            flag = flag | bit if inner["auto_switch_filament"] else flag & ~bit
        if flag == self.state.get("home_flag"):
            return None, ()
        self.state["home_flag"] = flag
        return None, ("home_flag",)

    def _cmd_set_airduct(self, inner: Mapping[str, Any]) -> _Outcome:
        """Air duct mode (P2S, H2, X2D): ``device.airduct.modeCur``."""
        duct = self.state.get("device", {}).get("airduct")
        if not isinstance(duct, dict):
            return UNSUPPORTED_REASON, ()
        modes = [entry.get("modeId") for entry in duct.get("modeList", [])]
        mode = inner.get("modeId")
        if type(mode) is not int or mode not in (modes or AIR_DUCT_MODES):
            return "invalid param", ()
        if duct.get("modeCur") == mode:
            return None, ()
        duct["modeCur"] = mode
        return None, ("device",)

    def _cmd_buzzer_ctrl(self, inner: Mapping[str, Any]) -> _Outcome:
        """The H2 buzzer: acknowledged, never reported; others refuse it."""
        if self.spec.key not in BUZZER_MODELS:
            return UNSUPPORTED_REASON, ()
        if inner.get("mode") not in BUZZER_MODES:
            return "invalid param", ()
        return None, ()

    def _cmd_ams_user_setting(self, inner: Mapping[str, Any]) -> _Outcome:
        """AMS read options (``ams`` flags) and remain detection (home_flag)."""
        ams = self.state.get("ams")
        if not isinstance(ams, dict):
            return "no ams", ()
        options = ("startup_read_option", "tray_read_option", "calibrate_remain_flag")
        if any(type(inner.get(key)) is not bool for key in options):
            return "invalid param", ()
        ams.update(
            power_on_flag=inner["startup_read_option"],
            insert_flag=inner["tray_read_option"],
        )
        flag = int(self.state.get("home_flag", 0)) & ~HOME_FLAG_AMS_REMAIN
        if inner["calibrate_remain_flag"]:
            flag |= HOME_FLAG_AMS_REMAIN
        self.state["home_flag"] = flag
        return None, ("ams", "home_flag")

    def _cmd_gcode_line(self, inner: Mapping[str, Any]) -> _Outcome:
        param = inner.get("param")
        if not isinstance(param, str):
            return "invalid param", ()
        changed: set[str] = set()
        for line in param.splitlines():
            words = dict(_GCODE_WORD.findall(line.split(";", 1)[0].upper()))
            code = line.strip().split(" ", 1)[0].upper()
            changed.update(self._apply_gcode(code, words))
        return None, tuple(sorted(changed))

    def _apply_gcode(self, code: str, words: Mapping[str, str]) -> set[str]:
        value = float(words.get("S", "0"))
        if code == "M104":
            return self._set_target("nozzle", value, int(float(words.get("T", "0"))))
        if code == "M140":
            return self._set_target("bed", value, 0)
        if code == "M141":
            return self._set_target("chamber", value, 0)
        if code == "M106":
            pwm = max(0.0, min(255.0, value))
            key = _FAN_KEYS.get(words.get("P", ""))
            if key is not None:
                self.state[key] = str(round(pwm / 255 * 15))
                return {key}
            if words.get("P") == "10":
                return self._set_duct_part(SECONDARY_AUX_FAN_PART, round(pwm / 2.55))
        return set()

    def _set_duct_part(self, part_id: int, percent: int) -> set[str]:
        """A part of the air duct (the P2S/X2D secondary aux fan), in %."""
        parts = self.state.get("device", {}).get("airduct", {}).get("parts", [])
        part = next((p for p in parts if p.get("id") == part_id), None)
        if part is None:
            return set()
        part["state"] = percent
        return {"device"}

    def _set_target(self, kind: str, value: float, tool: int) -> set[str]:
        changed: set[str] = set()
        flat = {"nozzle": "nozzle_target_temper", "bed": "bed_target_temper"}
        if kind in flat and (kind != "nozzle" or tool == 0):
            self.state[flat[kind]] = float(int(value))
            changed.add(flat[kind])
        device = self.state.get("device")
        if isinstance(device, dict):
            slot: dict[str, Any] | None = None
            if kind == "nozzle":
                slot = next(
                    (e for e in device["extruder"]["info"] if e["id"] == tool), None
                )
            else:
                slot = device.get({"bed": "bed", "chamber": "ctc"}[kind], {}).get(
                    "info"
                )
            if slot is not None:
                current, _ = unpack_temp(int(slot["temp"]))
                slot["temp"] = pack_temp(current, value)
                changed.add("device")
        return changed

    def _cmd_ams_change_filament(self, inner: Mapping[str, Any]) -> _Outcome:
        target = inner.get("target")
        if type(target) is not int:
            return "invalid param", ()
        ams = self.state.get("ams")
        if not isinstance(ams, dict):
            return "no ams", ()
        ams.update(tray_pre=ams["tray_now"], tray_tar=str(target), tray_now=str(target))
        return None, ("ams",)

    def _cmd_ams_filament_setting(self, inner: Mapping[str, Any]) -> _Outcome:
        tray = self._find_tray(inner.get("ams_id"), inner.get("tray_id"))
        if tray is None:
            return "invalid param", ()
        # Like firmware, refuse a bad value of any field that is given.
        kind = inner.get("tray_type", "-")
        color = inner.get("tray_color", "FFFFFFFF")
        low = inner.get("nozzle_temp_min", 0)
        high = inner.get("nozzle_temp_max", 500)
        if (
            not isinstance(kind, str)
            or not kind
            or not isinstance(color, str)
            or not re.fullmatch(r"[0-9A-F]{8}", color)
            or type(low) is not int
            or type(high) is not int
            or not 0 <= low <= high <= 500
        ):
            return "invalid param", ()
        for key in (
            "tray_info_idx",
            "tray_color",
            "tray_type",
            "nozzle_temp_min",
            "nozzle_temp_max",
        ):
            if key in inner:
                tray[key] = str(inner[key])
        if "tray_color" in inner:
            tray["cols"] = [tray["tray_color"]]
        if inner.get("ams_id") == 255:
            return None, ("vt_tray" if "vt_tray" in self.state else "vir_slot",)
        return None, ("ams",)

    def _find_tray(self, ams_id: object, tray_id: object) -> dict[str, Any] | None:
        if ams_id == 255:
            spools = self.state.get("vir_slot") or [self.state.get("vt_tray") or {}]
            return next((s for s in spools if s.get("id") == str(tray_id)), None)
        for unit in self.state.get("ams", {}).get("ams", []):
            if unit["id"] == str(ams_id):
                return next((t for t in unit["tray"] if t["id"] == str(tray_id)), None)
        return None

    def _dryer(self, ams_id: object) -> tuple[dict[str, Any] | None, int | None]:
        """An AMS unit's state and its top drying temperature (None: no heater)."""
        unit = next(
            (
                u
                for u in self.state.get("ams", {}).get("ams", [])
                if u["id"] == str(ams_id)
            ),
            None,
        )
        kinds = {
            name.rsplit("/", 1)[-1]: name.split("/")[0]
            for name, *_ in self.spec.ams_modules
        }
        return unit, DRYER_MAX_TEMPERATURE.get(kinds.get(str(ams_id), ""))

    @property
    def remote_drying(self) -> bool:
        """Whether this firmware dries on command (``fun2`` bit 5)."""
        return bool(int(self.state.get("fun2", "0"), 16) & FUN2_REMOTE_DRYING)

    def start_drying(
        self, ams_id: int, temperature: int, hours: int, filament: str = ""
    ) -> None:
        """Dry a unit (no checks: the farm's demo dryer, tests' set-up)."""
        unit, _ = self._dryer(ams_id)
        if unit is None:
            raise KeyError(ams_id)
        self._set_drying(unit, DRYING, hours * 60)
        unit["dry_setting"] = {
            "dry_temperature": temperature,
            "dry_duration": hours,
            "dry_filament": filament,
        }

    @staticmethod
    def _set_drying(unit: dict[str, Any], code: int, minutes: int) -> None:
        # Bits 4-7 the dryer state, bits 22-23 its phase (1 heating).
        info = int(str(unit.get("info", "0")), 16) & ~(0xF << 4) & ~(0x3 << 22)
        if code == DRYING:
            info |= (DRYING << 4) | (1 << 22)
        unit["info"] = f"{info:X}"
        unit["dry_time"] = minutes

    def _advance_drying(self) -> bool:
        """A tick is a minute of drying; the dryer stops when time is up."""
        moved = False
        for unit in self.state.get("ams", {}).get("ams", []):
            minutes = int(unit.get("dry_time", 0) or 0)
            if minutes > 0:
                minutes -= 1
                self._set_drying(unit, DRYING if minutes else 0, minutes)
                moved = True
        return moved

    def _cmd_ams_filament_drying(self, inner: Mapping[str, Any]) -> _Outcome:
        unit, max_temperature = self._dryer(inner.get("ams_id"))
        if unit is None:
            return "invalid param", ()
        if max_temperature is None:
            return CANNOT_DRY_REASON, ()
        if not self.remote_drying:
            return NO_REMOTE_DRYING_REASON, ()
        mode = inner.get("mode")
        if mode == 0:
            if not unit.get("dry_time"):
                return None, ()
            self._set_drying(unit, 0, 0)
            return None, ("ams",)
        temp, hours = inner.get("temp"), inner.get("duration")
        filament = inner.get("filament", "")
        if (
            mode != 1
            or type(temp) is not int
            or type(hours) is not int
            or not isinstance(filament, str)
            or not 45 <= temp <= max_temperature
            or not 1 <= hours <= 24
        ):
            return "invalid param", ()
        if unit.get("dry_sf_reason"):
            return DRYING_BLOCKED_REASON, ()
        self.start_drying(int(unit["id"]), temp, hours, filament)
        return None, ("ams",)

    def _cmd_ams_get_rfid(self, inner: Mapping[str, Any]) -> _Outcome:
        if self._find_tray(inner.get("ams_id"), inner.get("slot_id")) is None:
            return "invalid param", ()
        return None, ()

    # -- system.* and the rest --------------------------------------------

    def _handle_system(self, inner: dict[str, Any]) -> None:
        command = inner.get("command")
        if command == "ledctrl":
            self._ledctrl(inner)
        elif command == "get_access_code":
            self._ack("system", inner, access_code=self.access_code)
        else:
            self._ack("system", inner)

    def _ledctrl(self, inner: dict[str, Any]) -> None:
        node, mode = inner.get("led_node"), inner.get("led_mode")
        if (
            not isinstance(node, str)
            or mode not in LED_MODES
            or (mode == "flashing" and any(key not in inner for key in LED_TIMING))
        ):
            self._ack("system", inner, "invalid param")
            return
        self._ack("system", inner)
        if node == "heatbed_light":
            return  # no state in lights_report, only the ack (PROTOCOL 2.4)
        lights: list[dict[str, Any]] = self.state.setdefault("lights_report", [])
        entry = next((light for light in lights if light.get("node") == node), None)
        if entry is None:
            lights.append({"node": node, "mode": mode})
        elif entry.get("mode") == mode:
            return
        else:
            entry["mode"] = mode
        self._report_keys("lights_report")

    def _handle_other(self, kind: str, inner: dict[str, Any]) -> None:
        command = inner.get("command")
        key: tuple[str, str] | None = None
        if command == "ipcam_record_set":
            key = ("ipcam", "ipcam_record")
        elif command == "ipcam_timelapse":
            key = ("ipcam", "timelapse")
        elif command == "xcam_control_set" and isinstance(
            inner.get("module_name"), str
        ):
            key = ("xcam", inner["module_name"])
            if "print_halt" in inner:
                self.state.setdefault("xcam", {})["print_halt"] = inner["print_halt"]
        self._ack(kind, inner)
        if key is not None:
            value = inner.get("control")
            self.state.setdefault(key[0], {})[key[1]] = value
            self._report_keys(key[0])
