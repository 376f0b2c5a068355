"""The scripts run without Home Assistant: no hass fixture here."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the root fixture, which would start a Home Assistant per test."""
