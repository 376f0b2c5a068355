"""Report builders for the PrinterState tests, written from PROTOCOL.md 2.5.

Each builder returns a fresh message (``{"print": {...}}`` or
``{"info": {...}}``) so tests can change it freely.
"""

from __future__ import annotations

from typing import Any


def _tray(slot: int, kind: str, color: str, remain: int) -> dict[str, Any]:
    return {
        "id": str(slot),
        "state": 11,
        "tray_type": kind,
        "tray_sub_brands": f"{kind} Basic",
        "tray_color": color,
        "tray_id_name": f"A00-{slot}",
        "tray_info_idx": "GFA00",
        "nozzle_temp_min": "190",
        "nozzle_temp_max": "230",
        "remain": remain,
        "cols": [color],
    }


def _ams(unit: int, humidity: str, temp: str) -> dict[str, Any]:
    return {
        "id": str(unit),
        "humidity": humidity,
        "humidity_raw": "22",
        "temp": temp,
        "dry_time": 0,
        "tray": [
            _tray(0, "PLA", "FF0000FF", 90),
            _tray(1, "PETG", "00FF00FF", 45),
            _tray(2, "ABS", "0000FFFF", -1),
            {"id": "3", "state": 0},
        ],
    }


def x1c_full() -> dict[str, Any]:
    """X1 Carbon, printing, one AMS, everything in every push."""
    return {
        "print": {
            "command": "push_status",
            "msg": 0,
            "sequence_id": "1201",
            "nozzle_temper": 219.6,
            "nozzle_target_temper": 220.0,
            "bed_temper": 54.9,
            "bed_target_temper": 55.0,
            "chamber_temper": 31.5,
            "mc_percent": 42,
            "mc_remaining_time": 75,
            "gcode_state": "running",
            "gcode_start_time": "1700000000",
            "gcode_file_prepare_percent": "100",
            "print_type": "cloud",
            "stg_cur": 0,
            "stg": [2, 1, 0],
            "layer_num": 120,
            "total_layer_num": 300,
            "subtask_name": "Benchy",
            "gcode_file": "/data/Metadata/plate_1.gcode",
            "spd_lvl": 3,
            "spd_mag": 124,
            "cooling_fan_speed": "15",
            "big_fan1_speed": "7",
            "big_fan2_speed": "3",
            "heatbreak_fan_speed": "1",
            "wifi_signal": "-53dBm",
            "net": {"conf": 16, "info": [{"ip": 0, "mask": 0}, {"ip": 1677830336}]},
            "lights_report": [
                {"node": "chamber_light", "mode": "on"},
                {"node": "work_light", "mode": "FLASHING"},
            ],
            "ipcam": {
                "ipcam_dev": "1",
                "ipcam_record": "enable",
                "timelapse": "disable",
                "resolution": "1080p",
                "rtsp_url": "rtsps://192.168.1.100/streaming/live/1",
            },
            "xcam": {
                "first_layer_inspector": True,
                "spaghetti_detector": True,
                "print_halt": False,
                "printing_monitor": True,
                "halt_print_sensitivity": "medium",
                "buildplate_marker_detector": False,
                "allow_skip_parts": False,
            },
            "home_flag": 0x00820137,
            "sdcard": True,
            "hw_switch_state": 1,
            "hms": [{"attr": 50331904, "code": 65543}],
            "print_error": 117473286,
            "s_obj": [206, "207"],
            "nozzle_diameter": "0.4",
            "nozzle_type": "hardened_steel",
            "fun": "3EC1AFFF9CFF",
            "stat": "46258008",
            "upgrade_state": {
                "status": "IDLE",
                "progress": "0",
                "new_version_state": 1,
                "ota_new_version_number": "01.08.02.00",
            },
            "ams": {
                "ams": [_ams(0, "4", "26.5")],
                "tray_now": "1",
                "tray_tar": "1",
                "version": 4,
            },
            "vt_tray": {
                "id": "254",
                "tray_type": "TPU",
                "tray_color": "FFFFFF00",
                "remain": 0,
            },
        }
    }


def x1c_version() -> dict[str, Any]:
    return {
        "info": {
            "command": "get_version",
            "sequence_id": "7",
            "module": [
                {
                    "name": "ota",
                    "sw_ver": "01.08.01.00",
                    "hw_ver": "OTA",
                    "product_name": "Bambu Lab X1-Carbon",
                    "sn": "00M00A000000000",
                },
                {"name": "ams/0", "sw_ver": "00.01.06.62", "hw_ver": "AMS08"},
                {"name": "rv1126", "hw_ver": "AP05"},
            ],
        }
    }


def p1s_full() -> dict[str, Any]:
    """P1S answer to pushall: a full snapshot, strings for numbers."""
    return {
        "print": {
            "command": "push_status",
            "msg": 0,
            "sequence_id": "2000",
            "nozzle_temper": "25.0",
            "nozzle_target_temper": 0,
            "bed_temper": 24.5,
            "bed_target_temper": 0,
            "chamber_temper": 5,
            "gcode_state": "IDLE",
            "stg_cur": 255,
            "print_type": "idle",
            "mc_percent": "0",
            "mc_remaining_time": "0",
            "wifi_signal": "-61dBm",
            "lights_report": [{"node": "chamber_light", "mode": "off"}],
            "hms": [
                {"attr": 0x07000200, "code": 0x00020001},
                {"attr": 0x0C000100, "code": 0x00040002},
            ],
            "ams": {
                "ams": [_ams(0, "5", "24.0")],
                "tray_now": "255",
            },
        }
    }


def p1s_delta(**fields: Any) -> dict[str, Any]:
    """A P1/A1 delta: only changed fields plus the envelope, ``msg`` 1."""
    return {
        "print": {"command": "push_status", "msg": 1, "sequence_id": "2001", **fields}
    }


def a1_mini_full() -> dict[str, Any]:
    """A1 mini after boot: stage 0 with print_type idle, AMS Lite, spool."""
    return {
        "print": {
            "command": "push_status",
            "msg": 0,
            "nozzle_temper": 27.8,
            "bed_temper": 29.7,
            "gcode_state": "IDLE",
            "stg_cur": 0,
            "print_type": "idle",
            "home_flag": -1067070064,
            "ams": {
                "ams": [{"id": "0", "humidity": "5", "temp": "0.0", "tray": []}],
                "tray_now": "254",
            },
            "vt_tray": {
                "id": "254",
                "tray_type": "PLA",
                "tray_color": "161616FF",
                "remain": 0,
                "nozzle_temp_min": "190",
                "nozzle_temp_max": "240",
            },
        }
    }


def a1_mini_version() -> dict[str, Any]:
    return {
        "info": {
            "command": "get_version",
            "sequence_id": "0",
            "result": "success",
            "module": [
                {"name": "ota", "sw_ver": "01.04.00.00", "project_name": "N1"},
                {"name": "ams_f1/0", "sw_ver": "00.00.07.94"},
            ],
        }
    }


def h2d_full() -> dict[str, Any]:
    """H2D, dual nozzle, temperatures packed as current | target << 16."""
    return {
        "print": {
            "command": "push_status",
            "msg": 0,
            "nozzle_temper": 30,
            "gcode_state": "PAUSE",
            "stage": {"_id": 49},
            "3D": {"layer_num": 3, "total_layer_num": 40},
            "mc_remaining_time": 61,
            "stat": "46A58008",
            "fun": "DFFF9CFF",
            "device": {
                "bed": {"info": {"temp": (90 << 16) | 88}},
                "ctc": {"info": {"temp": (45 << 16) | 38}},
                "extruder": {
                    "state": 0x12,
                    "info": [
                        {"id": 0, "temp": (250 << 16) | 248, "snow": 0x0001},
                        {"id": 1, "temp": 30, "snow": 0xFFFF},
                    ],
                },
                "nozzle": {
                    "info": [
                        {"id": 0, "diameter": 0.4, "type": "HS01"},
                        {"id": 1, "diameter": 0.6, "type": "HU05"},
                    ]
                },
                "airduct": {
                    "parts": [{"id": 16, "state": 0}, {"id": 160, "state": 70}]
                },
            },
            "vir_slot": [
                {"id": "254", "tray_type": "PETG", "tray_color": "112233FF"},
                {"id": "255", "tray_type": ""},
            ],
            "vt_tray": {"id": "255", "tray_type": ""},
            "ams": {
                "ams": [
                    _ams(0, "3", "27.0"),
                    {
                        "id": "128",
                        "humidity": "2",
                        "humidity_raw": "31",
                        "temp": "55.0",
                        "dry_time": 90,
                        "tray": [_tray(0, "PA-CF", "000000FF", 100)],
                    },
                ],
                "tray_now": "128",
            },
        }
    }


def h2d_version() -> dict[str, Any]:
    return {
        "info": {
            "command": "get_version",
            "module": [
                {
                    "name": "ota",
                    "sw_ver": "01.01.02.07",
                    "product_name": "Bambu Lab H2D",
                },
                {"name": "ams/0", "sw_ver": "00.01.06.62"},
                {"name": "n3s/128", "sw_ver": "02.00.19.67"},
            ],
        }
    }
