"""A fake Bambu Lab cloud: a real aiohttp server speaking the documented JSON.

Tests change its state (accounts, printers, tasks) and queue failures; the
integration talks to it over HTTP on 127.0.0.1 through the patched region
table, exactly as it talks to the real cloud.

The cloud itself lives in ``tools.virtual_farm.cloud`` (the virtual farm
serves the same application over HTTPS); this module re-exports it and adds
what only tests need: the region-table patch and a plain-HTTP test server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from unittest.mock import patch

from aiohttp.test_utils import TestServer

from custom_components.bambu_cloud.bambu import const as bambu_const
from custom_components.bambu_cloud.bambu.const import RegionEndpoints
from tools.virtual_farm.cloud import (
    A1MINI,
    ACCOUNT,
    CODE,
    OTHER_TOKEN,
    OTHER_UID,
    P1S,
    PASSWORD,
    TOKEN,
    UID,
    X1C,
    Failure,
    FakeCloud,
    bind_entry,
)

__all__ = [
    "A1MINI",
    "ACCOUNT",
    "CODE",
    "OTHER_TOKEN",
    "OTHER_UID",
    "P1S",
    "PASSWORD",
    "TOKEN",
    "UID",
    "X1C",
    "Failure",
    "FakeCloud",
    "MqttEndpoint",
    "bind_entry",
    "patched_regions",
    "running_cloud",
]


@dataclass(frozen=True)
class MqttEndpoint:
    """Where the cloud broker of the tests listens, and the CA it uses."""

    port: int = 1  # nothing listens there: connections are refused at once
    ca_pem: str | None = None


@contextmanager
def patched_regions(base_url: str, mqtt: MqttEndpoint | None = None) -> Iterator[None]:
    """Point every region of the region table at the test servers."""
    mqtt = mqtt or MqttEndpoint()
    endpoints = RegionEndpoints(
        api_url=base_url,
        web_url=base_url,
        mqtt_host="127.0.0.1",
        mqtt_port=mqtt.port,
        mqtt_ca_pem=mqtt.ca_pem,
    )
    with patch.dict(bambu_const.REGIONS, dict.fromkeys(bambu_const.Region, endpoints)):
        yield


@asynccontextmanager
async def running_cloud(
    fake: FakeCloud | None = None, mqtt: MqttEndpoint | None = None
) -> AsyncIterator[FakeCloud]:
    """Serve a fake cloud on 127.0.0.1 and patch the region table to it."""
    fake = fake or FakeCloud()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        with patched_regions(str(server.make_url("")).rstrip("/"), mqtt):
            yield fake
    finally:
        await server.close()
