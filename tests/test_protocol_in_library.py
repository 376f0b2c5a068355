"""Protocol knowledge lives in the library: the glue builds no command itself.

Every MQTT command is built by a function in ``bambu/commands.py``; Home
Assistant's modules (``custom_components/bambu_cloud/*.py``) only call those
builders. This test reads the glue's source and fails on what building a
command by hand looks like: a ``"command"`` key, a command class object such
as ``{"print": {...}}``, or a G-code line (``M104 S...``, ``G28``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "custom_components" / "bambu_cloud"
GLUE = sorted(PACKAGE.glob("*.py"))

# The classes of MQTT commands (PROTOCOL.md 2.3).
COMMAND_CLASSES = frozenset(
    {"print", "system", "pushing", "info", "camera", "xcam", "upgrade", "security"}
)
# A line of G-code: G or M and a number, then a parameter or the end.
GCODE = re.compile(r"(?m)^\s*[GM]\d{1,4}(?:\s|$)")


def _key(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _literal_text(node: ast.AST) -> str | None:
    """A string literal, or the constant text of an f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value
            for part in node.values
            if isinstance(part, ast.Constant) and isinstance(part.value, str)
        )
    return None


def protocol_in(source: str) -> Iterator[str]:
    """What in this source builds a command by hand, as ``line: reason``."""
    tree = ast.parse(source)
    # The constant parts of an f-string are checked with the f-string.
    parts = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    for node in ast.walk(tree):
        if id(node) in parts:
            continue
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                name = _key(key)
                if name == "command":
                    yield f"{node.lineno}: a 'command' key"
                elif name in COMMAND_CLASSES and isinstance(value, ast.Dict):
                    yield f"{node.lineno}: a {name!r} command object"
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "command":
                    yield f"{node.lineno}: a 'command' field"
        if isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.Constant) and isinstance(node.value, str)
        ):
            text = _literal_text(node)
            if text is not None and GCODE.search(text):
                yield f"{node.lineno}: G-code {text.strip()[:20]!r}"


def test_glue_modules_found() -> None:
    """The test reads the glue (not an empty list)."""
    names = {path.name for path in GLUE}
    assert {"number.py", "select.py", "sensor.py", "button.py"} <= names


@pytest.mark.parametrize("path", GLUE, ids=lambda path: path.name)
def test_glue_builds_no_command(path: Path) -> None:
    """Commands and G-code come from bambu/commands.py builders only."""
    found = list(protocol_in(path.read_text(encoding="utf-8")))
    assert not found, f"{path.name} builds commands itself: {found}"


@pytest.mark.parametrize(
    "source",
    [
        'COMMAND = {"command": "pause", "param": ""}',
        'COMMAND = {"print": {"sequence_id": "0"}}',
        'COMMAND = {"system": {}}',
        'LINE = "M104 S220\\n"',
        'LINE = "G28"',
        'LINE = f"M106 P1 S{pwm}"',
        'LINE = "G91\\nM10 P1"',
        "COMMAND = dict(command='stop')",
    ],
)
def test_checker_finds_hand_built_commands(source: str) -> None:
    """The checker itself catches each form of a hand-built command."""
    assert list(protocol_in(source))


@pytest.mark.parametrize(
    "source",
    [
        'KEY = "print_speed"',
        'MODEL = "P1S"',
        'STAGE = "m400_pause"',
        'TEXT = "Mode 2 of 3"',
        'DATA = {"print": "idle"}',
        "await self.async_send(set_bed_target(60))",
    ],
)
def test_checker_passes_ordinary_code(source: str) -> None:
    """Names, model ids and builder calls are not commands."""
    assert not list(protocol_in(source))
