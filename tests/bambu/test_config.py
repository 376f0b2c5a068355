"""Tests for the library configuration (custom_components/.../bambu/config.py)."""

from __future__ import annotations

import dataclasses

import pytest

from custom_components.bambu_cloud.bambu.config import (
    LAN_PORT,
    BambuConfig,
    Ports,
    Timeouts,
    Watchdog,
)
from custom_components.bambu_cloud.bambu.const import REGIONS, Region
from custom_components.bambu_cloud.bambu.mqtt import RetryPolicy
from custom_components.bambu_cloud.bambu.tls import BBL_CA_SHA256


def test_defaults_are_bambu_labs_values() -> None:
    """Only the endpoints must be given; everything else is what real
    printers and Bambu Lab's services need (unchanged for users)."""
    config = BambuConfig(endpoints=REGIONS[Region.GLOBAL])
    assert config.pins is BBL_CA_SHA256
    assert LAN_PORT == 8883
    assert config.ports == Ports(mqtt=8883, rtsps=322, jpeg=6000)
    assert config.timeouts == Timeouts(
        command_ack=10.0, mqtt_connect=15.0, probe=10.0, request=30.0
    )
    assert config.retry == RetryPolicy(minimum=1.0, maximum=60.0, stable_after=60.0)
    assert config.probe_retry == RetryPolicy(minimum=60.0, maximum=3600.0)
    assert config.watchdog == Watchdog(
        interval=10.0, silence=60.0, pushall_spacing=300.0
    )


def test_configuration_is_frozen_and_keyword_only() -> None:
    """A configuration is a value: changed by ``replace``, never in place."""
    config = BambuConfig(endpoints=REGIONS[Region.CHINA])
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pins = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError):
        BambuConfig(REGIONS[Region.CHINA])  # type: ignore[misc]
    with pytest.raises(TypeError):
        BambuConfig()  # type: ignore[call-arg]
    changed = dataclasses.replace(config, ports=Ports(jpeg=16000))
    assert changed.ports.jpeg == 16000
    assert config.ports.jpeg == 6000
    assert hash(changed) != hash(config)
