"""A fake Bambu Lab cloud: a real aiohttp server speaking the documented JSON.

Tests change its state (accounts, printers, tasks) and queue failures; the
integration talks to it over HTTP on 127.0.0.1, exactly as it talks to the
real cloud: library tests build the library with ``library_config_for``,
Home Assistant level tests swap the integration's one configuration value
(``library.LIBRARY_CONFIGS``) with ``configured_library``.

The cloud itself lives in ``tools.virtual_farm.cloud`` (the virtual farm
serves the same application over HTTPS); this module re-exports it and adds
what only tests need: the cloud's data from the JSON fixture files
(``tests/fixtures/bind.json``, ``profile.json``), the configuration swap and a
plain-HTTP test server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.bambu_cloud.bambu.config import BambuConfig
from custom_components.bambu_cloud.bambu.const import Region, RegionEndpoints
from custom_components.bambu_cloud.library import LIBRARY_CONFIGS
from tests.common import load_json_object_fixture
from tools.virtual_farm.cloud import (
    ACCOUNT,
    CODE,
    OTHER_TOKEN,
    OTHER_UID,
    PASSWORD,
    TFA_ACCOUNT,
    TFA_CODE,
    TOKEN,
    UID,
    Failure,
    FakeCloud,
    bind_entry,
)

__all__ = [
    "A1MINI",
    "ACCOUNT",
    "CODE",
    "H2D",
    "H2D_SN",
    "OTHER_TOKEN",
    "OTHER_UID",
    "P1S",
    "P1S_SN",
    "P2S",
    "P2S_SN",
    "PASSWORD",
    "TFA_ACCOUNT",
    "TFA_CODE",
    "TOKEN",
    "UID",
    "X1C",
    "X1C_SN",
    "Failure",
    "FakeCloud",
    "MqttEndpoint",
    "bind_entry",
    "cloud_server",
    "configured_library",
    "fake_cloud",
    "library_config_for",
    "running_cloud",
]

# The printers the cloud knows (bind.json): the test account has the X1C and
# the P1S bound; tests bind the offline A1 mini or the H2D where they need it.
X1C, P1S, A1MINI, H2D = load_json_object_fixture("bind.json")["devices"]
# A P2S (air duct with the secondary aux fan) for the tests of controls.
P2S = bind_entry("22E00A4B1700005", "Lab P2S", "P2S", "N7")
# Their serials, the device ids the entities and options are keyed by.
X1C_SN = X1C["dev_id"]
P1S_SN = P1S["dev_id"]
H2D_SN = H2D["dev_id"]
P2S_SN = P2S["dev_id"]


@dataclass(frozen=True)
class MqttEndpoint:
    """Where the cloud broker of the tests listens, and the CA it uses."""

    port: int = 1  # nothing listens there: connections are refused at once
    ca_pem: str | None = None


def fake_cloud() -> FakeCloud:
    """A fake cloud with the test account's data from the fixture files.

    The bind list holds the X1C and the P1S of ``bind.json``; the profile
    answers with the account, nickname and models of ``profile.json`` (the
    fake derives uid, name and avatar itself; the cloud tests check that they
    match the file).
    """
    profile = load_json_object_fixture("profile.json")
    return FakeCloud(
        devices=[X1C, P1S],
        account=profile["account"],
        nickname=profile["nickname"],
        product_models=profile["productModels"],
    )


def library_config_for(
    base_url: str,
    mqtt: MqttEndpoint | None = None,
    hms_url: str | None = None,
    **changes: Any,
) -> BambuConfig:
    """The library's configuration for test servers on 127.0.0.1.

    ``hms_url``: the fake HMS text service (None: no texts). ``changes``
    sets other fields (``pins``, ``ports``, ...).
    """
    mqtt = mqtt or MqttEndpoint()
    endpoints = RegionEndpoints(
        api_url=base_url,
        web_url=base_url,
        mqtt_host="127.0.0.1",
        mqtt_port=mqtt.port,
        mqtt_ca_pem=mqtt.ca_pem,
        hms_url=hms_url,
    )
    return BambuConfig(endpoints=endpoints, **changes)


@contextmanager
def configured_library(config: BambuConfig) -> Iterator[None]:
    """Give every region the configuration ``config`` while the block runs.

    Swaps the integration's one documented configuration value, as the demo
    launcher does before Home Assistant starts; nothing else is patched.
    """
    with patch.dict(LIBRARY_CONFIGS, dict.fromkeys(Region, config)):
        yield


@asynccontextmanager
async def cloud_server(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on 127.0.0.1; yields its base URL."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@asynccontextmanager
async def running_cloud(
    fake: FakeCloud | None = None, mqtt: MqttEndpoint | None = None
) -> AsyncIterator[FakeCloud]:
    """Serve a fake cloud on 127.0.0.1 and configure the integration for it."""
    fake = fake or fake_cloud()
    async with (
        cloud_server(fake.app()) as base_url,
        cloud_server(fake.hms.app()) as hms_url,
    ):
        with configured_library(library_config_for(base_url, mqtt, hms_url)):
            yield fake
