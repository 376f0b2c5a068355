"""Builders of the JSON commands published on ``device/<serial>/request``."""

from __future__ import annotations

import itertools
import json
from typing import Any

from .auth import AppCertificate

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


def print_speed(level: int) -> Command:
    """Speed level 1 silent .. 4 ludicrous (a string on the wire)."""
    return {"print": {"command": "print_speed", "param": str(level)}}


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
