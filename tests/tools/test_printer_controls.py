"""The virtual printer's controls: air duct, buzzer, fans, detectors, AMS options."""

from __future__ import annotations

from typing import Any

from tools.virtual_printer.printer import SECONDARY_AUX_FAN_PART, UNSUPPORTED_REASON

from .test_printer import Harness


def _ack(replies: list[dict[str, Any]]) -> dict[str, Any]:
    return replies[0]["print"]


def test_air_duct() -> None:
    """set_airduct sets modeCur and reports; no duct or unknown mode: refused."""
    harness = Harness("P2S")
    replies = harness.command("print", "set_airduct", modeId=1, submode=-1)
    assert _ack(replies)["result"] == "success"
    assert replies[1]["print"]["device"]["airduct"]["modeCur"] == 1
    # The same mode again: acknowledged, nothing to report.
    assert len(harness.command("print", "set_airduct", modeId=1, submode=-1)) == 1
    for mode in (2, "1", None):
        ack = _ack(harness.command("print", "set_airduct", modeId=mode, submode=-1))
        assert (ack["result"], ack["reason"]) == ("failed", "invalid param")
    ack = _ack(Harness("X1C").command("print", "set_airduct", modeId=0, submode=-1))
    assert (ack["result"], ack["reason"]) == ("failed", UNSUPPORTED_REASON)


def test_buzzer() -> None:
    """The H2D acknowledges buzzer_ctrl (no state); other models refuse it."""
    harness = Harness("H2D")
    ack = _ack(harness.command("print", "buzzer_ctrl", mode=2, reason=""))
    assert ack["result"] == "success"
    ack = _ack(harness.command("print", "buzzer_ctrl", mode=5, reason=""))
    assert ack["reason"] == "invalid param"
    ack = _ack(Harness("P2S").command("print", "buzzer_ctrl", mode=1, reason=""))
    assert (ack["result"], ack["reason"]) == ("failed", UNSUPPORTED_REASON)


def test_secondary_aux_fan() -> None:
    """M106 P10 sets air duct part 160 in %; printers without it ignore it."""
    harness = Harness("P2S")
    harness.command("print", "gcode_line", param="M106 P10 S128\n")
    parts = harness.printer.state["device"]["airduct"]["parts"]
    assert next(p for p in parts if p["id"] == SECONDARY_AUX_FAN_PART)["state"] == 50
    h2d = Harness("H2D")
    replies = h2d.command("print", "gcode_line", param="M106 P10 S255\n")
    assert len(replies) == 1  # ack only: no part 160 on the H2D


def test_detectors_and_auto_refill() -> None:
    """print_option flips a detector's bit only where it is announced."""
    p2s = Harness("P2S")
    p2s.command("print", "print_option", nozzle_blob_detect=True)
    assert p2s.printer.state["home_flag"] & 1 << 24
    p2s.command("print", "print_option", auto_switch_filament=False)
    assert not p2s.printer.state["home_flag"] & 1 << 10
    x1c = Harness("X1C")
    before = x1c.printer.state["home_flag"]
    x1c.command("print", "print_option", air_print_detect=True)
    assert x1c.printer.state["home_flag"] == before


def test_ams_user_setting() -> None:
    """The AMS flags and remain detection change together; bad input refused."""
    harness = Harness("P1S")
    replies = harness.command(
        "print",
        "ams_user_setting",
        ams_id=-1,
        startup_read_option=True,
        tray_read_option=False,
        calibrate_remain_flag=False,
    )
    assert _ack(replies)["result"] == "success"
    state = harness.printer.state
    assert (state["ams"]["power_on_flag"], state["ams"]["insert_flag"]) == (
        True,
        False,
    )
    assert not state["home_flag"] & 0x80
    ack = _ack(harness.command("print", "ams_user_setting", ams_id=-1))
    assert ack["reason"] == "invalid param"
    del state["ams"]
    ack = _ack(
        harness.command(
            "print",
            "ams_user_setting",
            ams_id=-1,
            startup_read_option=True,
            tray_read_option=True,
            calibrate_remain_flag=True,
        )
    )
    assert ack["reason"] == "no ams"
