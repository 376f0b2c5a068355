"""Camera entities over real sockets: cloud broker, LAN broker, TLS camera.

The P1S (JPEG camera) has a LAN host: its own TLS MQTT broker and a port-6000
style camera server share a Bambu-shaped test PKI (CA without key usage, leaf
CN = serial, no SAN) pinned by monkeypatching ``tls.BBL_CA_SHA256``. The X1C
(RTSPS camera) reports over the cloud broker; its LAN host is a closed port,
which is all ``stream_source`` needs.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from homeassistant.components.camera import (
    CameraEntityFeature,
    async_get_image,
    async_get_stream_source,
)
from homeassistant.components.camera.const import DATA_COMPONENT
from homeassistant.const import ATTR_SUPPORTED_FEATURES, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.bambu_cloud.bambu import camera as bambu_camera
from custom_components.bambu_cloud.bambu import tls
from custom_components.bambu_cloud.const import CONF_HOST, CONF_PRINTERS, DOMAIN
from tools.virtual_printer.broker import MqttBroker
from tools.virtual_printer.printer import VirtualPrinter

from .bambu.camera_server import CameraServer, expected_auth
from .bambu.certs import TestPKI, server_context
from .cloud_server import P1S, X1C, FakeCloud, MqttEndpoint, bind_entry
from .helpers import state_of, wait_for

P1S_SERIAL = P1S["dev_id"]
X1C_SERIAL = X1C["dev_id"]
CODE = P1S["dev_access_code"]
X1C_URL = f"rtsps://bblp:{X1C['dev_access_code']}@127.0.0.1:322/streaming/live/1"
LIVEVIEW_ISSUE = f"camera_liveview_disabled_{X1C_SERIAL}"


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """This module's tests run with the cloud broker up."""
    return broker_endpoint


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class P1SLan:
    """The P1S's LAN side: its MQTT broker and its camera."""

    broker: MqttBroker
    camera: CameraServer


@pytest.fixture
async def p1s_lan(
    socket_enabled: None, pki: TestPKI, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[P1SLan]:
    """LAN broker + camera of the P1S, one pinned Bambu-shaped CA."""
    printer_ca = pki.root("Test Printer CA")
    leaf = pki.server(printer_ca, P1S_SERIAL)
    monkeypatch.setattr(tls, "BBL_CA_SHA256", frozenset({printer_ca.sha256}))
    tls.clear_context_cache()
    broker = MqttBroker(server_context(leaf), users={"bblp": CODE})
    cam = CameraServer(server_context(leaf), CODE)
    await broker.start()
    await cam.start()
    monkeypatch.setattr(bambu_camera, "JPEG_PORT", cam.port)
    printer = VirtualPrinter(broker, P1S_SERIAL, "P1S")
    printer.attach()
    yield P1SLan(broker, cam)
    await printer.stop()
    await cam.stop()
    await broker.stop()


@pytest.fixture
async def lan_entry(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    p1s_lan: P1SLan,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> MockConfigEntry:
    """The integration with LAN hosts for both printers, both reporting."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            CONF_PRINTERS: {
                P1S_SERIAL: {CONF_HOST: f"127.0.0.1:{p1s_lan.broker.port}"},
                X1C_SERIAL: {CONF_HOST: f"127.0.0.1:{_closed_port()}"},
            }
        },
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    for serial in (P1S_SERIAL, X1C_SERIAL):
        entity_id = _camera_id(hass, serial)
        await wait_for(
            hass,
            lambda e=entity_id: state_of(hass, e) not in (None, STATE_UNAVAILABLE),
        )
    return mock_config_entry


def _camera_id(hass: HomeAssistant, serial: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "camera", DOMAIN, f"{serial}_camera"
    )
    assert entity_id is not None
    return entity_id


async def test_jpeg_camera_image(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    p1s_lan: P1SLan,
    cloud: FakeCloud,
) -> None:
    """The P1S camera's image is a frame of its TLS JPEG stream."""
    entity_id = _camera_id(hass, P1S_SERIAL)
    image = await async_get_image(hass, entity_id)
    assert image.content_type == "image/jpeg"
    assert bambu_camera.is_jpeg(image.content)
    cam = p1s_lan.camera
    assert cam.sni_seen == [P1S_SERIAL]
    assert cam.auth_packets == [expected_auth(CODE)]
    # Idle: the stream disconnects after the frame; a minute of cached frames.
    await wait_for(hass, lambda: cam.active == 0)
    again = await async_get_image(hass, entity_id)
    assert again.content == image.content
    assert cam.connections == 1
    state = hass.states.get(entity_id)
    assert state is not None
    assert not state.attributes.get(ATTR_SUPPORTED_FEATURES)
    assert state.attributes["brand"] == "Bambu Lab"
    assert state.attributes["model_name"] == "P1S"

    # A new access code in the bind list: a new stream client, fetching anew.
    p1s_lan.broker.users = {"bblp": "87654321"}
    cam.access_code = "87654321"
    cloud.devices = [X1C, {**P1S, "dev_access_code": "87654321"}]
    await lan_entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    fresh = await async_get_image(hass, entity_id)
    assert bambu_camera.is_jpeg(fresh.content)
    assert cam.auth_packets[-1] == expected_auth("87654321")
    assert cam.connections == 2


async def test_jpeg_camera_mjpeg_stream(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    p1s_lan: P1SLan,
    hass_client: ClientSessionGenerator,
) -> None:
    """The MJPEG proxy relays frames while a client watches, then lets go."""
    entity_id = _camera_id(hass, P1S_SERIAL)
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy_stream/{entity_id}")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
    assert "boundary=frame" in response.headers["Content-Type"]
    body = b""
    async with asyncio.timeout(10):
        while body.count(b"--frame\r\n") < 3:
            body += await response.content.readany()
    assert b"Content-Type: image/jpeg\r\n" in body
    assert b"\xff\xd8" in body
    assert p1s_lan.camera.active == 1
    response.close()
    await client.close()
    await wait_for(hass, lambda: p1s_lan.camera.active == 0)


async def test_rtsps_camera_and_liveview_issue(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    printers: dict[str, VirtualPrinter],
    issue_registry: ir.IssueRegistry,
) -> None:
    """X1C: stream source from the LAN host; "disable" raises a repair issue."""
    entity_id = _camera_id(hass, X1C_SERIAL)
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes[ATTR_SUPPORTED_FEATURES] == CameraEntityFeature.STREAM
    assert await async_get_stream_source(hass, entity_id) == X1C_URL
    assert issue_registry.async_get_issue(DOMAIN, LIVEVIEW_ISSUE) is None

    printers["x1c"].update({"ipcam": {"rtsp_url": "disable"}})
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, LIVEVIEW_ISSUE) is not None
    )
    issue = issue_registry.async_get_issue(DOMAIN, LIVEVIEW_ISSUE)
    assert issue is not None
    assert issue.translation_key == "camera_liveview_disabled"
    assert issue.translation_placeholders == {"printer": X1C["name"]}
    assert issue.severity is ir.IssueSeverity.WARNING
    assert await async_get_stream_source(hass, entity_id) is None

    printers["x1c"].update(
        {"ipcam": {"rtsp_url": "rtsps://192.0.2.1/streaming/live/1"}}
    )
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, LIVEVIEW_ISSUE) is None
    )
    # The configured host wins over the address the printer reports.
    assert await async_get_stream_source(hass, entity_id) == X1C_URL


async def test_unload_stops_camera_and_drops_issue(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    printers: dict[str, VirtualPrinter],
    p1s_lan: P1SLan,
    hass_client: ClientSessionGenerator,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Unloading ends a running MJPEG relay and removes the live-view issue."""
    printers["x1c"].update({"ipcam": {"rtsp_url": "disable"}})
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, LIVEVIEW_ISSUE) is not None
    )
    client = await hass_client()
    response = await client.get(
        f"/api/camera_proxy_stream/{_camera_id(hass, P1S_SERIAL)}"
    )
    async with asyncio.timeout(10):
        await response.content.readany()
    assert p1s_lan.camera.active == 1

    assert await hass.config_entries.async_unload(lan_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: p1s_lan.camera.active == 0)
    assert issue_registry.async_get_issue(DOMAIN, LIVEVIEW_ISSUE) is None
    response.close()
    await client.close()


async def test_no_camera_without_lan_host(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Cloud-only printers have no camera: there is no cloud stream."""
    entries = er.async_entries_for_config_entry(
        entity_registry, init_integration.entry_id
    )
    assert [e.entity_id for e in entries if e.domain == "camera"] == []


async def test_cameras_without_access_code_or_known_camera(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    hass_client: ClientSessionGenerator,
) -> None:
    """No access code: no URL, no image; an unknown model gets no camera."""
    mystery = bind_entry("ZZZ00A000000001", "Mystery", "Mystery", "ZZ9")
    cloud.devices = [
        {**X1C, "dev_access_code": ""},
        {**P1S, "dev_access_code": ""},
        mystery,
    ]
    host = {CONF_HOST: f"127.0.0.1:{_closed_port()}"}
    serials = (X1C_SERIAL, P1S_SERIAL, mystery["dev_id"])
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={CONF_PRINTERS: dict.fromkeys(serials, host)},
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    x1c = _camera_id(hass, X1C_SERIAL)
    assert await async_get_stream_source(hass, x1c) is None
    component = hass.data[DATA_COMPONENT]
    entity = component.get_entity(x1c)
    assert entity is not None
    assert entity.use_stream_for_stills

    p1s = _camera_id(hass, P1S_SERIAL)
    with pytest.raises(HomeAssistantError):
        await async_get_image(hass, p1s, timeout=2)
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy_stream/{p1s}")
    assert response.status == 502
    await client.close()

    registry = er.async_get(hass)
    assert (
        registry.async_get_entity_id("camera", DOMAIN, "ZZZ00A000000001_camera") is None
    )
