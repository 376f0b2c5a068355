"""Fixture stack: mock_config_entry -> mock_bambu_cloud -> init_integration.

``mock_config_entry`` is the test account's entry, ``mock_bambu_cloud`` the
fake cloud (a real aiohttp server on 127.0.0.1, its data from
``tests/fixtures``), ``init_integration`` the entry set up against it with the
``platforms`` of the test. With ``printers`` (virtual printers on the
mosquitto broker, for modules whose ``mqtt_endpoint`` is the broker's)
``live`` waits until every bound printer reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from homeassistant.components import camera as camera_component
from homeassistant.components import image as image_component
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.bambu_cloud  # noqa: F401 - must load before HA's loader
from custom_components.bambu_cloud.bambu.config import BambuConfig
from custom_components.bambu_cloud.bambu.const import Region
from custom_components.bambu_cloud.const import (
    CONF_ACCESS_TOKEN,
    CONF_REGION,
    DOMAIN,
    PLATFORMS,
)
from custom_components.bambu_cloud.library import LIBRARY_CONFIGS
from tools.test_pki import IssuedCert, TestPKI
from tools.virtual_printer.mosquitto import MosquittoNotFoundError, MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .cloud_server import (
    H2D,
    P1S,
    P2S,
    TOKEN,
    UID,
    X1C,
    FakeCloud,
    MqttEndpoint,
    running_cloud,
)
from .helpers import wait_for_printers

# The test CDN's fixtures (covers, plain_covers, cdn_ca, trust_cdn).
pytest_plugins = ["tests.cover_cdn"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test needing the mosquitto broker skips (with why) where it is missing.

    scripts/setup installs mosquitto when run as root; without it the tests
    of everything else still run.
    """
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(MosquittoNotFoundError):
        report.outcome = "skipped"
        report.longrepr = (
            str(item.path),
            item.location[1] or 0,
            str(call.excinfo.value),
        )
    return report


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from custom_components."""


@pytest.fixture
def entry_data() -> dict[str, Any]:
    """The data of the test account's config entry."""
    return {CONF_REGION: "global", CONF_ACCESS_TOKEN: TOKEN}


@pytest.fixture
def mock_config_entry(entry_data: dict[str, Any]) -> MockConfigEntry:
    """A config entry of the test account."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Maker",
        unique_id=UID,
        data=entry_data,
        entry_id="01JBAMBUCLOUDTESTENTRY0001",
    )


@pytest.fixture
def mqtt_endpoint() -> MqttEndpoint:
    """The cloud MQTT broker; by default none (modules with a broker override)."""
    return MqttEndpoint()


@pytest.fixture
async def mock_bambu_cloud(
    socket_enabled: None, mqtt_endpoint: MqttEndpoint
) -> AsyncIterator[FakeCloud]:
    """The fake Bambu Lab cloud, served on 127.0.0.1 (real sockets).

    Not a mocked client: the integration talks HTTP to it exactly as to the
    real cloud. Tests change its state (``devices``, ``tasks``, ``versions``)
    and queue failures (``fail``).
    """
    async with running_cloud(mqtt=mqtt_endpoint) as fake:
        yield fake


@pytest.fixture
def cloud(mock_bambu_cloud: FakeCloud) -> FakeCloud:
    """The short name of ``mock_bambu_cloud`` most modules use."""
    return mock_bambu_cloud


@pytest.fixture
def configure_library(mock_bambu_cloud: FakeCloud) -> Callable[..., BambuConfig]:
    """Change fields (pins, ports, ...) of the swapped library configuration.

    ``mock_bambu_cloud`` gives every region a configuration for the test
    servers (``library.LIBRARY_CONFIGS``, the one value the demo swaps too);
    call this before the entry is set up. The swap ends with the test.
    """

    def configure(**changes: Any) -> BambuConfig:
        config = dataclasses.replace(LIBRARY_CONFIGS[Region.GLOBAL], **changes)
        LIBRARY_CONFIGS.update(dict.fromkeys(Region, config))
        return config

    return configure


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms ``init_integration`` sets up: all, unless a module narrows it."""
    return PLATFORMS


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_bambu_cloud: FakeCloud,
    platforms: list[Platform],
) -> AsyncIterator[MockConfigEntry]:
    """The integration set up against the fake cloud.

    Only ``platforms`` are set up; the restriction holds for the whole test,
    so an unload in the test unloads the same platforms.
    """
    mock_config_entry.add_to_hass(hass)
    with patch("custom_components.bambu_cloud.PLATFORMS", platforms):
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        yield mock_config_entry


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    """A CA shaped like Bambu's (no key usage), made for this test."""
    return TestPKI(tmp_path / "pki")


@pytest.fixture
def ca(pki: TestPKI) -> IssuedCert:
    """The cloud broker's CA: an ordinary, publicly-shaped CA."""
    return pki.root("Test Cloud CA", key_usage=True)


@pytest.fixture
async def broker(
    socket_enabled: None, pki: TestPKI, ca: IssuedCert
) -> AsyncIterator[MqttBroker]:
    """The cloud broker (mosquitto): TLS for 127.0.0.1, token login."""
    leaf = pki.server(ca, "mqtt.cloud.test", san=["127.0.0.1"])
    broker = MqttBroker(leaf, users={f"u_{UID}": TOKEN})
    try:
        await broker.start()
        yield broker
    finally:
        await broker.stop()


@pytest.fixture
def broker_endpoint(broker: MqttBroker, ca: IssuedCert) -> MqttEndpoint:
    """Where the cloud broker listens; modules opt in by overriding mqtt_endpoint."""
    return MqttEndpoint(port=broker.port, ca_pem=ca.pem)


@pytest.fixture
async def printers(broker: MqttBroker) -> AsyncIterator[dict[str, VirtualPrinter]]:
    """Virtual X1C (full reports) and P1S (deltas) on the cloud broker."""
    fleet = {
        "x1c": VirtualPrinter(broker, X1C["dev_id"], "X1C"),
        "p1s": VirtualPrinter(broker, P1S["dev_id"], "P1S"),
    }
    try:
        for printer in fleet.values():
            await printer.start()
        yield fleet
    finally:
        for printer in fleet.values():
            await printer.stop()


@contextlib.asynccontextmanager
async def _bound_printer(
    cloud: FakeCloud, broker: MqttBroker, device: dict[str, Any], model: str
) -> AsyncIterator[VirtualPrinter]:
    """A virtual printer of ``model``, added to the account's bind list."""
    cloud.devices = [*cloud.devices, device]
    printer = VirtualPrinter(broker, device["dev_id"], model)
    try:
        await printer.start()
        yield printer
    finally:
        await printer.stop()


@pytest.fixture
async def h2d(
    mock_bambu_cloud: FakeCloud, broker: MqttBroker
) -> AsyncIterator[VirtualPrinter]:
    """A virtual H2D (two nozzles, second lamp, heated chamber) bound as well.

    Request it before ``init_integration`` (or ``live``): the bind list must
    show it when the entry is set up.
    """
    async with _bound_printer(mock_bambu_cloud, broker, H2D, "H2D") as printer:
        yield printer


@pytest.fixture
async def p2s(
    mock_bambu_cloud: FakeCloud, broker: MqttBroker
) -> AsyncIterator[VirtualPrinter]:
    """A virtual P2S (air duct, secondary aux fan, every detector) bound as well.

    Request it before ``init_integration`` (or ``live``), like ``h2d``.
    """
    async with _bound_printer(mock_bambu_cloud, broker, P2S, "P2S") as printer:
        yield printer


@pytest.fixture
async def live(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    init_integration: MockConfigEntry,
) -> dict[str, VirtualPrinter]:
    """The integration with every bound printer reporting over the cloud broker."""
    await wait_for_printers(hass, init_integration)
    return printers


@pytest.fixture
def mock_access_tokens() -> Iterator[None]:
    """Fixed access tokens for cameras and images, so snapshots are stable.

    Home Assistant draws them from ``SystemRandom``; only those two
    generators are replaced, nothing else random is touched.
    """
    token = 0x1CAAB5C3B3
    with (
        patch.object(camera_component._RND, "getrandbits", return_value=token),
        patch.object(image_component._RND, "getrandbits", return_value=token),
    ):
        yield


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, including those disabled by default."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield
