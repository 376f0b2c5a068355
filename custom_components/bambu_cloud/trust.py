"""Trust anchors of printers, learned from the presented chain and stored.

The first LAN connection to a printer reads the chain it presents (no
credential sent) and keeps only the certificates whose fingerprints are pinned
(the configuration's pins, `bambu.tls.BBL_CA_SHA256`); later connections
reuse them. After the printer
failed verification with an unknown CA the hub asks for a new look
(``refresh``): pinned certificates presented now join the stored ones, so a
first probe answered by another device cannot lock the printer out for ever,
while trust still never reaches beyond the pins.

Anchors are stored per config entry and removed with it. Building contexts
and probing are blocking, so both run in the executor.
"""

from __future__ import annotations

import base64
import ssl
from functools import partial

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util.ssl import client_context

from .bambu import tls
from .bambu.config import BambuConfig
from .bambu.const import RegionEndpoints
from .bambu.hub import TrustError, split_host_port
from .const import DOMAIN

STORAGE_VERSION = 1
# Before anchors were kept per entry, every entry shared this store.
_LEGACY_STORAGE_KEY = f"{DOMAIN}.trust"


def storage_key(entry_id: str) -> str:
    """Where one config entry keeps its printers' anchors."""
    return f"{DOMAIN}.trust.{entry_id}"


async def async_remove_trust(hass: HomeAssistant, entry_id: str) -> None:
    """Forget the anchors of a deleted config entry."""
    await Store[dict[str, list[str]]](
        hass, STORAGE_VERSION, storage_key(entry_id)
    ).async_remove()


class PrinterTrust:
    """Anchors per printer serial, persisted in the entry's HA storage."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        config: BambuConfig,
        extra_pem: str | None = None,
    ) -> None:
        """Use the entry's storage; extra_pem is the user's optional CA bundle.

        ``config`` gives the pins, the printers' MQTT port and the probe's
        timeout.
        """
        self._hass = hass
        self._config = config
        self._store: Store[dict[str, list[str]]] = Store(
            hass, STORAGE_VERSION, storage_key(entry_id)
        )
        self._anchors: dict[str, list[str]] | None = None
        self._extra_pem = extra_pem

    async def context_for(
        self, serial: str, host: str, *, refresh: bool = False
    ) -> ssl.SSLContext:
        """A verifying context for the printer.

        The chain is probed when nothing is stored yet or when ``refresh``
        asks for a new look; only pinned certificates are ever kept.
        """
        config = self._config
        anchors = await self._stored(serial)
        if refresh or not anchors:
            chain = await self._hass.async_add_executor_job(
                tls.probe_printer_chain,
                *split_host_port(host, config.ports.mqtt),
                serial,
                config.timeouts.probe,
            )
            # Keep what was learned before: the new look only adds.
            learned = tls.pinned_anchors([*anchors, *chain], pins=config.pins)
            if not learned and not self._extra_pem:
                raise TrustError("unknown_ca")
            if learned != anchors:
                await self._save(serial, learned)
            anchors = learned
        try:
            return await self._hass.async_add_executor_job(
                partial(tls.printer_context, anchors, self._extra_pem, pins=config.pins)
            )
        except tls.TlsBundleError as err:
            raise TrustError("unknown_ca") from err

    async def _stored(self, serial: str) -> list[bytes]:
        data = await self._load()
        # Re-check against the pins: a stored anchor no longer pinned is dropped.
        return tls.pinned_anchors(
            [base64.b64decode(a) for a in data.get(serial, [])],
            pins=self._config.pins,
        )

    async def _save(self, serial: str, anchors: list[bytes]) -> None:
        data = await self._load()
        data[serial] = [base64.b64encode(a).decode() for a in anchors]
        await self._store.async_save(data)

    async def _load(self) -> dict[str, list[str]]:
        if self._anchors is None:
            stored = await self._store.async_load()
            if stored is None:
                # First use of the per-entry store: the shared one of older
                # versions is dropped; printers are probed again (pins only).
                await Store[dict[str, list[str]]](
                    self._hass, STORAGE_VERSION, _LEGACY_STORAGE_KEY
                ).async_remove()
            self._anchors = stored or {}
        return self._anchors


async def async_cloud_context(
    hass: HomeAssistant, endpoints: RegionEndpoints
) -> ssl.SSLContext:
    """The cloud broker's context: system trust, hostname checked."""
    if endpoints.mqtt_ca_pem is None:
        return client_context()
    return await hass.async_add_executor_job(_context_with_ca, endpoints.mqtt_ca_pem)


def _context_with_ca(pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pem)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
