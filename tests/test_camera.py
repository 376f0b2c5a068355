"""Camera entities over real sockets: cloud broker, LAN broker, TLS camera.

The P1S (JPEG camera) has a LAN host: its own TLS MQTT broker and a port-6000
style camera server share a Bambu-shaped test PKI (CA without key usage, leaf
CN = serial, no SAN) whose CA is the integration's only pin (``configure_library``,
which also points the camera ports at the test servers). In
``lan_entry`` the X1C (RTSPS camera) reports over the cloud broker and its LAN
host is a closed port. The relay tests give the X1C a LAN broker and a TLS
RTSP camera (tests/bambu/rtsp_server.py) on the port the relay dials, with a
pinned certificate or an impostor's.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import pytest
from homeassistant.components.camera import (
    CameraEntityFeature,
    async_get_image,
    async_get_stream_source,
)
from homeassistant.components.camera.const import DATA_COMPONENT
from homeassistant.const import ATTR_SUPPORTED_FEATURES, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.bambu_cloud.bambu import camera as bambu_camera
from custom_components.bambu_cloud.bambu.config import BambuConfig, Ports
from custom_components.bambu_cloud.const import CONF_HOST, CONF_PRINTERS, DOMAIN
from tools.test_pki import IssuedCert, TestPKI, server_context
from tools.virtual_printer.mosquitto import MqttBroker, free_port
from tools.virtual_printer.printer import VirtualPrinter

from .bambu.camera_server import CameraServer, expected_auth
from .bambu.rtsp_server import PATH, RtspClient, RtspServer, digest, opaque_track
from .cloud_server import P1S, P1S_SN, X1C, X1C_SN, FakeCloud, MqttEndpoint, bind_entry
from .helpers import state_of, wait_for

CODE = P1S["dev_access_code"]
X1C_CODE = X1C["dev_access_code"]
# Plain RTSP to the loopback relay: no rtsps://, no printer address or port.
X1C_URL = re.compile(rf"rtsp://bblp:{X1C_CODE}@127\.0\.0\.1:(\d+)/streaming/live/1")
LIVEVIEW_ISSUE = f"camera_liveview_disabled_{X1C_SN}"


@pytest.fixture
def mqtt_endpoint(broker_endpoint: MqttEndpoint) -> MqttEndpoint:
    """This module's tests run with the cloud broker up."""
    return broker_endpoint


@dataclass
class P1SLan:
    """The P1S's LAN side: its MQTT broker and its camera."""

    broker: MqttBroker
    camera: CameraServer


@pytest.fixture
async def p1s_lan(
    socket_enabled: None,
    pki: TestPKI,
    configure_library: Callable[..., BambuConfig],
) -> AsyncIterator[P1SLan]:
    """LAN broker + camera of the P1S, one pinned Bambu-shaped CA."""
    printer_ca = pki.root("Test Printer CA")
    leaf = pki.server(printer_ca, P1S_SN)
    broker = MqttBroker(leaf, users={"bblp": CODE})
    cam = CameraServer(server_context(leaf), CODE)
    printer = VirtualPrinter(broker, P1S_SN, "P1S")
    try:
        await broker.start()
        await cam.start()
        configure_library(
            pins=frozenset({printer_ca.sha256}), ports=Ports(jpeg=cam.port)
        )
        await printer.start()
        yield P1SLan(broker, cam)
    finally:
        await printer.stop()
        await cam.stop()
        await broker.stop()


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the camera platform is set up."""
    return [Platform.CAMERA]


@pytest.fixture
async def lan_entry(
    hass: HomeAssistant,
    printers: dict[str, VirtualPrinter],
    p1s_lan: P1SLan,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    platforms: list[Platform],
) -> AsyncIterator[MockConfigEntry]:
    """The integration with LAN hosts for both printers, both reporting."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            CONF_PRINTERS: {
                P1S_SN: {CONF_HOST: f"127.0.0.1:{p1s_lan.broker.port}"},
                X1C_SN: {CONF_HOST: f"127.0.0.1:{free_port()}"},
            }
        },
    )
    with patch("custom_components.bambu_cloud.PLATFORMS", platforms):
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        for serial in (P1S_SN, X1C_SN):
            entity_id = _camera_id(hass, serial)
            await wait_for(
                hass,
                lambda e=entity_id: state_of(hass, e) not in (None, STATE_UNAVAILABLE),
            )
        yield mock_config_entry


def _camera_id(hass: HomeAssistant, serial: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "camera", DOMAIN, f"{serial}_camera"
    )
    assert entity_id is not None
    return entity_id


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "mock_access_tokens")
async def test_entities(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Cameras of an X1C (RTSPS) and a P1S (JPEG) with LAN hosts match."""
    await snapshot_platform(hass, entity_registry, snapshot, lan_entry.entry_id)


async def test_jpeg_camera_image(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    p1s_lan: P1SLan,
    cloud: FakeCloud,
) -> None:
    """The P1S camera's image is a frame of its TLS JPEG stream."""
    entity_id = _camera_id(hass, P1S_SN)
    image = await async_get_image(hass, entity_id)
    assert image.content_type == "image/jpeg"
    assert bambu_camera.is_jpeg(image.content)
    cam = p1s_lan.camera
    assert cam.sni_seen == [P1S_SN]
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
    await p1s_lan.broker.set_users({"bblp": "87654321"})
    cam.access_code = "87654321"
    cloud.devices = [X1C, {**P1S, "dev_access_code": "87654321"}]
    await lan_entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    fresh = await async_get_image(hass, entity_id)
    assert bambu_camera.is_jpeg(fresh.content)
    assert cam.auth_packets[-1] == expected_auth("87654321")
    assert cam.connections == 2
    # The LAN session reconnects with the new code; let its executor connect
    # finish before the test ends (no worker thread outlives the test).
    link = lan_entry.runtime_data.hub.printers[P1S_SN]
    await wait_for(hass, lambda: link.lan_connected)


async def test_jpeg_camera_mjpeg_stream(
    hass: HomeAssistant,
    lan_entry: MockConfigEntry,
    p1s_lan: P1SLan,
    hass_client: ClientSessionGenerator,
) -> None:
    """The MJPEG proxy relays frames while a client watches, then lets go."""
    entity_id = _camera_id(hass, P1S_SN)
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
    entity_id = _camera_id(hass, X1C_SN)
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes[ATTR_SUPPORTED_FEATURES] == CameraEntityFeature.STREAM
    url = await async_get_stream_source(hass, entity_id)
    assert url is not None
    assert X1C_URL.fullmatch(url)
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
    # The address the printer reports is never used; the relay stays put.
    assert await async_get_stream_source(hass, entity_id) == url


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
    response = await client.get(f"/api/camera_proxy_stream/{_camera_id(hass, P1S_SN)}")
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
    host = {CONF_HOST: f"127.0.0.1:{free_port()}"}
    serials = (X1C_SN, P1S_SN, mystery["dev_id"])
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={CONF_PRINTERS: dict.fromkeys(serials, host)},
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    x1c = _camera_id(hass, X1C_SN)
    assert await async_get_stream_source(hass, x1c) is None
    component = hass.data[DATA_COMPONENT]
    entity = component.get_entity(x1c)
    assert entity is not None
    assert entity.use_stream_for_stills

    p1s = _camera_id(hass, P1S_SN)
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


# ------------------------------------------------ RTSPS through the relay

TLS_ISSUE = f"tls_{X1C_SN}"


@dataclass
class X1CLan:
    """The X1C's LAN side: its MQTT broker and its RTSPS camera."""

    broker: MqttBroker
    camera: RtspServer


@pytest.fixture
def printer_ca(pki: TestPKI) -> IssuedCert:
    """The pinned Bambu-shaped CA of the X1C (pinned by ``x1c_lan``)."""
    return pki.root("Test Printer CA")


@pytest.fixture
def own_leaf(pki: TestPKI, printer_ca: IssuedCert) -> IssuedCert:
    """The X1C's certificate: pinned CA, CN = serial."""
    return pki.server(printer_ca, X1C_SN)


@pytest.fixture
def impostor_leaf(tmp_path: Path) -> IssuedCert:
    """A self-signed certificate with the X1C's serial, pinned nowhere."""
    return TestPKI(tmp_path / "impostor").root(X1C_SN)


def _leaf(
    request: pytest.FixtureRequest, own_leaf: IssuedCert, impostor_leaf: IssuedCert
) -> IssuedCert:
    """The printer's own certificate unless parametrized with "impostor"."""
    return impostor_leaf if getattr(request, "param", "own") == "impostor" else own_leaf


@pytest.fixture
def broker_leaf(
    request: pytest.FixtureRequest, own_leaf: IssuedCert, impostor_leaf: IssuedCert
) -> IssuedCert:
    """The certificate of the X1C's LAN MQTT broker."""
    return _leaf(request, own_leaf, impostor_leaf)


@pytest.fixture
def camera_leaf(
    request: pytest.FixtureRequest, own_leaf: IssuedCert, impostor_leaf: IssuedCert
) -> IssuedCert:
    """The certificate on the X1C's camera port."""
    return _leaf(request, own_leaf, impostor_leaf)


@pytest.fixture
async def x1c_lan(
    printers: dict[str, VirtualPrinter],
    printer_ca: IssuedCert,
    broker_leaf: IssuedCert,
    camera_leaf: IssuedCert,
    configure_library: Callable[..., BambuConfig],
) -> AsyncIterator[X1CLan]:
    """LAN broker + RTSPS camera of the X1C on 127.0.0.1."""
    broker = MqttBroker(broker_leaf, users={"bblp": X1C_CODE})
    camera = RtspServer(server_context(camera_leaf), X1C_CODE, track=opaque_track())
    await broker.start()
    await camera.start()
    configure_library(
        pins=frozenset({printer_ca.sha256}), ports=Ports(rtsps=camera.port)
    )
    await printers["x1c"].add_mirror(broker)
    yield X1CLan(broker, camera)
    await camera.stop()
    await broker.stop()


@pytest.fixture
async def relay_entry(
    hass: HomeAssistant,
    x1c_lan: X1CLan,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
) -> MockConfigEntry:
    """The integration with a LAN host for the X1C."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            CONF_PRINTERS: {X1C_SN: {CONF_HOST: f"127.0.0.1:{x1c_lan.broker.port}"}}
        },
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    entity_id = _camera_id(hass, X1C_SN)
    await wait_for(
        hass, lambda: state_of(hass, entity_id) not in (None, STATE_UNAVAILABLE)
    )
    return mock_config_entry


async def _relay_port(hass: HomeAssistant) -> int:
    """The loopback port of the X1C's stream source, checked for its shape."""
    url = await async_get_stream_source(hass, _camera_id(hass, X1C_SN))
    assert url is not None
    match = X1C_URL.fullmatch(url)
    assert match is not None, url
    return int(match[1])


async def _play(port: int) -> int:
    """Play through the relay with the URL's credentials; RTP packets read."""
    client = await RtspClient.connect(port)
    url = f"rtsp://127.0.0.1:{port}{PATH}"
    try:
        status, headers, _ = await client.request("DESCRIBE", url)
        assert status == 401
        challenge = headers["www-authenticate"]
        auth = {"Authorization": digest("DESCRIBE", url, challenge, X1C_CODE)}
        status, headers, _ = await client.request("DESCRIBE", url, auth)
        assert status == 200
        track = headers["content-base"] + "track1"
        setup = {
            "Authorization": digest("SETUP", track, challenge, X1C_CODE),
            "Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
        }
        assert (await client.request("SETUP", track, setup))[0] == 200
        play = {"Authorization": digest("PLAY", url, challenge, X1C_CODE)}
        assert (await client.request("PLAY", url, play))[0] == 200
        packets = 0
        for _ in range(3):
            channel, packet = await client.interleaved()
            assert channel == 0
            assert packet[0] >> 6 == 2
            packets += 1
        return packets
    finally:
        await client.close()


async def test_rtsps_plays_through_verified_relay(
    hass: HomeAssistant,
    relay_entry: MockConfigEntry,
    x1c_lan: X1CLan,
) -> None:
    """The stream source is a loopback relay; RTSP works through it."""
    port = await _relay_port(hass)
    assert port not in (x1c_lan.camera.port, x1c_lan.broker.port)
    assert await _play(port) == 3
    camera = x1c_lan.camera
    assert camera.sni_seen == [X1C_SN]
    assert [r.method for r in camera.requests if r.authorized] == [
        "DESCRIBE",
        "SETUP",
        "PLAY",
    ]
    # The same relay serves later viewers.
    assert await _relay_port(hass) == port

    assert await hass.config_entries.async_unload(relay_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: camera.active == 0)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_new_lan_host_gets_a_new_relay(
    hass: HomeAssistant,
    relay_entry: MockConfigEntry,
    x1c_lan: X1CLan,
) -> None:
    """A changed host (without a reload) stops the old relay."""
    old = await _relay_port(hass)
    hass.config_entries.async_update_entry(
        relay_entry,
        options={CONF_PRINTERS: {X1C_SN: {CONF_HOST: f"127.0.0.1:{free_port()}"}}},
    )
    await relay_entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    new = await _relay_port(hass)
    assert new != old
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", old)
    assert await _play(new) == 3


@pytest.mark.parametrize("camera_leaf", ["impostor"], indirect=True)
async def test_unverified_camera_port_gets_nothing(
    hass: HomeAssistant,
    relay_entry: MockConfigEntry,
    x1c_lan: X1CLan,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An impostor on the camera port: zero bytes, a repair issue, no stream."""
    impostor = x1c_lan.camera
    port = await _relay_port(hass)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    basic = base64.b64encode(f"bblp:{X1C_CODE}".encode()).decode()
    writer.write(
        f"DESCRIBE rtsp://127.0.0.1:{port}{PATH} RTSP/1.0\r\nCSeq: 1\r\n"
        f"Authorization: Basic {basic}\r\n\r\n".encode()
    )
    async with asyncio.timeout(10):
        assert await reader.read() == b""
    writer.close()

    assert impostor.sni_seen == [X1C_SN]
    assert impostor.connections == 0
    assert impostor.received == 0
    await hass.async_block_till_done()
    issue = issue_registry.async_get_issue(DOMAIN, TLS_ISSUE)
    assert issue is not None
    assert issue.translation_key == "printer_tls_unknown_ca"
    assert issue.translation_placeholders == {"printer": X1C["name"]}
    assert await async_get_stream_source(hass, _camera_id(hass, X1C_SN)) is None
    assert impostor.sni_seen == [X1C_SN]


@pytest.mark.parametrize("broker_leaf", ["impostor"], indirect=True)
async def test_printer_failing_tls_gets_no_stream(
    hass: HomeAssistant,
    x1c_lan: X1CLan,
    mock_config_entry: MockConfigEntry,
    cloud: FakeCloud,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The LAN MQTT refused the printer: no relay, nothing dialled, the issue."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            CONF_PRINTERS: {X1C_SN: {CONF_HOST: f"127.0.0.1:{x1c_lan.broker.port}"}}
        },
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, TLS_ISSUE) is not None
    )
    assert await async_get_stream_source(hass, _camera_id(hass, X1C_SN)) is None
    assert x1c_lan.camera.sni_seen == []
    assert x1c_lan.camera.received == 0
