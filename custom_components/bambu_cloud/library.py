"""The protocol library's configuration, built from the region table in one place.

``LIBRARY_CONFIGS`` is the one value that decides where the integration
connects and which CA pins it trusts: every part of the integration (entry
setup, the config flow, printer trust, cameras) gets its configuration from
``library_config``. Production code never changes it and offers no redirect
option; the demo launcher swaps it before Home Assistant starts, and Home
Assistant level tests swap it through a fixture, so that the integration talks
to servers on 127.0.0.1 exactly as it talks to Bambu Lab.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .bambu.config import BambuConfig
from .bambu.const import REGIONS, Region
from .const import CONF_REGION

LIBRARY_CONFIGS: dict[Region, BambuConfig] = {
    region: BambuConfig(endpoints=endpoints) for region, endpoints in REGIONS.items()
}


def library_config(region: Region | str) -> BambuConfig:
    """The library's configuration for an account region."""
    return LIBRARY_CONFIGS[Region(region)]


def entry_library_config(data: Mapping[str, Any]) -> BambuConfig:
    """The configuration of a config entry (or of a flow's entry data).

    A printer added without an account has no region: it uses the pins,
    ports and timeouts every region shares, and no endpoint at all.
    """
    return library_config(data.get(CONF_REGION, Region.GLOBAL))
