"""The virtual farm's HMS texts: a printer with an active error and its text."""

from __future__ import annotations

import aiohttp
import pytest

from custom_components.bambu_cloud.bambu.hms_text import fetch_texts, hms_ecode
from custom_components.bambu_cloud.bambu.state import HmsEntry
from tools.demo_launcher import farm_config
from tools.virtual_farm import VirtualFarm
from tools.virtual_farm.hms import HMS_HEATBED, made_up_texts

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(20)]


async def test_farm_shows_an_hms_error_with_text() -> None:
    """The first P1S raises an HMS message the farm's text service describes."""
    async with VirtualFarm(printers=2, cameras=False, lan=False) as farm:
        p1s = next(p for p in farm.printers if p.model == "P1S")
        assert [
            hms_ecode(
                HmsEntry(attr=e["attr"], code=e["code"], hms_code="", severity=None)
            )
            for e in p1s.printer.state["hms"]
        ] == [HMS_HEATBED]
        config = farm_config(farm.describe())
        assert config.endpoints.hms_url == farm.api_url
        assert farm.pki is not None
        connector = aiohttp.TCPConnector(ssl=farm.pki.cloud_client_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            texts = await fetch_texts(session, config, p1s.serial[:3], "en")
    assert texts.hms[HMS_HEATBED] == made_up_texts()["en"]["device_hms"][HMS_HEATBED]
