"""Cameras: RTSPS live view (X1/P2S/H2/X2D) or the JPEG stream (P1/A1).

Only printers with a LAN host (set in the options, or the address the printer
reports or announces) get a camera: there is no usable cloud camera
(PROTOCOL.md 4.4); a printer whose address is learnt later gets it then.
Both use the printer's pinned TLS context (SNI and hostname check = serial),
wherever the address came from. The JPEG stream connects only while someone
watches. RTSPS is played by Home Assistant's stream worker or go2rtc, which
do not verify the printer; they get the plain RTSP URL of a loopback relay
(``bambu.relay``) that does the verified TLS, never the printer's address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from aiohttp import web
from homeassistant.components.camera import (
    Camera,
    CameraEntityDescription,
    CameraEntityFeature,
)
from homeassistant.const import CONTENT_TYPE_MULTIPART
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bambu import camera as bambu_camera
from .bambu.const import CameraKind
from .bambu.hub import BambuHub, Problem, ProblemKind
from .bambu.relay import RtspRelay
from .bambu.state import ChangeSet
from .const import DOMAIN
from .coordinator import BambuConfigEntry
from .discovery import signal_lan_hosts
from .entity import BambuPrinterEntity, BambuPrinterEntityDescription
from .issues import problem_handler
from .printer_tracking import track_printers
from .trust import PrinterTrust

PARALLEL_UPDATES = 0

# A viewer that gets no frame for this long is let go; the browser retries.
MJPEG_FRAME_TIMEOUT = 30.0
MJPEG_BOUNDARY = "frame"
LIVEVIEW_ISSUE = "camera_liveview_disabled"


@dataclass(frozen=True, kw_only=True)
class BambuCameraDescription(BambuPrinterEntityDescription, CameraEntityDescription):
    """A camera entity (``views``: what its state shows of the printer's)."""


# The entity's state shows availability only; the live-view switch is
# followed by its own listener (``camera`` view).
CAMERA = BambuCameraDescription(
    key="camera", translation_key="camera", views=frozenset()
)
CAMERA_VIEWS = frozenset({"camera"})


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a camera for every printer with a LAN host and a LAN camera."""
    runtime = entry.runtime_data
    hub = runtime.hub
    problems = problem_handler(hass, entry)

    def printer_entities(serial: str) -> list[Camera]:
        spec = hub.printers[serial].spec
        if not spec.lan_host:
            return []
        if spec.model.camera is CameraKind.RTSPS:
            return [BambuRtspsCamera(hub, serial, runtime.trust, problems)]
        if spec.model.camera is CameraKind.JPEG:
            return [BambuJpegCamera(hub, serial, runtime.trust)]
        return []

    track_printers(
        entry,
        async_add_entities,
        printer_entities,
        retry_signal=signal_lan_hosts(entry.entry_id),
    )


class BambuCamera(BambuPrinterEntity, Camera):
    """A printer's LAN camera."""

    _attr_translation_key = "camera"
    _attr_brand = "Bambu Lab"

    def __init__(self, hub: BambuHub, serial: str) -> None:
        """Attach to the printer; the camera base keeps its access tokens."""
        BambuPrinterEntity.__init__(self, hub, serial, CAMERA)
        Camera.__init__(self)
        self._attr_model = self.link.spec.model.name


class BambuRtspsCamera(BambuCamera):
    """H.264 over RTSPS, played through the verifying loopback relay."""

    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(
        self,
        hub: BambuHub,
        serial: str,
        trust: PrinterTrust,
        problems: Callable[[Problem], None],
    ) -> None:
        """Start without a relay (it listens once a stream is wanted)."""
        super().__init__(hub, serial)
        self._trust = trust
        self._problems = problems
        self._issue_raised = False
        self._relay: RtspRelay | None = None
        self._relay_host: str | None = None
        self._relay_verified = False

    @property
    def use_stream_for_stills(self) -> bool:
        """Stills come from the stream: the printer has no snapshot URL."""
        return True

    @property
    def _issue_id(self) -> str:
        return f"{LIVEVIEW_ISSUE}_{self.serial}"

    async def stream_source(self) -> str | None:
        """The relay's loopback RTSP URL; None when there is nothing to play.

        Nothing is played while LAN live view is off on the printer, or once
        the printer failed TLS verification (on MQTT or on the camera port).
        """
        spec = self.link.spec
        if not spec.lan_host or not spec.access_code:
            return None
        camera = self.state_data.camera
        if camera.rtsp_enabled is False or bambu_camera.liveview_disabled(
            camera.rtsp_url
        ):
            return None
        if self.link.tls_problem is not None:
            return None
        relay = await self._async_relay(spec.lan_host)
        if relay.refusing:
            # Tried again after a back-off, like the hub's re-probe.
            return None
        return bambu_camera.relay_url(await relay.start(), spec.access_code)

    async def _async_relay(self, lan_host: str) -> RtspRelay:
        """The relay to the configured LAN host (a new one when it changed)."""
        if self._relay is not None and self._relay_host == lan_host:
            return self._relay
        await self._async_stop_relay()
        self._relay_host = lan_host
        self._relay = RtspRelay(
            bambu_camera.lan_address(lan_host),
            self.hub.config.ports.rtsps,
            self.serial,
            partial(self._trust.context_for, self.serial, lan_host),
            on_tls_failure=self._relay_tls_failed,
            on_verified=self._relay_verified_once,
        )
        return self._relay

    async def _async_stop_relay(self) -> None:
        relay, self._relay = self._relay, None
        self._relay_host = None
        self._relay_verified = False
        if relay is not None:
            await relay.stop()

    @callback
    def _relay_tls_failed(self, kind: str) -> None:
        """Raise the printer's TLS repair issue; the stream stays off."""
        self._problems(Problem(ProblemKind.TLS, self.serial, active=True, detail=kind))

    @callback
    def _relay_verified_once(self) -> None:
        """Clear a TLS issue the camera raised, unless MQTT still fails too."""
        if self._relay_verified:
            return
        self._relay_verified = True
        if self.link.tls_problem is None:
            self._problems(Problem(ProblemKind.TLS, self.serial, active=False))

    async def async_added_to_hass(self) -> None:
        """Follow the live-view switch of the printer."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.hub.listen(self.serial, self._camera_changed, CAMERA_VIEWS)
        )
        self._sync_issue()

    async def async_will_remove_from_hass(self) -> None:
        """Stop the relay; drop the live-view issue (the next report raises it)."""
        await super().async_will_remove_from_hass()
        await self._async_stop_relay()
        ir.async_delete_issue(self.hass, DOMAIN, self._issue_id)
        self._issue_raised = False

    @callback
    def _camera_changed(self, changed: ChangeSet) -> None:
        self._sync_issue()

    @callback
    def _sync_issue(self) -> None:
        enabled = self.state_data.camera.rtsp_enabled
        if enabled is False and not self._issue_raised:
            self._issue_raised = True
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self._issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=LIVEVIEW_ISSUE,
                translation_placeholders={
                    "printer": self.link.spec.name or self.serial
                },
            )
        elif enabled and self._issue_raised:
            self._issue_raised = False
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id)


class BambuJpegCamera(BambuCamera):
    """JPEG frames over TLS on port 6000 (P1, A1)."""

    def __init__(self, hub: BambuHub, serial: str, trust: PrinterTrust) -> None:
        """The stream client is made on first use (and when the spec changes)."""
        super().__init__(hub, serial)
        self._trust = trust
        self._client: bambu_camera.JpegStreamClient | None = None
        self._client_key: tuple[str, str] | None = None

    async def _stream_client(self) -> bambu_camera.JpegStreamClient | None:
        """The stream client for the current host and access code."""
        spec = self.link.spec
        if not spec.lan_host or not spec.access_code:
            return None
        key = (spec.lan_host, spec.access_code)
        if self._client is not None and self._client_key == key:
            return self._client
        old, self._client_key = self._client, key
        client = self._client = bambu_camera.JpegStreamClient(
            spec.lan_host,
            self.serial,
            spec.access_code,
            partial(self._trust.context_for, self.serial, spec.lan_host),
            port=self.hub.config.ports.jpeg,
        )
        if old is not None:
            await old.stop()
        return client

    async def _stop_client(self) -> None:
        client, self._client = self._client, None
        self._client_key = None
        if client is not None:
            await client.stop()

    async def async_will_remove_from_hass(self) -> None:
        """Disconnect the stream with the entity."""
        await super().async_will_remove_from_hass()
        await self._stop_client()

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The newest frame (a fresh one at most once a minute when idle)."""
        client = await self._stream_client()
        return None if client is None else await client.async_still()

    async def handle_async_mjpeg_stream(
        self, request: web.Request
    ) -> web.StreamResponse | None:
        """Relay the printer's frames as multipart MJPEG while connected."""
        client = await self._stream_client()
        if client is None:
            return None
        response = web.StreamResponse()
        response.content_type = CONTENT_TYPE_MULTIPART.format(MJPEG_BOUNDARY)
        await response.prepare(request)
        async with client.viewing():
            sequence = 0 if client.frame is None else client.frame.sequence
            first = True
            while frame := await client.next_frame(sequence, MJPEG_FRAME_TIMEOUT):
                sequence = frame.sequence
                part = (
                    (
                        f"--{MJPEG_BOUNDARY}\r\n"
                        f"Content-Type: image/jpeg\r\n"
                        f"Content-Length: {len(frame.data)}\r\n\r\n"
                    ).encode()
                    + frame.data
                    + b"\r\n"
                )
                await response.write(part)
                if first:
                    # Browsers show the previous part; send the first one twice.
                    first = False
                    await response.write(part)
        return response
