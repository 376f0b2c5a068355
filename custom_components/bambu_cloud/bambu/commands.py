"""Builders of the JSON commands published on ``device/<serial>/request``."""

from __future__ import annotations

import itertools
import json
from typing import Any

type Command = dict[str, Any]


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
