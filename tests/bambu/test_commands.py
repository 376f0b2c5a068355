"""Command builders (bambu/commands.py): the exact payloads on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.bambu_cloud.bambu import commands
from custom_components.bambu_cloud.bambu.commands import (
    EXTERNAL_AMS_ID,
    EXTERNAL_TRAY_IDS,
    ams_filament_setting,
    ams_load,
    ams_read_rfid,
    ams_start_drying,
    ams_stop_drying,
    ams_unload,
    buzzer,
    encode,
    global_tray_id,
    normalize_color,
    print_speed,
    project_file,
    set_air_duct,
    set_bed_target,
    set_chamber_target,
    set_fan_speed,
    set_nozzle_target,
    skip_objects,
    slot_number,
    tray_location,
    unit_number,
    with_sequence,
)
from custom_components.bambu_cloud.bambu.const import StorageUrl
from custom_components.bambu_cloud.bambu.enums import (
    AirDuctMode,
    BuzzerMode,
    Fan,
    SpeedLevel,
)


def gcode(text: str) -> dict[str, Any]:
    return {"print": {"command": "gcode_line", "param": text}}


# ------------------------------------------------------------ temperatures


def test_nozzle_target() -> None:
    """M104; dual-nozzle printers name the tool."""
    assert set_nozzle_target(220) == gcode("M104 S220\n")
    assert set_nozzle_target(0) == gcode("M104 S0\n")
    assert set_nozzle_target(250, tool=1) == gcode("M104 S250 T1\n")
    assert set_nozzle_target(250, tool=0) == gcode("M104 S250 T0\n")


def test_bed_target() -> None:
    """M140."""
    assert set_bed_target(60) == gcode("M140 S60\n")


@pytest.mark.parametrize(
    ("target", "air_duct", "expected"),
    [
        (50, False, "M141 S50\n"),
        (0, False, "M141 S0\n"),
        (41, True, "M145 P1\nM141 S41\n"),
        (40, True, "M141 S40\nM145 P0\n"),
        (0, True, "M141 S0\nM145 P0\n"),
    ],
)
def test_chamber_target(target: int, air_duct: bool, expected: str) -> None:
    """Printers with an air duct switch it to heating above 40 °C, back below."""
    assert set_chamber_target(target, air_duct=air_duct) == gcode(expected)


@pytest.mark.parametrize(
    "build",
    [
        lambda: set_nozzle_target(-1),
        lambda: set_nozzle_target(501),
        lambda: set_nozzle_target(200, tool=-1),
        lambda: set_bed_target(-5),
        lambda: set_chamber_target(1000, air_duct=True),
    ],
)
def test_temperature_out_of_range(build: Any) -> None:
    """A target no heater reaches is a caller's mistake."""
    with pytest.raises(ValueError, match=r"temperature|tool"):
        build()


# -------------------------------------------------------------------- fans


@pytest.mark.parametrize(
    ("fan", "percent", "expected"),
    [
        (Fan.PART_COOLING, 100, "M106 P1 S255\n"),
        (Fan.PART_COOLING, 0, "M106 P1 S0\n"),
        (Fan.AUX, 50, "M106 P2 S128\n"),  # 127.5 rounds up
        (Fan.CHAMBER, 10, "M106 P3 S26\n"),  # 25.5 rounds up
        (Fan.SECONDARY_AUX, 30, "M106 P10 S77\n"),  # 76.5 rounds up
    ],
)
def test_fan_speed(fan: Fan, percent: int, expected: str) -> None:
    """M106 P<fan> S<ceil(255 * percent / 100)>."""
    assert set_fan_speed(fan, percent) == gcode(expected)


@pytest.mark.parametrize("percent", [-1, 101])
def test_fan_speed_out_of_range(percent: int) -> None:
    """Percent is 0-100."""
    with pytest.raises(ValueError, match="percent"):
        set_fan_speed(Fan.AUX, percent)


def test_air_duct() -> None:
    """set_airduct with modeId and submode -1."""
    assert set_air_duct(AirDuctMode.COOLING) == {
        "print": {"command": "set_airduct", "modeId": 0, "submode": -1}
    }
    assert set_air_duct(AirDuctMode.HEATING)["print"]["modeId"] == 1
    assert set_air_duct(AirDuctMode.LASER)["print"]["modeId"] == 2
    assert encode(set_air_duct(AirDuctMode.HEATING)) == (
        b'{"print":{"command":"set_airduct","modeId":1,"submode":-1}}'
    )


def test_buzzer() -> None:
    """buzzer_ctrl with the mode and an empty reason."""
    assert buzzer(BuzzerMode.BEEP) == {
        "print": {"command": "buzzer_ctrl", "mode": 2, "reason": ""}
    }
    assert buzzer(BuzzerMode.SILENT)["print"]["mode"] == 0
    assert buzzer(BuzzerMode.ALARM)["print"]["mode"] == 1


def test_print_speed_is_a_string() -> None:
    """The level goes out as a string."""
    assert print_speed(SpeedLevel.SILENT) == {
        "print": {"command": "print_speed", "param": "1"}
    }
    assert print_speed(SpeedLevel.LUDICROUS)["print"]["param"] == "4"
    with pytest.raises(ValueError, match="5"):
        print_speed(5)  # type: ignore[arg-type]


# -------------------------------------------------------------------- jobs

_PRINT_DEFAULTS: dict[str, Any] = {
    "use_ams": False,
    "ams_mapping": None,
    "timelapse": False,
    "bed_leveling": True,
    "flow_calibration": False,
    "vibration_calibration": True,
}


def test_project_file_full_payload() -> None:
    """Every field of a local print, ids as strings."""
    command = project_file(
        file="model.gcode.3mf",
        plate=2,
        storage=StorageUrl.FTP,
        use_ams=True,
        ams_mapping=[0, -1, 5, 254],
        timelapse=True,
        bed_leveling=False,
        flow_calibration=True,
        vibration_calibration=False,
        bed_type="textured_plate",
    )
    assert command == {
        "print": {
            "command": "project_file",
            "param": "Metadata/plate_2.gcode",
            "url": "ftp://model.gcode.3mf",
            "file": "model.gcode.3mf",
            "md5": "",
            "project_id": "0",
            "profile_id": "0",
            "task_id": "0",
            "subtask_id": "0",
            "subtask_name": "model",
            "bed_type": "textured_plate",
            "timelapse": True,
            "bed_leveling": False,
            "flow_cali": True,
            "vibration_cali": False,
            "layer_inspect": True,
            "use_ams": True,
            "ams_mapping": [0, -1, 5, 254],
        }
    }


@pytest.mark.parametrize(
    ("storage", "file", "url", "stem"),
    [
        (StorageUrl.SDCARD, "Benchy.3mf", "file:///sdcard/Benchy.3mf", "Benchy"),
        (StorageUrl.USB, "/a b.gcode.3mf", "file:///media/usb0/a b.gcode.3mf", "a b"),
        (StorageUrl.FTP, "cube.3MF", "ftp://cube.3MF", "cube"),
        (StorageUrl.SDCARD, "jobs/x.3mf", "file:///sdcard/jobs/x.3mf", "x"),
    ],
)
def test_project_file_url_per_storage(
    storage: StorageUrl, file: str, url: str, stem: str
) -> None:
    """The model's storage form plus the file name; the stem names the job."""
    inner = project_file(file=file, plate=1, storage=storage, **_PRINT_DEFAULTS)
    assert inner["print"]["url"] == url
    assert inner["print"]["file"] == file.lstrip("/")
    assert inner["print"]["subtask_name"] == stem
    assert inner["print"]["param"] == "Metadata/plate_1.gcode"
    assert inner["print"]["ams_mapping"] == []
    assert inner["print"]["use_ams"] is False
    assert inner["print"]["bed_type"] == "auto"


@pytest.mark.parametrize(
    ("file", "plate", "mapping"),
    [
        ("model.gcode", 1, None),
        (".3mf", 1, None),
        ("model.3mf", 0, None),
        ("model.3mf", 1, [0, 16]),
        ("model.3mf", 1, [-2]),
    ],
)
def test_project_file_refuses(file: str, plate: int, mapping: list[int] | None) -> None:
    """Not a .3mf, plate below 1, a tray id no printer has."""
    defaults = {**_PRINT_DEFAULTS, "ams_mapping": mapping}
    with pytest.raises(ValueError, match=r"3mf|plate|tray"):
        project_file(file=file, plate=plate, storage=StorageUrl.SDCARD, **defaults)


def test_skip_objects() -> None:
    """obj_list and the timestamp."""
    assert skip_objects([206, 410], timestamp=1700000000) == {
        "print": {
            "command": "skip_objects",
            "obj_list": [206, 410],
            "timestamp": 1700000000,
        }
    }
    with pytest.raises(ValueError, match="object ids"):
        skip_objects([], timestamp=1)
    with pytest.raises(ValueError, match="object ids"):
        skip_objects([-1], timestamp=1)


def test_sequence_id_added_to_new_commands() -> None:
    """The sender's sequence id goes into the class object."""
    assert with_sequence(skip_objects([1], timestamp=2), "7")["print"][
        "sequence_id"
    ] == ("7")


# --------------------------------------------------------------------- AMS


@pytest.mark.parametrize(
    ("ams_id", "slot", "global_id"),
    [
        (0, 0, 0),
        (0, 3, 3),
        (1, 0, 4),
        (3, 3, 15),
        (128, 0, 128),
        (135, 0, 135),
        (EXTERNAL_AMS_ID, 254, 254),
        (EXTERNAL_AMS_ID, 255, 255),
    ],
)
def test_global_tray_ids(ams_id: int, slot: int, global_id: int) -> None:
    """ams*4+slot, AMS HT unit id, external spools 254/255, and back."""
    assert global_tray_id(ams_id, slot) == global_id
    assert tray_location(global_id) == (ams_id, slot)


@pytest.mark.parametrize(
    ("ams_id", "slot"), [(0, 4), (4, 0), (128, 1), (255, 0), (-1, 0), (0, -1)]
)
def test_global_tray_id_refuses(ams_id: int, slot: int) -> None:
    """A slot no unit has."""
    with pytest.raises(ValueError, match="no slot"):
        global_tray_id(ams_id, slot)


@pytest.mark.parametrize("global_id", [-1, 16, 127, 136, 253, 256])
def test_tray_location_refuses(global_id: int) -> None:
    """A global id no tray has."""
    with pytest.raises(ValueError, match="no tray"):
        tray_location(global_id)


def test_constants_and_slot_numbers() -> None:
    """The external spool holder ids and 1-based slot numbers."""
    assert EXTERNAL_AMS_ID == 255
    assert EXTERNAL_TRAY_IDS == (254, 255)
    assert [slot_number(slot) for slot in range(4)] == [1, 2, 3, 4]


def test_unit_numbers() -> None:
    """AMS units count from 1; AMS HT units count on their own from 1."""
    assert [unit_number(ams_id) for ams_id in range(4)] == [1, 2, 3, 4]
    assert unit_number(128) == 1
    assert unit_number(135) == 8
    for ams_id in (-1, 4, 127, 136, 255):
        with pytest.raises(ValueError, match="no AMS unit"):
            unit_number(ams_id)


@pytest.mark.parametrize(
    ("color", "expected"),
    [
        ("ff0000", "FF0000FF"),
        ("#00ff0080", "00FF0080"),
        ("#ABCDEF", "ABCDEFFF"),
        (" 12345678 ", "12345678"),
    ],
)
def test_colors_normalised(color: str, expected: str) -> None:
    """RRGGBB or RRGGBBAA, optional #, upper-case RRGGBBAA."""
    assert normalize_color(color) == expected


@pytest.mark.parametrize("color", ["", "#fff", "red", "12345", "1234567", "#GG0000"])
def test_invalid_colors(color: str) -> None:
    """Anything else is refused."""
    with pytest.raises(ValueError, match="colour"):
        normalize_color(color)


def test_filament_setting() -> None:
    """ams_filament_setting with the normalised colour."""
    assert ams_filament_setting(
        ams_id=1,
        tray_id=2,
        tray_type="PETG",
        color="#1a2b3c",
        min_temp=220,
        max_temp=260,
        filament_id="GFG99",
    ) == {
        "print": {
            "command": "ams_filament_setting",
            "ams_id": 1,
            "tray_id": 2,
            "tray_info_idx": "GFG99",
            "tray_color": "1A2B3CFF",
            "nozzle_temp_min": 220,
            "nozzle_temp_max": 260,
            "tray_type": "PETG",
        }
    }
    external = ams_filament_setting(
        ams_id=EXTERNAL_AMS_ID,
        tray_id=254,
        tray_type="PLA",
        color="FFFFFF00",
        min_temp=190,
        max_temp=230,
    )["print"]
    assert (external["ams_id"], external["tray_id"]) == (255, 254)
    assert external["tray_info_idx"] == ""
    assert external["tray_color"] == "FFFFFF00"


@pytest.mark.parametrize(
    "changes",
    [
        {"ams_id": 4},
        {"tray_id": 4},
        {"tray_type": " "},
        {"color": "nope"},
        {"min_temp": 260},
        {"max_temp": -1},
    ],
)
def test_filament_setting_refuses(changes: dict[str, Any]) -> None:
    """Unknown slot, empty type, bad colour, bad temperatures."""
    arguments: dict[str, Any] = {
        "ams_id": 0,
        "tray_id": 0,
        "tray_type": "PLA",
        "color": "FF0000",
        "min_temp": 190,
        "max_temp": 230,
    }
    with pytest.raises(ValueError, match=r"slot|type|colour|temperature|minimum"):
        ams_filament_setting(**(arguments | changes))


def test_load_and_unload() -> None:
    """ams_change_filament: target = global tray id; unload targets 255."""
    assert ams_load(ams_id=1, slot=1, target_temp=220, current_temp=210) == {
        "print": {
            "command": "ams_change_filament",
            "ams_id": 1,
            "slot_id": 1,
            "target": 5,
            "curr_temp": 210,
            "tar_temp": 220,
        }
    }
    assert ams_load(ams_id=128, slot=0, target_temp=250)["print"] == {
        "command": "ams_change_filament",
        "ams_id": 128,
        "slot_id": 0,
        "target": 128,
        "curr_temp": 250,
        "tar_temp": 250,
    }
    assert ams_unload(ams_id=1, target_temp=210, current_temp=220) == {
        "print": {
            "command": "ams_change_filament",
            "ams_id": 1,
            "slot_id": 255,
            "target": 255,
            "curr_temp": 220,
            "tar_temp": 210,
        }
    }
    unload = ams_unload(ams_id=EXTERNAL_AMS_ID)["print"]
    assert (unload["curr_temp"], unload["tar_temp"]) == (0, 0)
    with pytest.raises(ValueError, match="no slot"):
        ams_load(ams_id=0, slot=4, target_temp=220)
    with pytest.raises(ValueError, match="no AMS unit"):
        ams_unload(ams_id=7)


def test_read_rfid() -> None:
    """ams_get_rfid for one slot."""
    assert ams_read_rfid(ams_id=2, slot=3) == {
        "print": {"command": "ams_get_rfid", "ams_id": 2, "slot_id": 3}
    }
    with pytest.raises(ValueError, match="no AMS unit"):
        ams_read_rfid(ams_id=EXTERNAL_AMS_ID, slot=254)
    with pytest.raises(ValueError, match="no slot"):
        ams_read_rfid(ams_id=0, slot=4)


def test_drying() -> None:
    """Start: mode 1, hours, humidity 0; stop: mode 0."""
    assert ams_start_drying(ams_id=0, temperature=55, hours=8, filament="PLA") == {
        "print": {
            "command": "ams_filament_drying",
            "ams_id": 0,
            "temp": 55,
            "cooling_temp": 45,
            "duration": 8,
            "humidity": 0,
            "mode": 1,
            "rotate_tray": False,
            "filament": "PLA",
            "close_power_conflict": False,
        }
    }
    started = ams_start_drying(
        ams_id=128, temperature=80, hours=24, rotate_tray=True, cooling_temp=40
    )["print"]
    assert (started["ams_id"], started["rotate_tray"], started["cooling_temp"]) == (
        128,
        True,
        40,
    )
    assert ams_stop_drying(ams_id=128) == {
        "print": {
            "command": "ams_filament_drying",
            "ams_id": 128,
            "temp": 0,
            "cooling_temp": 0,
            "duration": 0,
            "humidity": 0,
            "mode": 0,
            "rotate_tray": False,
            "filament": "",
            "close_power_conflict": False,
        }
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"ams_id": 255},
        {"temperature": 0},
        {"temperature": 101},
        {"hours": 0},
        {"hours": 25},
        {"cooling_temp": -1},
    ],
)
def test_drying_refuses(changes: dict[str, Any]) -> None:
    """Not an AMS unit, or out-of-range settings."""
    arguments: dict[str, Any] = {"ams_id": 0, "temperature": 55, "hours": 8}
    with pytest.raises(ValueError, match=r"AMS unit|temperature|hours"):
        ams_start_drying(**(arguments | changes))
    if "ams_id" in changes:
        with pytest.raises(ValueError, match="no AMS unit"):
            ams_stop_drying(ams_id=changes["ams_id"])


def test_every_builder_output_is_json() -> None:
    """Builders give plain JSON: the encoder takes every one."""
    built = [
        set_nozzle_target(200),
        set_fan_speed(Fan.AUX, 40),
        ams_start_drying(ams_id=0, temperature=50, hours=4),
        project_file(file="a.3mf", plate=1, storage=StorageUrl.USB, **_PRINT_DEFAULTS),
    ]
    for command in built:
        assert encode(command).startswith(b'{"print":{"command":')
    assert commands.AIR_DUCT_HEATING_ABOVE == 40


# ------------------------------------------- AMS settings (controls helper)


def test_ams_user_setting() -> None:
    """All three AMS options go out together, for every unit (ams_id -1)."""
    assert commands.ams_user_setting(
        startup_read=True, tray_read=False, remain_detection=True
    ) == {
        "print": {
            "command": "ams_user_setting",
            "ams_id": -1,
            "startup_read_option": True,
            "tray_read_option": False,
            "calibrate_remain_flag": True,
        }
    }
