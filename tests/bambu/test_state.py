"""Tests for PrinterState (custom_components/.../bambu/state.py)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.bambu_cloud.bambu import state as state_module
from custom_components.bambu_cloud.bambu.enums import (
    STAGES_BY_ID,
    JobState,
    PrintStage,
    SpeedLevel,
)
from custom_components.bambu_cloud.bambu.state import (
    MAX_PAYLOAD_BYTES,
    VIEW_FIELDS,
    CommandAck,
    HmsEntry,
    MergeResult,
    PrinterState,
    Tray,
    affected_views,
)
from tests.common import load_json_object_fixture

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "payloads"
NOW = datetime(2025, 6, 1, 12, 0, 45, tzinfo=UTC)


def p1s_delta(**fields: Any) -> dict[str, Any]:
    """A P1/A1 delta (``p1s_delta.json``, ``msg`` 1) carrying only ``fields``."""
    message = load_json_object_fixture("p1s_delta.json")
    message["print"].update(fields)
    return message


def state_of(*messages: Any) -> PrinterState:
    printer = PrinterState()
    for message in messages:
        printer.merge(message)
    return printer


def all_views(printer: PrinterState) -> dict[str, Any]:
    """Read every registered view (end_time is the one method)."""
    values = {}
    for name in VIEW_FIELDS:
        view = getattr(printer, name)
        values[name] = view(NOW) if callable(view) else view
    return values


# ------------------------------------------------------------- X1C full


def test_x1c_full_report_views() -> None:
    printer = state_of(
        load_json_object_fixture("x1c_full.json"),
        load_json_object_fixture("x1c_version.json"),
    )

    assert printer.has_full_report
    assert printer.online is True
    assert printer.nozzle_temperature == 219.6
    assert printer.nozzle_target_temperature == 220.0
    assert printer.bed_temperature == 54.9
    assert printer.bed_target_temperature == 55.0
    assert printer.chamber_temperature == 31.5
    assert printer.chamber_target_temperature is None
    assert printer.progress == 42
    assert printer.remaining_minutes == 75
    assert printer.end_time(NOW) == datetime(2025, 6, 1, 13, 15, tzinfo=UTC)
    assert printer.start_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert printer.prepare_percent == 100
    assert printer.gcode_state is JobState.RUNNING
    assert printer.print_type == "cloud"
    assert printer.stage_id == 0
    assert printer.stage == "printing"
    assert printer.layer == 120
    assert printer.total_layers == 300
    assert printer.job_name == "Benchy"
    assert printer.gcode_file == "/data/Metadata/plate_1.gcode"
    assert printer.skipped_objects == (206, 207)
    assert printer.speed_level is SpeedLevel.SPORT
    assert printer.speed_percent == 124
    assert printer.part_cooling_fan == 100
    assert printer.aux_fan == 50
    assert printer.chamber_fan == 20
    assert printer.heatbreak_fan == 10
    assert printer.secondary_aux_fan is None
    assert printer.wifi_signal == -53
    assert printer.printer_ip == "192.168.1.100"
    assert printer.lights == {"chamber_light": "on", "work_light": "flashing"}
    assert printer.filament_present is True
    assert printer.sd_card is True
    assert printer.signed_commands_required is True


def test_x1c_camera_xcam_flags() -> None:
    printer = state_of(load_json_object_fixture("x1c_full.json"))

    camera = printer.camera
    assert camera.recording is True
    assert camera.timelapse is False
    assert camera.resolution == "1080p"
    assert camera.rtsp_url == "rtsps://192.168.1.100/streaming/live/1"
    assert camera.rtsp_enabled is True

    xcam = printer.xcam
    assert xcam.first_layer_inspector is True
    assert xcam.spaghetti_detector is True
    assert xcam.print_halt is False
    assert xcam.printing_monitor is True
    assert xcam.buildplate_marker_detector is False
    assert xcam.allow_skip_parts is False
    assert xcam.halt_print_sensitivity == "medium"

    flags = printer.home_flags
    assert flags.homed is True
    assert flags.auto_recovery is True
    assert flags.camera_recording is True
    assert flags.ams_remain_detection is False
    assert flags.sd_card_state == "normal"
    assert flags.ams_auto_refill is False
    assert flags.prompt_sound is True
    assert flags.wired_network is False
    assert flags.filament_tangle_detect_supported is False
    assert flags.filament_tangle_detect is False
    assert flags.door_open is True
    # stat says closed, home_flag (X1) says open: either bit means open.
    assert printer.door_open is True


def test_x1c_errors_and_firmware() -> None:
    printer = state_of(
        load_json_object_fixture("x1c_full.json"),
        load_json_object_fixture("x1c_version.json"),
    )

    assert printer.hms == (
        HmsEntry(
            attr=50331904,
            code=65543,
            hms_code="HMS_0300_0100_0001_0007",
            severity="fatal",
        ),
    )
    assert printer.print_error == 117473286
    assert printer.print_error_code == "0700_8006"
    assert printer.firmware_version == "01.08.01.00"
    assert printer.product_name == "Bambu Lab X1-Carbon"
    assert printer.project_name is None
    assert [module.name for module in printer.modules] == ["ota", "ams/0", "rv1126"]
    assert printer.modules[2].hw_ver == "AP05"
    update = printer.firmware_update
    assert update.available is True
    assert update.new_version == "01.08.02.00"
    assert update.status == "IDLE"
    assert update.progress == 0


def test_x1c_ams_and_nozzle() -> None:
    printer = state_of(
        load_json_object_fixture("x1c_full.json"),
        load_json_object_fixture("x1c_version.json"),
    )

    (unit,) = printer.ams_units
    assert unit.id == 0
    assert unit.kind == "ams"
    assert unit.humidity_index == 4
    assert unit.humidity == 22
    assert unit.temperature == 26.5
    assert unit.drying_minutes_left == 0
    assert unit.firmware_version == "00.01.06.62"
    first, second, third, fourth = unit.trays
    assert first == Tray(
        id=0,
        ams_id=0,
        global_id=0,
        empty=False,
        type="PLA",
        sub_brand="PLA Basic",
        color="#FF0000",
        remaining=90,
        name="A00-0",
        filament_id="GFA00",
        nozzle_temp_min=190,
        nozzle_temp_max=230,
    )
    assert third.remaining is None  # -1: remain detection off
    assert fourth == Tray(id=3, ams_id=0, global_id=3, empty=True)
    assert printer.active_tray_id == 1
    assert printer.active_tray == second
    (spool,) = printer.external_spools
    assert (spool.global_id, spool.type, spool.color) == (254, "TPU", "#FFFFFF")

    (nozzle,) = printer.nozzles
    assert nozzle.active is True
    assert nozzle.diameter == 0.4
    assert nozzle.type == "hardened_steel"
    assert nozzle.flow is None
    assert printer.nozzle_diameter == 0.4
    assert printer.nozzle_type == "hardened_steel"
    assert printer.active_extruder is None


# ------------------------------------------------------------ P1S deltas


def test_p1s_delta_sequence() -> None:
    printer = PrinterState()
    first = printer.merge(load_json_object_fixture("p1s_full.json"))
    assert {"nozzle_temper", "ams", "hms", "online"} <= first.changed
    assert "command" not in first.changed
    assert "sequence_id" not in first.changed
    assert printer.stage == "idle"
    assert printer.nozzle_temperature == 25.0

    heating = printer.merge(p1s_delta(nozzle_target_temper=220, bed_temper=24.5))
    assert heating == MergeResult(changed=frozenset({"nozzle_target_temper"}))
    assert printer.nozzle_target_temperature == 220.0
    assert printer.bed_temperature == 24.5  # untouched fields survive deltas
    assert printer.wifi_signal == -61

    assert printer.merge(p1s_delta(bed_temper=24.5)) == MergeResult()
    assert not printer.merge(p1s_delta()).changed


def test_p1s_ams_trays_merge_by_id() -> None:
    printer = state_of(load_json_object_fixture("p1s_full.json"))
    delta = {"ams": {"ams": [{"id": "0", "tray": [{"id": "2", "remain": 50}]}]}}
    assert printer.merge(p1s_delta(**delta)).changed == {"ams"}

    (unit,) = printer.ams_units
    assert [tray.remaining for tray in unit.trays] == [90, 45, 50, None]
    assert unit.trays[2].type == "ABS"  # other tray fields kept
    assert unit.humidity_index == 5  # unit fields kept
    assert printer.active_tray_id is None  # tray_now 255 kept

    emptied = {"ams": {"ams": [{"id": 0, "tray": [{"id": "1", "state": 0}]}]}}
    printer.merge(p1s_delta(**emptied))
    assert printer.ams_units[0].trays[1].empty is True

    loaded = {"id": "3", "tray_type": "PLA", "tray_color": "ABCDEF"}
    second_unit = {"id": "1", "humidity": "2", "tray": [{"id": "0"}]}
    no_id = {"humidity": "1"}
    printer.merge(
        p1s_delta(ams={"ams": [{"id": "0", "tray": [loaded]}, second_unit, no_id]})
    )
    first_unit, new_unit = printer.ams_units
    assert first_unit.trays[3].color == "#ABCDEF"
    assert (new_unit.id, new_unit.humidity_index) == (1, 2)
    assert new_unit.trays[0].global_id == 4

    printer.merge(p1s_delta(ams={"tray_now": "6"}))
    assert printer.active_tray_id == 6
    assert printer.active_tray is None  # slot 2 of AMS 1 is not reported


def test_p1s_hms_and_lists_are_replaced() -> None:
    printer = state_of(load_json_object_fixture("p1s_full.json"))
    assert [entry.severity for entry in printer.hms] == ["serious", "info"]
    assert [entry.hms_code for entry in printer.hms] == [
        "HMS_0700_0200_0002_0001",
        "HMS_0C00_0100_0004_0002",
    ]

    result = printer.merge(p1s_delta(hms=[{"attr": 0x03000100, "code": 0x00030001}]))
    assert result.changed == {"hms"}
    assert [entry.severity for entry in printer.hms] == ["common"]

    printer.merge(p1s_delta(lights_report=[{"node": "work_light", "mode": "on"}]))
    assert printer.lights == {"work_light": "on"}

    assert printer.merge(p1s_delta(hms=[])).changed == {"hms"}
    assert printer.hms == ()


def test_full_report_replaces_and_msg_variants() -> None:
    printer = state_of(
        load_json_object_fixture("p1s_full.json"), p1s_delta(subtask_name="cube")
    )
    assert printer.job_name == "cube"

    snapshot = load_json_object_fixture("p1s_full.json")
    del snapshot["print"]["msg"]  # no msg also means full
    result = printer.merge(snapshot)
    assert result.changed == {"subtask_name"}
    assert printer.job_name is None

    garbage_msg = p1s_delta(subtask_name="kept")
    garbage_msg["print"]["msg"] = "x"  # not 0: treat as a delta
    printer.merge(garbage_msg)
    printer.merge({"print": {"bed_temper": 60}})  # no command: delta
    assert printer.job_name == "kept"
    assert printer.bed_temperature == 60.0
    assert printer.nozzle_temperature == 25.0


def test_delta_before_full_report() -> None:
    printer = PrinterState()
    printer.merge(p1s_delta(nozzle_temper=200))
    assert not printer.has_full_report
    assert printer.nozzle_temperature == 200.0


# -------------------------------------------------------------- A1 mini


def test_a1_mini_idle_stage_and_external_spool() -> None:
    printer = state_of(
        load_json_object_fixture("a1_mini_full.json"),
        load_json_object_fixture("a1_mini_version.json"),
    )

    assert printer.stage_id == 0
    assert printer.stage == "idle"
    assert printer.end_time(NOW) is None  # not printing
    (unit,) = printer.ams_units
    assert unit.kind == "ams_lite"
    assert unit.trays == ()
    assert unit.temperature == 0.0
    assert printer.active_tray_id == 254
    active = printer.active_tray
    assert active is not None
    assert (active.global_id, active.ams_id, active.type) == (254, None, "PLA")
    assert (active.color, active.remaining, active.nozzle_temp_max) == (
        "#161616",
        0,
        240,
    )
    assert printer.door_open is False
    assert printer.sd_card is True  # home_flag bits 8-9
    assert printer.firmware_version == "01.04.00.00"
    assert printer.project_name == "N1"
    assert printer.product_name is None
    assert printer.chamber_temperature is None


def test_job_state_and_speed_are_enums() -> None:
    """Known values become members; anything new from the firmware is None."""
    printer = state_of({"print": {"gcode_state": "pause", "spd_lvl": "4"}})
    assert printer.gcode_state is JobState.PAUSE
    assert printer.speed_level is SpeedLevel.LUDICROUS
    printer = state_of({"print": {"gcode_state": "CALIBRATING", "spd_lvl": 5}})
    assert printer.gcode_state is None
    assert printer.speed_level is None
    assert state_of({"print": {"spd_lvl": 0}}).speed_level is None


def test_stage_names() -> None:
    assert len(STAGES_BY_ID) == 78
    assert STAGES_BY_ID[12] is STAGES_BY_ID[18] is PrintStage.CALIBRATING_MICRO_LIDAR
    assert next(iter(PrintStage)) is PrintStage.IDLE
    assert len(PrintStage) == 78  # 78 ids, 12 == 18, plus idle
    for stage_id, name in [
        (1, "auto_bed_leveling"),
        (14, "cleaning_nozzle_tip"),
        (30, "paused_by_user_gcode"),
        (62, "hotend_pick_place_test"),
        (77, "preparing_ams"),
        (-1, "idle"),
        (255, "idle"),
        (78, None),
        (-5, None),
    ]:
        printer = state_of({"print": {"stg_cur": stage_id, "print_type": "local"}})
        assert printer.stage == name, stage_id
        assert name is None or printer.stage is PrintStage(name)
    assert [level.value for level in SpeedLevel] == [1, 2, 3, 4]


# ------------------------------------------------------------------ H2D


def test_h2d_dual_nozzle_packed_temperatures() -> None:
    printer = state_of(
        load_json_object_fixture("h2d_full.json"),
        load_json_object_fixture("h2d_version.json"),
    )

    assert printer.active_extruder == 1
    right, left = printer.nozzles
    assert (right.index, right.active, right.temperature) == (0, False, 248.0)
    assert (right.target_temperature, right.diameter) == (250.0, 0.4)
    assert (right.type, right.flow, right.tray_id) == ("hardened_steel", "standard", 1)
    assert (left.index, left.active, left.temperature) == (1, True, 30.0)
    assert (left.target_temperature, left.diameter) == (0.0, 0.6)
    assert (left.type, left.flow, left.tray_id) == (
        "tungsten_carbide",
        "tpu_high_flow",
        None,
    )
    assert printer.nozzle_temperature == 30.0
    assert printer.nozzle_diameter == 0.6
    assert printer.nozzle_type == "tungsten_carbide"

    assert printer.bed_temperature == 88.0
    assert printer.bed_target_temperature == 90.0
    assert printer.chamber_temperature == 38.0
    assert printer.chamber_target_temperature == 45.0
    assert printer.secondary_aux_fan == 70
    assert printer.stage == "heating_chamber"
    assert (printer.layer, printer.total_layers) == (3, 40)
    assert printer.end_time(NOW) == datetime(2025, 6, 1, 13, 1, tzinfo=UTC)
    assert printer.door_open is True
    assert printer.signed_commands_required is False
    assert printer.product_name == "Bambu Lab H2D"


def test_h2d_ams_ht_and_virtual_slots() -> None:
    printer = state_of(
        load_json_object_fixture("h2d_full.json"),
        load_json_object_fixture("h2d_version.json"),
    )

    ams, ht = printer.ams_units
    assert (ams.kind, ht.kind) == ("ams", "ams_ht")
    assert (ht.id, ht.humidity_index, ht.humidity, ht.drying_minutes_left) == (
        128,
        2,
        31,
        90,
    )
    assert ht.firmware_version == "02.00.19.67"
    assert ht.trays[0].global_id == 128
    assert printer.active_tray == ht.trays[0]
    spool, empty = printer.external_spools
    assert (spool.global_id, spool.type, spool.color) == (254, "PETG", "#112233")
    assert empty == Tray(id=255, ams_id=None, global_id=255, empty=True)


def test_h2d_extruder_switch_delta() -> None:
    printer = state_of(load_json_object_fixture("h2d_full.json"))
    result = printer.merge({"print": {"device": {"extruder": {"state": 0x02}}}})
    assert result.changed == {"device"}
    assert printer.active_extruder == 0
    assert printer.nozzle_temperature == 248.0  # device dict merged, not replaced
    assert printer.bed_temperature == 88.0


def test_ams_kind_fallback_without_get_version() -> None:
    printer = state_of(load_json_object_fixture("h2d_full.json"))
    assert [unit.kind for unit in printer.ams_units] == ["ams", "ams_ht"]
    assert [unit.firmware_version for unit in printer.ams_units] == [None, None]


# ------------------------------------------------------- acks, presence


def test_merge_leaves_the_callers_message_alone() -> None:
    """Merging takes the envelope out of its own parse, never the caller's."""
    full = load_json_object_fixture("x1c_full.json")
    delta = p1s_delta(nozzle_temper=201.0, ams={"tray_now": "1"})
    kept = json.loads(json.dumps([full, delta]))
    printer = state_of(full, delta)
    assert [full, delta] == kept
    assert printer.nozzle_temperature == 201.0
    assert "command" not in printer.diagnostics()["print"]
    assert "sequence_id" not in printer.diagnostics()["print"]


def test_command_ack_is_not_merged() -> None:
    printer = state_of(load_json_object_fixture("x1c_full.json"))
    ack = {
        "print": {
            "command": "pause",
            "sequence_id": "42",
            "result": "failed",
            "reason": "mqtt message verify failed",
            "err_code": 84033543,
            "gcode_state": "PAUSE",
        }
    }
    result = printer.merge(json.dumps(ack))
    assert result.changed == frozenset()
    assert result.ack == CommandAck(
        kind="print",
        command="pause",
        sequence_id="42",
        ok=False,
        reason="mqtt message verify failed",
        err_code=84033543,
    )
    assert printer.gcode_state == "RUNNING"


def test_ack_variants() -> None:
    printer = PrinterState()
    light = {
        "system": {
            "command": "ledctrl",
            "sequence_id": 7,
            "result": "SUCCESS",
            "led_node": "chamber_light",
        }
    }
    ack = printer.merge(light).ack
    assert ack is not None
    assert (ack.kind, ack.command, ack.sequence_id, ack.ok) == (
        "system",
        "ledctrl",
        "7",
        True,
    )
    assert (ack.reason, ack.err_code) == (None, None)

    bare = printer.merge({"print": {"result": "fail", "sequence_id": None}}).ack
    assert bare == CommandAck(
        kind="print", command="", sequence_id="", ok=False, reason=None, err_code=None
    )

    # a status push that happens to carry "result" is still a status push
    status = printer.merge({"print": {"command": "push_status", "result": "x"}})
    assert status.ack is None
    assert "online" in status.changed

    version = printer.merge(load_json_object_fixture("a1_mini_version.json"))
    assert version.changed == {"info"}
    assert version.ack is not None
    assert version.ack.command == "get_version"
    assert (
        printer.merge(load_json_object_fixture("a1_mini_version.json")).changed
        == frozenset()
    )


def test_get_version_without_module_list_is_ignored() -> None:
    printer = state_of(load_json_object_fixture("x1c_version.json"))
    result = printer.merge({"info": {"command": "get_version", "module": "x"}})
    assert result == MergeResult()
    assert printer.firmware_version == "01.08.01.00"


def test_presence_events() -> None:
    printer = PrinterState()
    assert printer.online is None
    down = printer.merge({"event": {"event": "client.disconnected"}})
    assert down.changed == {"online"}
    assert printer.online is False
    assert printer.merge({"event": {"event": "client.disconnected"}}) == MergeResult()
    assert printer.merge({"event": {"event": "client.other"}}) == MergeResult()
    assert printer.merge({"event": {"event": "client.connected"}}).changed == {"online"}
    assert printer.online is True
    printer.merge({"event": {"event": "client.disconnected"}})
    assert "online" in printer.merge(p1s_delta(mc_percent=3)).changed


def test_other_messages_are_ignored() -> None:
    printer = state_of(load_json_object_fixture("x1c_full.json"))
    ignored: list[dict[str, Any]] = [
        {"mc_print": {"command": "push_info", "param": "[BMC] M900 K0.02"}},
        {"print": {"command": "gcode_line", "param": "G28"}},
        {"print": "not an object"},
        {"pushing": {"command": "pushall"}},
        {"header": {"sign_ver": "v1.0"}},
    ]
    for message in ignored:
        assert printer.merge(message) == MergeResult()
    assert printer.gcode_state == "RUNNING"


# ----------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        "[1, 2, 3]",
        b'"just a string"',
        b"null",
        b"7",
        "\ud800",
        12,
        None,
        {"print": object()},
        {"print": {1j: 1}},
        b"[" * 5000,
        json.dumps({"print": {"x": "1" * 5000}}).replace('"1', "1").encode(),
    ],
)
def test_garbage_is_dropped(payload: Any, caplog: pytest.LogCaptureFixture) -> None:
    printer = state_of(load_json_object_fixture("x1c_full.json"))
    before = all_views(printer)
    with caplog.at_level(logging.DEBUG, logger=state_module.__name__):
        assert printer.merge(payload) == MergeResult()
    assert all_views(printer) == before
    assert "Dropped printer message" in caplog.text


def test_circular_mapping_is_dropped() -> None:
    loop: dict[str, Any] = {}
    loop["print"] = loop
    assert PrinterState().merge(loop) == MergeResult()


def test_oversized_payload_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    padding = "x" * MAX_PAYLOAD_BYTES
    payload = json.dumps({"print": {"command": "push_status", "pad": padding}})
    printer = PrinterState()
    with caplog.at_level(logging.DEBUG, logger=state_module.__name__):
        assert printer.merge(payload) == MergeResult()
    assert "too large" in caplog.text
    assert padding not in caplog.text
    assert printer.diagnostics()["print"] == {}


def test_deep_nesting_is_never_recursed() -> None:
    """Hostile nesting neither raises in merge nor in diagnostics."""
    deep: Any = 1
    for _ in range(400):
        deep = {"d": deep}
    state = PrinterState()
    state.merge({"print": {"d": deep}})
    assert state.merge({"print": {"d": deep}}).changed == frozenset()
    assert "**TOO DEEP**" in str(state.diagnostics())
    hopeless = b'{"print":' + b'{"d":' * 100_000 + b"1" + b"}" * 100_001
    assert PrinterState().merge(hopeless) == MergeResult()


@pytest.mark.parametrize(
    "payload",
    [
        b'{"print":' + b'{"d":' * 100_000 + b"1" + b"}" * 100_001,
        b'{"print":{"command":"push_status","ams":' + b"[" * 100_000,
    ],
    ids=["objects", "lists"],
)
def test_deeply_nested_report_is_dropped_with_a_debug_log(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The parser's RecursionError is one more malformed message, not a crash."""
    printer = state_of(load_json_object_fixture("x1c_full.json"))
    before = all_views(printer)
    with caplog.at_level(logging.DEBUG, logger=state_module.__name__):
        assert printer.merge(payload) == MergeResult()
    assert all_views(printer) == before
    assert "Dropped printer message: not JSON (RecursionError)" in caplog.text


def _tray_ids(printer: PrinterState) -> dict[int, list[int]]:
    return {unit.id: [tray.id for tray in unit.trays] for unit in printer.ams_units}


def test_ams_ids_outside_the_known_ranges_are_dropped() -> None:
    """Units 0-3 and 128-135, trays 0-3, spools 254/255; the first id wins."""
    trays = [
        {"id": tray_id, "tray_type": "PLA"} for tray_id in ("0", "3", "4", "255", "-1")
    ]
    trays += [{"tray_type": "PLA"}, {"id": "0", "tray_type": "PETG"}]
    unit_ids = ("0", "3", "4", "127", "128", "135", "136", "255", "-1", "x", "0")
    units: list[dict[str, Any]] = [{"id": i, "tray": trays} for i in unit_ids]
    units.append({"humidity": "2", "tray": trays})
    spools = [
        {"id": spool_id, "tray_type": "PLA"} for spool_id in ("0", "253", "254", "255")
    ]
    spools += [{"tray_type": "PLA"}, {"id": "254", "tray_type": "PETG"}]
    printer = state_of(
        {
            "print": {
                "command": "push_status",
                "msg": 0,
                "ams": {"ams": units},
                "vir_slot": spools,
            }
        }
    )
    assert _tray_ids(printer) == {unit: [0, 3] for unit in (0, 3, 128, 135)}
    assert {tray.type for unit in printer.ams_units for tray in unit.trays} == {"PLA"}
    assert [(spool.id, spool.type) for spool in printer.external_spools] == [
        (254, "PLA"),
        (255, "PLA"),
    ]
    vt_tray_without_id = {"print": {"vt_tray": {"tray_type": "PLA"}}}
    assert state_of(vt_tray_without_id).external_spools == ()


def test_deltas_cannot_grow_the_ams_list() -> None:
    """Units or trays without a known id are never stored, delta after delta."""
    printer = state_of(load_json_object_fixture("p1s_full.json"))
    for i in range(200):
        unit = {"id": "0", "tray": [{"remain": 5}, {"id": str(4 + i)}, {"id": "2"}]}
        printer.merge(
            p1s_delta(ams={"ams": [{"humidity": "1"}, {"id": str(136 + i)}, unit]})
        )
    stored = printer.diagnostics()["print"]["ams"]["ams"]
    assert [unit["id"] for unit in stored] == ["0"]
    assert [tray["id"] for tray in stored[0]["tray"]] == ["0", "1", "2", "3"]
    assert _tray_ids(printer) == {0: [0, 1, 2, 3]}


def test_nan_and_infinity_read_as_null() -> None:
    printer = state_of(b'{"print": {"nozzle_temper": NaN, "bed_temper": Infinity}}')
    assert printer.nozzle_temperature is None
    assert printer.bed_temperature is None
    assert printer.merge({"print": {"bed_temper": float("nan")}}) == MergeResult()


def test_empty_state_views() -> None:
    printer = PrinterState()
    views = all_views(printer)
    assert views["lights"] == {}
    assert views["hms"] == ()
    assert views["ams_units"] == ()
    assert views["external_spools"] == ()
    assert views["modules"] == ()
    assert views["skipped_objects"] == ()
    (nozzle,) = views["nozzles"]
    assert nozzle.temperature is None
    # Decoded groups (home_flag bits, camera, AMS options...) are always
    # there, each of their fields unknown; every other single value is None.
    groups = {
        name: value for name, value in views.items() if dataclasses.is_dataclass(value)
    }
    assert {
        "camera",
        "xcam",
        "home_flags",
        "firmware_update",
        "ams_user_settings",
    } <= set(groups)
    for name, group in groups.items():
        assert set(vars_of(group)) == {None}, name
    scalars = {
        name: value
        for name, value in views.items()
        if not isinstance(value, tuple | dict) and name not in groups
    }
    assert set(scalars.values()) == {None}
    assert not views["ams_user_settings"].complete


def vars_of(value: Any) -> list[Any]:
    return [getattr(value, name) for name in value.__slots__]


WRONG_TYPES: dict[str, Any] = {
    "nozzle_temper": "hot",
    "bed_temper": [1],
    "bed_target_temper": True,
    "chamber_temper": "1e999",
    "mc_percent": "150",
    "mc_remaining_time": "-3",
    "gcode_state": 5,
    "gcode_start_time": "never",
    "print_type": {},
    "stg_cur": "abc",
    "stage": "x",
    "layer_num": 1.5e300,
    "total_layer_num": -4,
    "subtask_name": "   ",
    "s_obj": "1,2",
    "spd_lvl": 9,
    "spd_mag": True,
    "cooling_fan_speed": "16",
    "big_fan1_speed": "-1",
    "big_fan2_speed": None,
    "heatbreak_fan_speed": "x",
    "wifi_signal": "strong",
    "net": {"info": [{"ip": "x"}, {"ip": 2**40}, "y"]},
    "fun": "zz",
    "stat": [],
    "home_flag": "flag",
    "sdcard": "maybe",
    "hw_switch_state": 7,
    "lights_report": [{"node": "chamber_light"}, "x", {"node": 3, "mode": "on"}],
    "ipcam": {"ipcam_record": "sometimes", "rtsp_url": 3},
    "xcam": ["spaghetti_detector"],
    "hms": [{"attr": -1, "code": 1}, {"attr": "a"}, 4],
    "print_error": "none",
    "device": {"extruder": {"state": -3, "info": "x"}, "bed": {"info": {"temp": -1}}},
    "ams": {
        "ams": [
            {"id": "x"},
            {
                "id": 0,
                "tray": [
                    {"id": -1},
                    {"id": "a"},
                    {"id": 1, "tray_type": "PLA", "tray_color": "red", "remain": "?"},
                ],
            },
        ]
    },
    "vt_tray": "spool",
    "vir_slot": {"id": "254"},
    "upgrade_state": {"new_version_state": "?", "new_ver_list": [{"name": "ota"}]},
}


def test_wrong_types_give_none() -> None:
    printer = state_of({"print": WRONG_TYPES})
    assert printer.nozzle_temperature is None
    assert printer.bed_temperature is None
    assert printer.bed_target_temperature is None
    assert printer.chamber_temperature is None
    assert printer.progress is None
    assert printer.remaining_minutes is None
    assert printer.gcode_state is None
    assert printer.start_time is None
    assert printer.stage is None
    assert printer.layer is None
    assert printer.total_layers is None
    assert printer.job_name is None
    assert printer.skipped_objects == ()
    assert printer.speed_level is None
    assert printer.speed_percent is None
    assert (printer.part_cooling_fan, printer.aux_fan) == (None, None)
    assert (printer.chamber_fan, printer.heatbreak_fan) == (None, None)
    assert printer.wifi_signal is None
    assert printer.printer_ip is None
    assert printer.signed_commands_required is None
    assert printer.door_open is None
    assert printer.sd_card is None
    assert printer.filament_present is None
    assert printer.lights == {}
    assert printer.camera.recording is None
    assert printer.camera.rtsp_enabled is None
    assert printer.xcam.spaghetti_detector is None
    assert printer.hms == ()
    assert printer.print_error is None
    assert printer.active_extruder is None
    assert printer.nozzles[0].target_temperature is None
    (unit,) = printer.ams_units
    assert unit.trays == (Tray(id=1, ams_id=0, global_id=1, empty=False, type="PLA"),)
    assert printer.external_spools == ()
    assert printer.firmware_update.available is None
    assert printer.firmware_update.new_version is None


def test_string_numbers_are_converted() -> None:
    printer = state_of(
        {
            "print": {
                "mc_percent": " 15 ",
                "mc_remaining_time": "12.9",
                "layer_num": 7.0,
                "wifi_signal": -70,
                "print_error": -1,
                "home_flag": "256",
                "stat": 0x800000,
                "sdcard": "false",
                "hw_switch_state": "0",
                "ipcam": {"rtsp_url": "disable", "timelapse": "on"},
                "upgrade_state": {
                    "new_version_state": 2,
                    "new_ver_list": [
                        {"name": "ams/0", "new_ver": "00.00.07.00"},
                        {"name": "ota", "new_ver": "01.09.00.00"},
                    ],
                },
            }
        }
    )
    assert printer.progress == 15
    assert printer.remaining_minutes == 12
    assert printer.layer == 7
    assert printer.wifi_signal == -70
    assert printer.print_error == 0xFFFFFFFF
    assert printer.print_error_code == "FFFF_FFFF"
    assert printer.home_flags.sd_card_state == "normal"
    assert printer.sd_card is False  # the explicit field wins over home_flag
    assert printer.door_open is True
    assert printer.filament_present is False
    assert printer.camera.rtsp_url is None
    assert printer.camera.rtsp_enabled is False
    assert printer.camera.timelapse is True
    assert printer.firmware_update.available is True
    assert printer.firmware_update.new_version == "01.09.00.00"


def test_no_update_offered() -> None:
    upgrade = {"new_version_state": 2, "ota_new_version_number": ""}
    printer = state_of({"print": {"upgrade_state": upgrade}})
    assert printer.firmware_update.available is False


# ------------------------------------------------ change sets and views


def test_affected_views() -> None:
    assert affected_views({"nozzle_temper"}) >= {"nozzle_temperature", "nozzles"}
    assert "bed_temperature" not in affected_views({"nozzle_temper"})
    assert affected_views({"info"}) >= {"firmware_version", "ams_units", "modules"}
    assert affected_views({"online"}) == {"online"}
    assert affected_views(set()) == frozenset()
    assert "end_time" in affected_views(["mc_remaining_time"])


def test_one_nozzle_field_wakes_only_its_view() -> None:
    """A new nozzle temperature is not a new diameter, type or target.

    Each scalar nozzle view declares its own field and ``device`` only, so
    the entities showing the others are not woken by every report.
    """
    assert affected_views({"nozzle_temper"}) == {"nozzle_temperature", "nozzles"}
    assert affected_views({"nozzle_target_temper"}) == {
        "nozzle_target_temperature",
        "nozzles",
    }
    assert affected_views({"nozzle_diameter"}) == {"nozzle_diameter", "nozzles"}
    assert affected_views({"nozzle_type"}) == {"nozzle_type", "nozzles"}
    assert {"active_extruder", "nozzle_temperature"} <= affected_views({"device"})


class _RecordingReport(dict[str, Any]):
    """The cached report, noting every top-level field a view looks at."""

    def __init__(self, report: dict[str, Any], read: set[str]) -> None:
        super().__init__(report)
        self.read = read

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self.read.add("*every field*")
        return super().__iter__()

    def keys(self) -> Any:
        self.read.add("*every field*")
        return super().keys()

    def values(self) -> Any:
        self.read.add("*every field*")
        return super().values()

    def items(self) -> Any:
        self.read.add("*every field*")
        return super().items()


class _RecordingModules(list[Any]):
    """The get_version module list: reading it is reading ``info``."""

    def __init__(self, modules: list[Any], read: set[str]) -> None:
        super().__init__(modules)
        self.read = read

    def __iter__(self) -> Iterator[Any]:
        self.read.add("info")
        return super().__iter__()


class _RecordingState(PrinterState):
    """A merged state whose views report which fields they read."""

    read: set[str]

    @property
    def _online(self) -> bool | None:  # type: ignore[override]
        self.read.add("online")
        online: bool | None = self.__dict__["_online"]
        return online

    @_online.setter
    def _online(self, value: bool | None) -> None:
        self.__dict__["_online"] = value


def fields_read_by_views(printer: PrinterState) -> dict[str, set[str]]:
    """View name -> the change names (report fields, info, online) it read."""
    read: set[str] = set()
    online = printer.online
    printer.__class__ = _RecordingState
    recording = cast("_RecordingState", printer)
    recording.read = read
    recording.__dict__["_online"] = online
    recording._print = _RecordingReport(printer._print, read)
    recording._modules = _RecordingModules(printer._modules, read)
    found = {}
    for name in VIEW_FIELDS:
        recording._cache.clear()  # a cached inner view would hide its reads
        read.clear()
        view = getattr(recording, name)
        if callable(view):
            view(NOW)
        found[name] = set(read)
    return found


def _declaration_states() -> Iterator[tuple[str, PrinterState]]:
    fixtures = {
        "empty": [],
        "x1c": ["x1c_full.json", "x1c_version.json"],
        "h2d": ["h2d_full.json", "h2d_version.json"],
        "p1s": ["p1s_full.json"],
        "p1s_delta_only": ["p1s_delta.json"],
        "a1_mini": ["a1_mini_full.json", "a1_mini_version.json"],
    }
    for name, files in fixtures.items():
        yield name, state_of(*map(load_json_object_fixture, files))
    for name in ("P1P.json", "H2D.json"):
        path = PAYLOADS / name
        if path.is_file():
            capture = json.loads(path.read_text())
            yield (
                name,
                state_of(
                    {"print": capture["push_all"]}, {"info": capture["get_version"]}
                ),
            )


def test_views_read_only_the_fields_they_declare() -> None:
    """The view registry tells the truth: the hub wakes entities by it.

    A view reading a field it does not declare would show a stale value
    when only that field changes.
    """
    for state_name, printer in _declaration_states():
        for view, read in fields_read_by_views(printer).items():
            assert read <= VIEW_FIELDS[view], (
                f"{view} reads {sorted(read - VIEW_FIELDS[view])} undeclared"
                f" ({state_name})"
            )


def test_field_recorder_sees_reads() -> None:
    """The recorder behind the declaration test is not blind."""
    x1c = state_of(
        load_json_object_fixture("x1c_full.json"),
        load_json_object_fixture("x1c_version.json"),
    )
    read = fields_read_by_views(x1c)
    assert read["nozzles"] == {
        "device",
        "nozzle_temper",
        "nozzle_target_temper",
        "nozzle_diameter",
        "nozzle_type",
    }
    assert read["nozzle_temperature"] == {"device", "nozzle_temper"}
    assert read["firmware_version"] == {"info"}
    assert read["online"] == {"online"}
    assert read["stage"] == {"stg_cur", "stage", "print_type"}
    assert x1c.nozzle_temperature == x1c.nozzles[0].temperature


_loose_numbers = (
    st.none()
    | st.integers(min_value=-5, max_value=2**32)
    | st.floats(allow_nan=False, width=32)
    | st.sampled_from(["1", "x", "0.4", "-3", ""])
)
_nozzle_ids = st.none() | st.integers(min_value=-1, max_value=3) | st.just("1")
_heads = st.lists(
    st.fixed_dictionaries(
        {"temp": st.integers(min_value=0, max_value=2**31)},
        optional={"id": _nozzle_ids, "snow": _loose_numbers},
    )
    | st.just({})
    | st.integers(),
    max_size=3,
)
_specs = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from([0, 1, "1", None])},
        optional={
            "type": st.sampled_from(["HS01", "HH00", "stainless_steel", "", 3]),
            "diameter": _loose_numbers,
        },
    ),
    max_size=3,
)
_devices = st.fixed_dictionaries(
    {
        "extruder": st.fixed_dictionaries(
            {"info": _heads}, optional={"state": _loose_numbers}
        )
    },
    optional={"nozzle": st.fixed_dictionaries({"info": _specs})},
) | st.sampled_from([{}, None, {"extruder": []}])
_nozzle_reports = st.fixed_dictionaries(
    {"device": _devices},
    optional={
        "nozzle_temper": _loose_numbers,
        "nozzle_target_temper": _loose_numbers,
        "nozzle_diameter": _loose_numbers,
        "nozzle_type": st.sampled_from(["hardened_steel", "HS05", "", None, 2]),
    },
)


@settings(max_examples=300, deadline=None)
@given(_nozzle_reports)
def test_active_nozzle_views_agree_with_nozzles(report: dict[str, Any]) -> None:
    """The scalar nozzle views show the nozzle ``nozzles`` marks active.

    They find it on their own (reading fewer fields); any report, however
    odd, must give the same values as the full list.
    """
    printer = state_of({"print": {**report, "command": "push_status", "msg": 0}})
    nozzles = printer.nozzles
    active = next((nozzle for nozzle in nozzles if nozzle.active), nozzles[0])
    assert printer.nozzle_temperature == active.temperature
    assert printer.nozzle_target_temperature == active.target_temperature
    assert printer.nozzle_diameter == active.diameter
    assert printer.nozzle_type == active.type
    for view, read in fields_read_by_views(printer).items():
        assert read <= VIEW_FIELDS[view], view


def uncached(printer: PrinterState) -> PrinterState:
    """The same merged state with nothing cached: every view computed anew."""
    fresh = PrinterState()
    fresh._print = printer._print
    fresh._modules = printer._modules
    fresh._online = printer._online
    fresh._full = printer._full
    return fresh


def test_a_change_recomputes_only_the_views_reading_it() -> None:
    """A merge forgets the cached views its fields feed, and keeps the rest."""
    printer = state_of(load_json_object_fixture("p1s_full.json"))
    flags, nozzle = printer.home_flags, printer.nozzle_temperature
    printer.merge(p1s_delta(nozzle_temper=nozzle + 10))
    assert printer.home_flags is flags
    assert printer.nozzle_temperature == nozzle + 10
    printer.merge(p1s_delta(home_flag=0x00800000))
    assert printer.home_flags is not flags
    assert printer.door_open is True
    assert all_views(printer) == all_views(uncached(printer))


def test_every_public_view_is_registered() -> None:
    public = {
        name
        for name, value in vars(PrinterState).items()
        if not name.startswith("_") and (isinstance(value, property) or callable(value))
    }
    assert public - set(VIEW_FIELDS) == {"merge", "diagnostics", "has_full_report"}
    assert set(VIEW_FIELDS) <= public


def test_diagnostics_redacts_identifiers() -> None:
    printer = state_of(
        load_json_object_fixture("x1c_full.json"),
        load_json_object_fixture("x1c_version.json"),
        {"event": {"event": "x"}},
    )
    text = json.dumps(printer.diagnostics())
    assert "00M00A000000000" not in text
    assert "rtsps://" not in text
    assert "1677830336" not in text
    assert '"subtask_name": "Benchy"' in text
    assert printer.diagnostics()["full_report"] is True


# ----------------------------------------------------- shared captures


def shared_payload(name: str) -> dict[str, Any]:
    path = PAYLOADS / name
    if not path.is_file():
        pytest.skip(f"{path} not available (no ../shared checkout)")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_replay_p1p() -> None:
    capture = shared_payload("P1P.json")
    printer = PrinterState()
    assert "ams" in printer.merge({"print": capture["push_all"]}).changed
    result = printer.merge({"info": capture["get_version"]})
    assert result.changed == {"info"}

    assert printer.nozzle_temperature == 21.25
    assert printer.bed_temperature == 19.84375
    assert printer.gcode_state is JobState.FAILED
    assert printer.stage == "idle"
    assert printer.end_time(NOW) is None
    assert printer.job_name == "Fidget Collection"
    assert (printer.layer, printer.total_layers) == (1, 70)
    assert printer.remaining_minutes == 759
    assert printer.speed_level is SpeedLevel.STANDARD
    assert printer.wifi_signal == -53
    assert printer.printer_ip == "10.10.10.81"
    assert printer.lights == {"chamber_light": "off"}
    assert printer.camera.recording is True
    assert printer.nozzle_type == "hardened_steel"
    assert printer.door_open is False
    (unit,) = printer.ams_units
    assert (unit.kind, unit.humidity_index, unit.firmware_version) == (
        "ams",
        3,
        "00.00.06.49",
    )
    assert [tray.color for tray in unit.trays] == ["#D357FE"] * 4
    assert {tray.remaining for tray in unit.trays} == {None}
    active = printer.active_tray
    assert active is not None
    assert active.global_id == 0
    (spool,) = printer.external_spools
    assert (spool.global_id, spool.filament_id, spool.color) == (
        254,
        "P9816594",
        "#161616",
    )
    assert printer.firmware_version == "01.07.00.00"
    assert printer.project_name == "C11"
    assert printer.firmware_update.available is None


def test_replay_a1() -> None:
    capture = shared_payload("MOCK-A1.json")
    printer = state_of(capture["pushall"], capture["get_version"])

    assert printer.nozzle_temperature == 27.8125
    assert printer.bed_temperature == 29.75
    assert printer.gcode_state == "IDLE"
    assert printer.stage == "idle"
    assert printer.printer_ip == "192.168.0.98"
    assert printer.wifi_signal == -48
    assert printer.nozzle_type == "stainless_steel"
    assert printer.camera.resolution == "1080p"
    assert printer.xcam.buildplate_marker_detector is True
    assert printer.active_tray is None
    (unit,) = printer.ams_units
    assert unit.kind == "ams_lite"
    assert [tray.color for tray in unit.trays] == [
        "#76D9F4",
        "#FFF144",
        "#FF80FF",
        "#0ACC38",
    ]
    assert [tray.remaining for tray in unit.trays] == [100] * 4
    assert printer.firmware_version == "01.05.00.00"
    assert printer.project_name == "N2S"
    assert printer.firmware_update.available is False


def test_replay_x1c_multi_ams() -> None:
    capture = shared_payload("MOCK-X1CMULTIAMS.json")
    printer = state_of(capture["pushall"], capture["get_version"])

    assert printer.gcode_state == "FINISH"
    assert printer.progress == 100
    assert printer.stage == "idle"  # stg_cur -1
    assert printer.job_name == "Garden Hose Healer: Male fitting"
    assert (printer.layer, printer.total_layers) == (480, 480)
    assert printer.nozzle_temperature == 26.0
    assert printer.chamber_temperature == 25.0  # packed device.ctc only
    assert printer.nozzle_type == "hardened_steel"
    assert printer.lights == {"chamber_light": "on", "work_light": "flashing"}
    assert printer.xcam.halt_print_sensitivity == "low"
    assert printer.signed_commands_required is True
    assert printer.product_name == "Bambu Lab X1-Carbon"
    assert printer.firmware_version == "01.09.00.01"
    assert printer.firmware_update.status == "UPGRADE_SUCCESS"
    assert printer.nozzles[0].tray_id is None  # snow 65535
    units = printer.ams_units
    assert [(u.id, u.kind) for u in units] == [
        (0, "ams"),
        (1, "ams"),
        (2, "ams_2_pro"),
        (128, "ams_ht"),
    ]
    assert (units[2].drying_minutes_left, units[2].temperature) == (583, 65.0)
    assert units[2].trays[0].empty is True
    assert units[0].trays[0].remaining == 93
    assert units[3].trays[0].type == "PA-CF"
    assert units[3].trays[0].global_id == 128
    assert [spool.empty for spool in printer.external_spools] == [True]


def test_replay_h2d_with_deltas() -> None:
    capture = shared_payload("H2D.json")
    printer = PrinterState()
    printer.merge({"print": capture["push_all"]})
    printer.merge({"info": capture["get_version"]})

    assert printer.gcode_state == "RUNNING"
    assert printer.stage == "cleaning_nozzle_tip"
    assert printer.end_time(NOW) == datetime(2025, 6, 1, 13, 55, tzinfo=UTC)
    assert printer.active_extruder == 0
    right, left = printer.nozzles
    assert (right.temperature, right.target_temperature) == (264.0, 225.0)
    assert (left.temperature, left.target_temperature) == (40.0, 0.0)
    assert (right.tray_id, left.tray_id) == (128, 254)
    assert (right.flow, left.flow) == ("standard", "high_flow")
    assert (printer.bed_temperature, printer.bed_target_temperature) == (100.0, 100.0)
    assert printer.chamber_temperature == 49.0
    assert printer.chamber_target_temperature == 60.0
    assert printer.heatbreak_fan == 100
    assert printer.part_cooling_fan == 10
    assert printer.printer_ip == "192.168.19.123"
    assert printer.camera.rtsp_url == "rtsps://192.168.19.123:322/streaming/live/1"
    assert printer.lights["chamber_light2"] == "on"
    assert printer.product_name == "Bambu Lab H2D"
    assert [unit.kind for unit in printer.ams_units] == ["ams", "ams_ht"]
    assert printer.ams_units[1].humidity == 6
    assert [spool.global_id for spool in printer.external_spools] == [254, 255]
    assert printer.door_open is False

    def apply(name: str) -> frozenset[str]:
        return printer.merge({"print": capture[name]}).changed

    assert apply("push_door_opened") == {"stat"}
    assert printer.door_open is True
    assert apply("push_door_closed") == {"stat"}
    assert printer.door_open is False
    assert apply("push_old_door_opened") == {"home_flag"}
    assert printer.door_open is True
    assert apply("push_old_door_closed") == {"home_flag"}
    assert printer.door_open is False

    assert apply("push_left_extruder") == {"device"}
    assert printer.active_extruder == 1
    assert printer.nozzle_temperature == 40.0
    assert printer.bed_temperature == 100.0

    assert apply("push_alt_nozzle_info") == {"device"}
    right, left = printer.nozzles
    assert (right.diameter, right.type) == (0.2, "stainless_steel")
    assert (left.diameter, left.type) == (0.6, "tungsten_carbide")
    assert printer.nozzle_diameter == 0.6
    assert left.temperature == 40.0  # extruder info survived the nozzle delta


# ------------------------------------------------------------ property


def _keys_of(tree: Any) -> Iterator[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield key
            yield from _keys_of(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from _keys_of(item)


KNOWN_KEYS = sorted(
    set(
        _keys_of(
            [
                load_json_object_fixture("x1c_full.json"),
                load_json_object_fixture("p1s_full.json"),
                load_json_object_fixture("a1_mini_full.json"),
                load_json_object_fixture("h2d_full.json"),
                load_json_object_fixture("x1c_version.json"),
            ]
        )
    )
    | set(WRONG_TYPES)
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["15", "-53dBm", "FF00FFAA", "HS01", "0x1", "254", "1e999"])
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=6)
json_trees = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)
messages = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    json_trees,
    st.dictionaries(st.sampled_from(["print", "info", "event", "system"]), json_trees),
    st.builds(
        lambda body, command, msg: {"print": {**body, "command": command, "msg": msg}},
        st.dictionaries(keys, json_trees, max_size=8),
        st.sampled_from(["push_status", "pause", None]),
        st.sampled_from([0, 1, None]),
    ),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(messages, min_size=1, max_size=4))
def test_garbage_never_raises(batch: list[Any]) -> None:
    printer = PrinterState()
    printer.merge(load_json_object_fixture("x1c_full.json"))
    for message in batch:
        payload = (
            message if isinstance(message, bytes | str | dict) else json.dumps(message)
        )
        result = printer.merge(payload)
        assert isinstance(result, MergeResult)
        # What stayed cached is what the merged state shows now.
        assert all_views(printer) == all_views(uncached(printer))
        printer.diagnostics()


def test_printer_addresses_every_interface() -> None:
    """net.info lists one address per interface; zero and duplicates are left out."""
    wlan = int.from_bytes(bytes([192, 168, 1, 23]), "little")
    eth = int.from_bytes(bytes([10, 0, 0, 7]), "little")
    printer = state_of(
        p1s_delta(
            net={
                "conf": 16,
                "info": [{"ip": 0}, {"ip": wlan}, {"ip": str(eth)}, {"ip": wlan}],
            }
        )
    )
    assert printer.printer_addresses == ("192.168.1.23", "10.0.0.7")
    assert printer.printer_ip == "192.168.1.23"
    assert state_of(p1s_delta(net={"info": "garbage"})).printer_addresses == ()
