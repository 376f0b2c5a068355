"""The configuration.yaml written for the development, demo and e2e runs."""

from __future__ import annotations

import json
from pathlib import Path

import homeassistant

from tools import hass_config

MANIFEST = (
    Path(homeassistant.__file__).parent
    / "components"
    / "default_config"
    / "manifest.json"
)


def _domains(text: str) -> set[str]:
    """Top-level keys of the YAML text."""
    return {
        line.removesuffix(":")
        for line in text.splitlines()
        if line and not line.startswith((" ", "#")) and line.endswith(":")
    }


def test_default_config_without_go2rtc() -> None:
    """Everything default_config sets up, except go2rtc (no binary here)."""
    wanted = set(json.loads(MANIFEST.read_text())["dependencies"])
    assert "go2rtc" in wanted
    domains = _domains(hass_config.configuration())
    assert domains == (wanted - {"go2rtc"}) | {"logger"}


def test_offline_leaves_out_what_leaves_the_machine() -> None:
    """The demo and e2e configuration dial nothing beyond 127.0.0.1."""
    wanted = set(json.loads(MANIFEST.read_text())["dependencies"])
    text = hass_config.configuration(port=8124, log_level="warning", offline=True)
    domains = _domains(text)
    assert domains == (
        wanted - {"go2rtc", "homeassistant_alerts", "dhcp", "ssdp", "zeroconf"}
    ) | {"http", "logger"}
    assert "  server_host: 127.0.0.1\n  server_port: 8124\n" in text
    assert "  default: warning\n" in text


def test_written_when_missing_or_ours(tmp_path: Path) -> None:
    """Ours (marker or the old default_config text) is rewritten, yours kept."""
    path = tmp_path / "configuration.yaml"
    assert hass_config.write_configuration(tmp_path)
    assert path.read_text().startswith(hass_config.MARKER)
    assert "go2rtc:" not in path.read_text()

    path.write_text(hass_config.LEGACY)
    assert hass_config.write_configuration(tmp_path, offline=True)
    assert "zeroconf:" not in path.read_text()

    path.write_text("default_config:\nfrontend:\n")
    assert not hass_config.write_configuration(tmp_path)
    assert path.read_text() == "default_config:\nfrontend:\n"


def test_command_line(tmp_path: Path) -> None:
    """``python -m tools.hass_config DIR`` writes, then keeps a user's file."""
    assert hass_config.main([str(tmp_path / "config"), "--offline"]) == 0
    written = (tmp_path / "config" / "configuration.yaml").read_text()
    assert "dhcp:" not in written
    (tmp_path / "config" / "configuration.yaml").write_text("mine:\n")
    assert hass_config.main([str(tmp_path / "config")]) == 0
    assert (tmp_path / "config" / "configuration.yaml").read_text() == "mine:\n"
