"""Fixture files of the tests: printer reports and cloud answers as JSON.

Home Assistant core keeps such payloads in ``fixtures/*.json`` and reads them
with ``load_fixture`` / ``load_json_object_fixture``. The helpers of
``pytest_homeassistant_custom_component.common`` resolve the file next to the
*calling* test module and cache by file name only, so the library tests in
``tests/bambu/`` would look in ``tests/bambu/fixtures`` (and one name could
hit the other directory's cached text). These equivalents always read
``tests/fixtures/`` and import nothing from Home Assistant, so the library
tests stay free of it.

Captures of real printers stay in ``../shared/payloads`` and are read from
there (``tests/bambu/test_state.py``); they are never copied here.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def load_fixture(filename: str) -> str:
    """The text of ``tests/fixtures/<filename>`` (read once per run)."""
    return (FIXTURES / filename).read_text(encoding="utf-8")


def load_json_object_fixture(filename: str) -> dict[str, Any]:
    """A fresh copy of a JSON object fixture: callers may change it freely."""
    value = json.loads(load_fixture(filename))
    if not isinstance(value, dict):
        raise TypeError(f"{filename} holds {type(value).__name__}, not an object")
    return value
