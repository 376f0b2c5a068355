"""The virtual printer: on mosquitto with a real paho client over TLS, and offline."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tools.test_pki import PrinterPKI
from tools.virtual_printer.mosquitto import MqttBroker
from tools.virtual_printer.printer import (
    BUSY_REASON,
    ERR_ENVELOPE_MALFORMED,
    ERR_VERIFY_FAILED,
    FILE_NOT_FOUND_REASON,
    FUN_SIGNATURE_REQUIRED,
    MODELS,
    NOT_PRINTING_REASON,
    PRINT_CANCELLED,
    VirtualPrinter,
    canonical_print_bytes,
    deep_merge,
    pack_temp,
    unpack_temp,
)

from . import ACCESS_CODE, PahoClient, client_context, eventually

pytestmark = pytest.mark.usefixtures("socket_enabled")

SERIAL = "00M09A000000002"
REPORT = f"device/{SERIAL}/report"
REQUEST = f"device/{SERIAL}/request"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign(
    inner: dict[str, Any], key: rsa.RSAPrivateKey, **header: Any
) -> dict[str, Any]:
    """Envelope as documented in PROTOCOL.md 2.3 (independent of the printer)."""
    signed = (
        '{"print":' + json.dumps(inner, sort_keys=True, separators=(",", ":")) + "}"
    ).encode()
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    envelope = {
        "sign_ver": "v1.0",
        "sign_alg": "RSA_SHA256",
        "sign_string": base64.b64encode(signature).decode(),
        "cert_id": "0123456789abcdef0123456789abcdefCN=GLOF0000000000.bambulab.com",
        "payload_len": len(signed),
    }
    envelope.update(header)
    return {"print": inner, "header": envelope}


def acks(message: dict[str, Any], kind: str, command: str) -> bool:
    body = message.get(kind, {})
    return body.get("command") == command and "result" in body


def is_report(message: dict[str, Any]) -> bool:
    return message.get("print", {}).get("command") == "push_status"


# -- over TLS with a real client ------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> PrinterPKI:
    return PrinterPKI.create(tmp_path, SERIAL)


@pytest.fixture
def client_ctx(pki: PrinterPKI) -> ssl.SSLContext:
    return client_context(pki.ca_pem)


@pytest.fixture
async def broker(pki: PrinterPKI) -> AsyncIterator[MqttBroker]:
    async with MqttBroker(pki.leaf, users={"bblp": ACCESS_CODE}) as tls:
        yield tls


@pytest.fixture
async def printer(
    broker: MqttBroker, signing_key: rsa.RSAPrivateKey
) -> AsyncIterator[VirtualPrinter]:
    virtual = VirtualPrinter(broker, SERIAL, "X1C", public_key=signing_key.public_key())
    async with virtual:
        yield virtual


@pytest.fixture
def client(
    broker: MqttBroker, printer: VirtualPrinter, client_ctx: ssl.SSLContext
) -> Iterator[PahoClient]:
    paho = PahoClient(
        broker.port,
        client_id="ha-bambu",
        ssl_context=client_ctx,
        sni=SERIAL,
        subscribe=(REPORT,),
        qos=1,
    ).start()
    yield paho
    paho.close()


async def test_pushall_returns_full_report(
    client: PahoClient, printer: VirtualPrinter
) -> None:
    await client.ready()
    client.publish_json(
        REQUEST, {"pushing": {"sequence_id": "0", "command": "pushall"}}
    )
    report = (await client.next_json(is_report))["print"]
    assert report["msg"] == 0
    assert report["gcode_state"] == "IDLE"
    assert report["ams"]["ams"][0]["tray"][0]["tray_type"] == "PLA"
    assert {light["node"] for light in report["lights_report"]} == {
        "chamber_light",
        "work_light",
    }
    assert report["sequence_id"] == "1"
    assert printer.received == [{"pushing": {"sequence_id": "0", "command": "pushall"}}]


async def test_get_version_lists_modules(client: PahoClient) -> None:
    await client.ready()
    client.publish_json(
        REQUEST, {"info": {"sequence_id": "7", "command": "get_version"}}
    )
    info = (await client.next_json(lambda m: "info" in m))["info"]
    assert info["command"] == "get_version"
    assert info["sequence_id"] == "7"
    modules = {module["name"]: module for module in info["module"]}
    assert set(modules) == {"ota", "ap", "mc", "th", "ams/0"}
    assert modules["ota"]["product_name"] == "Bambu Lab X1-Carbon"
    assert modules["ota"]["sw_ver"] == "01.09.01.00"
    assert modules["ota"]["sn"] == SERIAL
    assert modules["ap"]["hw_ver"] == "AP05"
    assert modules["ams/0"]["hw_ver"] == "AMS08"


async def test_pause_is_acked_and_applied(
    client: PahoClient, printer: VirtualPrinter
) -> None:
    await client.ready()
    start = {
        "sequence_id": "41",
        "command": "project_file",
        "param": "Metadata/plate_1.gcode",
        "file": "benchy.gcode.3mf",
        "subtask_name": "benchy",
    }
    client.publish_json(REQUEST, {"print": start}, qos=1)
    await client.next_json(lambda m: m.get("print", {}).get("gcode_state") == "RUNNING")
    client.publish_json(
        REQUEST, {"print": {"sequence_id": "42", "command": "pause", "param": ""}}, 1
    )
    ack = (await client.next_json(lambda m: acks(m, "print", "pause")))["print"]
    assert ack == {
        "sequence_id": "42",
        "command": "pause",
        "param": "",
        "result": "success",
    }
    report = await client.next_json(
        lambda m: m.get("print", {}).get("gcode_state") == "PAUSE"
    )
    assert report["print"]["msg"] == 0  # X1C: full reports
    assert report["print"]["subtask_name"] == "benchy"
    assert printer.state["gcode_state"] == "PAUSE"
    assert printer.state["stg_cur"] == 16


async def test_ledctrl_updates_lights_report(
    client: PahoClient, printer: VirtualPrinter
) -> None:
    await client.ready()
    command = {
        "sequence_id": "3",
        "command": "ledctrl",
        "led_node": "work_light",
        "led_mode": "on",
        "led_on_time": 500,
        "led_off_time": 500,
        "loop_times": 0,
        "interval_time": 0,
    }
    client.publish_json(REQUEST, {"system": command})
    ack = (await client.next_json(lambda m: acks(m, "system", "ledctrl")))["system"]
    assert ack["result"] == "success"
    assert ack["led_node"] == "work_light"
    report = await client.next_json(
        lambda m: (
            {"node": "work_light", "mode": "on"}
            in m.get("print", {}).get("lights_report", [])
        )
    )
    assert is_report(report)
    assert {"node": "work_light", "mode": "on"} in printer.state["lights_report"]


async def test_signature_required(
    client: PahoClient, printer: VirtualPrinter, signing_key: rsa.RSAPrivateKey
) -> None:
    printer.signature_required = True
    printer.state["gcode_state"] = "RUNNING"
    await client.ready()

    client.publish_json(REQUEST, {"print": {"sequence_id": "1", "command": "pause"}}, 1)
    refused = (await client.next_json(lambda m: acks(m, "print", "pause")))["print"]
    assert refused == {
        "command": "pause",
        "sequence_id": "1",
        "result": "failed",
        "reason": "mqtt message verify failed",
        "err_code": 84033543,
    }
    assert printer.state["gcode_state"] == "RUNNING"

    malformed = {"print": {"sequence_id": "2", "command": "pause"}, "header": "x"}
    client.publish_json(REQUEST, malformed, 1)
    refused = (
        await client.next_json(
            lambda m: acks(m, "print", "pause") and m["print"]["sequence_id"] == "2"
        )
    )["print"]
    assert refused["err_code"] == 84033545

    inner = {"sequence_id": "3", "command": "pause", "param": ""}
    client.publish_json(REQUEST, sign(inner, signing_key), 1)
    accepted = (
        await client.next_json(
            lambda m: acks(m, "print", "pause") and m["print"]["sequence_id"] == "3"
        )
    )["print"]
    assert accepted["result"] == "success"
    assert "header" not in accepted
    assert printer.state["gcode_state"] == "PAUSE"

    # the light still works on authorization firmware
    client.publish_json(
        REQUEST,
        {
            "system": {
                "command": "ledctrl",
                "led_node": "chamber_light",
                "led_mode": "off",
            }
        },
    )
    await client.next_json(lambda m: acks(m, "system", "ledctrl"))


async def test_offline_presence(client: PahoClient, printer: VirtualPrinter) -> None:
    await client.ready()
    printer.set_online(False)
    event = await client.next_json(lambda m: "event" in m)
    assert event == {"event": {"event": "client.disconnected"}}
    client.publish_json(
        REQUEST, {"pushing": {"sequence_id": "0", "command": "pushall"}}
    )
    await asyncio.sleep(0.3)
    assert not any(is_report(m) for m in client.json_messages())
    assert printer.received == []

    printer.set_online(True)
    await client.next_json(
        lambda m: m.get("event", {}).get("event") == "client.connected"
    )
    await client.next_json(is_report)


async def test_broker_restart_with_printer(
    broker: MqttBroker, client: PahoClient, printer: VirtualPrinter
) -> None:
    await client.ready()
    await broker.stop()
    await broker.start()
    await client.ready(count=2)
    await broker.wait_for_client("ha-bambu", subscribed_to=REPORT, within=10)
    client.publish_json(
        REQUEST, {"pushing": {"sequence_id": "0", "command": "pushall"}}
    )
    await client.next_json(is_report)


async def test_printer_reconnects_after_broker_restart(
    broker: MqttBroker, printer: VirtualPrinter
) -> None:
    """Like firmware, the printer logs in again when its broker comes back."""
    await broker.stop()
    assert printer.publish({"lost": True}) == 0
    await broker.start()
    await eventually(lambda: printer.publish({"back": True}) == 1)


async def test_mirror_serves_both_brokers(
    broker: MqttBroker, printer: VirtualPrinter, pki: PrinterPKI
) -> None:
    """A mirror added while running gets reports and its requests are handled."""
    async with MqttBroker(pki.leaf, users={"bblp": ACCESS_CODE}) as lan:
        await printer.add_mirror(lan)
        await printer.add_mirror(lan)  # once is enough
        assert printer.brokers == (broker, lan)
        assert printer.publish({"x": 1}) == 2
        lan.publish(REQUEST, {"info": {"sequence_id": "1", "command": "get_version"}})
        await eventually(lambda: printer.received)
        await eventually(
            lambda: any("info" in json.loads(m.payload) for m in lan.messages)
        )
    await printer.stop()
    assert printer.publish({"x": 2}) == 0


# -- offline: requests handed over directly, reports recorded -------------------


class RecordingPrinter(VirtualPrinter):
    """A printer whose reports are recorded instead of published."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[bytes] = []

    def _deliver(self, payload: bytes) -> int:
        self.sent.append(payload)
        return 1


class Harness:
    """A printer never connected to its broker: inspect what it publishes."""

    def __init__(self, model: str = "X1C", **kwargs: Any) -> None:
        self.broker = MqttBroker()  # configured, never started
        self.printer = RecordingPrinter(self.broker, f"{model}-SN", model, **kwargs)
        self.seen = 0

    def send(self, message: Any, topic: str | None = None) -> list[dict[str, Any]]:
        """Deliver like the broker does; returns what the printer answered."""
        raw = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.printer.on_request(topic or self.printer.request_topic, raw)
        return self.new()

    def new(self) -> list[dict[str, Any]]:
        messages = self.printer.sent[self.seen :]
        self.seen += len(messages)
        return [json.loads(m) for m in messages]

    def command(self, kind: str, command: str, **fields: Any) -> list[dict[str, Any]]:
        return self.send({kind: {"sequence_id": "9", "command": command, **fields}})


def test_canonical_bytes_and_packing() -> None:
    inner = {"sequence_id": "1", "param": "", "command": "pause", "n": "é"}
    assert canonical_print_bytes(inner) == (
        b'{"print":{"command":"pause","n":"\\u00e9","param":"","sequence_id":"1"}}'
    )
    assert pack_temp(100, 100) == 6553700
    assert unpack_temp(6553700) == (100, 100)
    assert unpack_temp(pack_temp(24.7, 0)) == (24, 0)
    state: dict[str, Any] = {"a": {"b": 1, "c": [1]}, "d": 1}
    deep_merge(state, {"a": {"c": [2]}, "d": {"e": 1}})
    assert state == {"a": {"b": 1, "c": [2]}, "d": {"e": 1}}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_reports_and_versions(model: str) -> None:
    harness = Harness(model)
    spec = MODELS[model]
    [report] = harness.command("pushing", "pushall")
    body = report["print"]
    assert body["msg"] == 0
    assert body["command"] == "push_status"
    for key in ("nozzle_temper", "bed_temper", "gcode_state", "ams", "wifi_signal"):
        assert key in body
    assert not int(body["fun"], 16) & FUN_SIGNATURE_REQUIRED
    [reply] = harness.command("info", "get_version")
    names = [module["name"] for module in reply["info"]["module"]]
    assert names[:2] == ["ota", spec.ap_module]
    assert names[4:] == [name for name, _, _ in spec.ams_modules]
    ota = reply["info"]["module"][0]
    assert ota["product_name"] == spec.product_name
    assert ota["project_name"] == spec.project_name
    for module in reply["info"]["module"][4:]:
        assert len(module["sn"]) == 15
    assert harness.printer.full_reports is spec.full_reports


def test_h2d_packed_temperatures() -> None:
    harness = Harness("H2D")
    printer = harness.printer
    harness.command("print", "gcode_line", param="M104 S250 T1\nM140 S70\nM141 S45\n")
    device = printer.state["device"]
    assert unpack_temp(device["extruder"]["info"][1]["temp"]) == (25, 250)
    assert unpack_temp(device["extruder"]["info"][0]["temp"])[1] == 0
    assert printer.state["nozzle_target_temper"] == 0.0
    assert unpack_temp(device["bed"]["info"]["temp"]) == (23, 70)
    assert printer.state["bed_target_temper"] == 70.0
    assert unpack_temp(device["ctc"]["info"]["temp"]) == (26, 45)
    harness.command("print", "gcode_line", param="M104 S220")
    assert unpack_temp(device["extruder"]["info"][0]["temp"])[1] == 220
    assert printer.state["nozzle_target_temper"] == 220.0
    harness.command("print", "gcode_line", param="M104 S200 T5")  # no such tool
    harness.new()
    printer.tick()
    assert unpack_temp(device["extruder"]["info"][1]["temp"]) == (30, 250)
    [report] = harness.new()
    assert report["print"]["msg"] == 0
    assert printer.state["nozzle_temper"] == 29.0


def test_p1s_sends_deltas_and_print_control() -> None:
    harness = Harness("P1S")
    printer = harness.printer
    [ack] = harness.command("print", "pause")
    assert ack["print"]["result"] == "success"  # idle: acked, nothing changes
    messages = harness.command("print", "gcode_file", param="/sdcard/cube.gcode")
    assert messages[0]["print"]["result"] == "success"
    delta = messages[1]["print"]
    assert delta["msg"] == 1
    assert delta["gcode_state"] == "RUNNING"
    assert delta["gcode_file"] == "/sdcard/cube.gcode"
    assert "ams" not in delta
    assert "nozzle_temper" not in delta

    [_, delta_msg] = harness.command("print", "print_speed", param="3")
    assert delta_msg["print"]["spd_lvl"] == 3
    assert delta_msg["print"]["spd_mag"] == 124
    for bad in ("9", 2, "x"):
        [ack] = harness.command("print", "print_speed", param=bad)
        assert ack["print"]["result"] == "failed"
        assert ack["print"]["reason"] == "invalid param"

    harness.command("print", "pause")
    [_, delta_msg] = harness.command("print", "resume")
    assert delta_msg["print"]["gcode_state"] == "RUNNING"
    assert harness.command("print", "resume")[1:] == []  # not paused
    [_, delta_msg] = harness.command("print", "stop")
    assert delta_msg["print"]["gcode_state"] == "FAILED"
    assert delta_msg["print"]["print_error"] == PRINT_CANCELLED
    assert delta_msg["print"]["stg_cur"] == 255
    assert harness.command("print", "stop")[1:] == []  # already stopped
    printer.tick()
    assert printer.state["print_error"] == 0


def test_job_progress_and_ticker() -> None:
    harness = Harness("X1C")
    printer = harness.printer
    harness.command("print", "project_file", param="Metadata/plate_1.gcode")
    assert printer.state["subtask_name"] == ""
    printer.state["mc_percent"] = 98
    printer.tick()
    assert printer.state["mc_percent"] == 99
    assert printer.state["layer_num"] == 99
    printer.tick()
    assert printer.state["gcode_state"] == "FINISH"
    assert printer.state["stg_cur"] == -1
    printer.state.update(nozzle_temper=23.0, bed_temper=23.0)
    harness.new()
    printer.tick()
    assert harness.new() == []  # nothing changed, nothing sent


async def test_start_with_interval_ticks_until_stopped(broker: MqttBroker) -> None:
    printer = VirtualPrinter(broker, SERIAL, "A1MINI")
    printer.state["nozzle_target_temper"] = 200.0
    await printer.start(interval=0.01)
    await printer.start(interval=0.01)  # no second ticker, no second client
    await eventually(lambda: printer.state["nozzle_temper"] > 40)
    await eventually(lambda: broker.messages)
    await printer.stop()
    await printer.stop()
    temperature = printer.state["nozzle_temper"]
    await asyncio.sleep(0.05)
    assert printer.state["nozzle_temper"] == temperature


def test_gcode_fans_and_temperatures() -> None:
    harness = Harness("X1C")
    state = harness.printer.state
    [ack, report] = harness.command(
        "print",
        "gcode_line",
        param="M104 S220\nM140 S60 ; bed\nM106 P1 S255\nM106 P2 S128\n"
        "M106 P3 S0\nM106 P9 S1\nM141 S40\nG28\n",
    )
    assert ack["print"]["result"] == "success"
    assert report["print"]["msg"] == 0
    assert state["nozzle_target_temper"] == 220.0
    assert state["bed_target_temper"] == 60.0
    assert (state["cooling_fan_speed"], state["big_fan1_speed"]) == ("15", "8")
    assert state["big_fan2_speed"] == "0"
    [ack] = harness.command("print", "gcode_line", param=None)
    assert ack["print"]["result"] == "failed"
    assert harness.command("print", "gcode_line", param="G28\n")[1:] == []


def test_project_file_refusals() -> None:
    """Like firmware: no second job while one runs, no job from a missing file."""
    harness = Harness("P1S")
    printer = harness.printer
    printer.storage = {"/cube.gcode.3mf": b"PK"}
    [ack] = harness.command(
        "print", "project_file", url="file:///sdcard/gone.3mf", file="gone.3mf"
    )
    assert (ack["print"]["result"], ack["print"]["reason"]) == (
        "failed",
        FILE_NOT_FOUND_REASON,
    )
    assert printer.state["gcode_state"] == "IDLE"
    [ack, _] = harness.command(
        "print", "project_file", url="ftp://cube.gcode.3mf", file="cube.gcode.3mf"
    )
    assert ack["print"]["result"] == "success"
    assert printer.state["gcode_state"] == "RUNNING"
    [ack] = harness.command(
        "print", "project_file", url="file:///media/usb0/cube.gcode.3mf"
    )
    assert (ack["print"]["result"], ack["print"]["reason"]) == ("failed", BUSY_REASON)
    assert printer.state["gcode_file"] == "cube.gcode.3mf"
    printer.storage = None
    harness.command("print", "stop")
    [ack, _] = harness.command("print", "gcode_file", param="/sdcard/any.gcode")
    assert ack["print"]["result"] == "success"


def test_objects_options_and_ams() -> None:
    harness = Harness("X1C")
    printer = harness.printer
    [ack] = harness.command("print", "skip_objects", obj_list=[206])
    assert (ack["print"]["result"], ack["print"]["reason"]) == (
        "failed",
        NOT_PRINTING_REASON,
    )
    harness.command("print", "project_file", param="Metadata/plate_1.gcode")
    harness.command("print", "skip_objects", obj_list=[206, 12])
    harness.command("print", "skip_objects", obj_list=[12, 300])
    assert printer.state["s_obj"] == [12, 206, 300]
    [ack] = harness.command("print", "skip_objects", obj_list="206")
    assert ack["print"]["result"] == "failed"

    harness.command("print", "print_option", auto_recovery=True, sound_enable=True)
    assert printer.state["home_flag"] & 0x10
    assert printer.state["home_flag"] & 0x20000
    assert harness.command("print", "print_option", auto_recovery=True)[1:] == []
    harness.command("print", "print_option", auto_recovery=False)
    assert not printer.state["home_flag"] & 0x10

    harness.command("print", "ams_change_filament", ams_id=0, slot_id=1, target=1)
    assert printer.state["ams"]["tray_now"] == "1"
    harness.command("print", "ams_change_filament", ams_id=0, slot_id=255, target=255)
    assert printer.state["ams"]["tray_pre"] == "1"
    assert printer.state["ams"]["tray_now"] == "255"
    [ack] = harness.command("print", "ams_change_filament", target="1")
    assert ack["print"]["result"] == "failed"

    setting = {"tray_color": "FF0000FF", "tray_type": "PETG", "nozzle_temp_min": 220}
    harness.command("print", "ams_filament_setting", ams_id=0, tray_id=3, **setting)
    tray = printer.state["ams"]["ams"][0]["tray"][3]
    assert (tray["tray_type"], tray["cols"]) == ("PETG", ["FF0000FF"])
    assert tray["nozzle_temp_min"] == "220"
    [_, report] = harness.command(
        "print", "ams_filament_setting", ams_id=255, tray_id=254, tray_type="TPU"
    )
    assert report["print"]["vt_tray"]["tray_type"] == "TPU"
    [ack] = harness.command("print", "ams_filament_setting", ams_id=7, tray_id=0)
    assert ack["print"]["result"] == "failed"

    for command in ("calibration", "ams_control", "unload_filament"):
        [ack] = harness.command("print", command)
        assert ack["print"]["result"] == "success"
    [ack] = harness.command("print", "no_such_command")
    assert ack["print"] == {
        "sequence_id": "9",
        "command": "no_such_command",
        "result": "failed",
        "reason": "unsupported command",
    }


def test_ams_edge_cases_per_family() -> None:
    h2d = Harness("H2D")
    [_, report] = h2d.command(
        "print", "ams_filament_setting", ams_id=255, tray_id=255, tray_type="PLA"
    )
    assert report["print"]["vir_slot"][1]["tray_type"] == "PLA"
    h2d.command("print", "ams_filament_setting", ams_id=128, tray_id=0, tray_type="PC")
    assert h2d.printer.state["ams"]["ams"][1]["tray"][0]["tray_type"] == "PC"

    bare = Harness("P1S", state={"fun": "0", "gcode_state": "IDLE"})
    [ack] = bare.command("print", "ams_change_filament", target=1)
    assert ack["print"]["reason"] == "no ams"
    [ack] = bare.command("print", "ams_filament_setting", ams_id=255, tray_id=254)
    assert ack["print"]["result"] == "failed"


def test_system_camera_xcam_and_other_classes() -> None:
    harness = Harness("X1C", access_code="87654321")
    state = harness.printer.state
    [ack] = harness.command("system", "get_access_code")
    assert ack["system"]["access_code"] == "87654321"
    [ack] = harness.command("system", "get_accessories", accessory_type="none")
    assert ack["system"]["result"] == "success"

    for bad in (
        {"led_node": "chamber_light", "led_mode": "blink"},
        {"led_node": 5, "led_mode": "on"},
        {"led_node": "chamber_light", "led_mode": "flashing"},
    ):
        [ack] = harness.command("system", "ledctrl", **bad)
        assert ack["system"]["result"] == "failed"
    timing = {
        "led_on_time": 500,
        "led_off_time": 500,
        "loop_times": 0,
        "interval_time": 0,
    }
    [ack, report] = harness.command(
        "system", "ledctrl", led_node="chamber_light", led_mode="flashing", **timing
    )
    assert {"node": "chamber_light", "mode": "flashing"} in report["print"][
        "lights_report"
    ]
    assert (
        harness.command(
            "system", "ledctrl", led_node="chamber_light", led_mode="flashing", **timing
        )[1:]
        == []
    )  # unchanged: ack only
    assert (
        len(
            harness.command(
                "system", "ledctrl", led_node="heatbed_light", led_mode="on"
            )
        )
        == 1
    )
    harness.command("system", "ledctrl", led_node="chamber_light2", led_mode="on")
    assert {"node": "chamber_light2", "mode": "on"} in state["lights_report"]

    [ack, _] = harness.command("camera", "ipcam_record_set", control="disable")
    assert ack["camera"]["result"] == "success"
    assert state["ipcam"]["ipcam_record"] == "disable"
    harness.command("camera", "ipcam_timelapse", control="enable")
    assert state["ipcam"]["timelapse"] == "enable"
    harness.command(
        "xcam",
        "xcam_control_set",
        module_name="spaghetti_detector",
        control=False,
        print_halt=False,
    )
    assert state["xcam"]["spaghetti_detector"] is False
    assert state["xcam"]["print_halt"] is False
    [ack] = harness.command("upgrade", "get_history")
    assert ack["upgrade"]["result"] == "success"

    assert harness.command("info", "get_status") == []
    assert harness.command("pushing", "stop") == []
    assert harness.send({"user_id": "1"}) == []


def test_request_filtering_and_log_bound() -> None:
    harness = Harness("X1C", log_size=2)
    printer = harness.printer
    assert (
        harness.send({"pushing": {"command": "pushall"}}, "device/other/request") == []
    )
    assert harness.send(b"not json") == []
    assert harness.send([1, 2]) == []
    for sequence in range(3):
        harness.send({"info": {"sequence_id": str(sequence), "command": "x"}})
    assert [m["info"]["sequence_id"] for m in printer.received] == ["1", "2"]
    printer.set_online(True)  # already online: nothing
    assert harness.new() == []
    printer.set_online(False)
    assert harness.new() == [{"event": {"event": "client.disconnected"}}]
    printer.set_online(False)
    assert harness.send({"pushing": {"command": "pushall"}}) == []
    assert printer.publish({"x": 1}) == 0
    printer.tick()
    assert harness.new() == []
    printer.set_online(True)
    harness.new()
    printer.detach()
    printer.detach()
    assert harness.send({"pushing": {"command": "pushall"}}) == []
    assert printer.publish({"x": 1}) == 0
    printer.attach()
    assert len(harness.send({"pushing": {"command": "pushall"}})) == 1


def test_update_styles() -> None:
    full = Harness("X1C")
    full.printer.update({"wifi_signal": "-60dBm"})
    [report] = full.new()
    assert report["print"]["msg"] == 0
    assert "ams" in report["print"]

    delta = Harness("X1C", full_reports=False)
    delta.printer.update({"wifi_signal": "-60dBm"})
    [report] = delta.new()
    assert report["print"] == {
        "wifi_signal": "-60dBm",
        "command": "push_status",
        "msg": 1,
        "sequence_id": "1",
    }


def test_verify_envelope(signing_key: rsa.RSAPrivateKey) -> None:
    printer = Harness("X1C", public_key=signing_key.public_key()).printer
    inner = {"sequence_id": "5", "command": "stop", "param": ""}
    good = sign(inner, signing_key)
    assert printer.verify_envelope(good) is None
    assert printer.verify_envelope({"print": inner}) == ERR_VERIFY_FAILED
    cases = {
        "not a dict": ({"print": inner, "header": []}, ERR_ENVELOPE_MALFORMED),
        "missing field": (
            {"print": inner, "header": {"sign_ver": "v1.0"}},
            ERR_ENVELOPE_MALFORMED,
        ),
        "algorithm": (
            sign(inner, signing_key, sign_alg="ECDSA"),
            ERR_ENVELOPE_MALFORMED,
        ),
        "version": (sign(inner, signing_key, sign_ver="v2.0"), ERR_ENVELOPE_MALFORMED),
        "cert id": (sign(inner, signing_key, cert_id=""), ERR_ENVELOPE_MALFORMED),
        "length type": (
            sign(inner, signing_key, payload_len=True),
            ERR_ENVELOPE_MALFORMED,
        ),
        "base64": (sign(inner, signing_key, sign_string="@@@"), ERR_ENVELOPE_MALFORMED),
        "length": (sign(inner, signing_key, payload_len=1), ERR_VERIFY_FAILED),
        "signature": (
            sign(inner, signing_key, sign_string=base64.b64encode(b"x" * 256).decode()),
            ERR_VERIFY_FAILED,
        ),
        "tampered": (
            {"print": {**inner, "param": "x"}, "header": good["header"]},
            ERR_VERIFY_FAILED,
        ),
    }
    for name, (message, expected) in cases.items():
        assert printer.verify_envelope(message) == expected, name
    printer.public_key = None
    assert printer.verify_envelope(good) == ERR_VERIFY_FAILED


def test_signature_required_flag_in_fun() -> None:
    harness = Harness("P1S", signature_required=True)
    printer = harness.printer
    assert printer.signature_required
    assert int(printer.state["fun"], 16) & FUN_SIGNATURE_REQUIRED
    [ack] = harness.command("print", "stop")
    assert ack["print"]["err_code"] == ERR_VERIFY_FAILED
    printer.signature_required = False
    assert not int(printer.state["fun"], 16) & FUN_SIGNATURE_REQUIRED
    assert printer.report_topic == "device/P1S-SN/report"
