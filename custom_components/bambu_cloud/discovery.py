"""Printers heard on the local network, and the LAN address each printer has.

While at least one entry of the integration is loaded, one listener hears the
printers' NOTIFY datagrams (``bambu.discovery``). A printer heard:

* that a loaded account entry has: its announced address is learnt for that
  entry (``learned_hosts``), which its LAN link and camera use unless the
  printer's options fix a host or turn LAN off;
* that a LAN-only entry has, at another IP address: a discovery flow, which
  updates the entry's host (a host name the user typed is left alone);
* that no entry knows: a discovery flow (source ``integration_discovery``),
  at most once an hour per serial; an ignored printer stays ignored.

A printer's reports (``net.info``) teach the same learnt address. Neither
source is authenticated, and neither has to be: the address is only ever
dialled through the printer's pinned TLS context with hostname = serial, so
a wrong address is refused before any credential is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Final

from homeassistant.config_entries import SOURCE_IGNORE, SOURCE_INTEGRATION_DISCOVERY
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util.hass_dict import HassKey

from .bambu.const import Region
from .bambu.discovery import DiscoveredPrinter, DiscoveryListener, usable_address
from .bambu.state import ChangeSet
from .const import CONF_HOST, CONF_SERIAL, DOMAIN, LOGGER
from .coordinator import BambuConfigEntry
from .devices import printer_identifier
from .library import library_config

DATA_DISCOVERY: HassKey[BambuDiscovery] = HassKey(f"{DOMAIN}_discovery")
# The views that carry a printer's own addresses.
ADDRESS_VIEWS: Final = frozenset({"printer_addresses"})
# How long a printer heard counts as recent for the ``lan`` step.
RECENT_MAX_AGE: Final = 600.0
# Printers remembered at most (a flood of forged serials stays bounded).
MAX_RECENT: Final = 256
# A discovery flow per serial at most this often (Home Assistant also
# refuses a second flow for a unique id in progress).
FLOW_INTERVAL: Final = 3600.0
# An announced address replaces a learnt one at most this often: a printer
# on Wi-Fi and Ethernet announces both, and the link must not hop.
ANNOUNCE_INTERVAL: Final = 60.0


def signal_lan_hosts(entry_id: str) -> str:
    """The dispatcher signal sent when an entry learnt a printer's address."""
    return f"{DOMAIN}_lan_hosts_{entry_id}"


@callback
def async_learn_host(
    hass: HomeAssistant,
    entry: BambuConfigEntry,
    serial: str,
    host: str,
    *,
    announced: bool,
) -> bool:
    """Record a printer's LAN address for an account entry; True when new.

    A reported address (``net.info``, over the cloud or the printer's own
    verified link) replaces the learnt one unless that is still among the
    printer's addresses. An announced one (a datagram anyone can send) never
    moves a LAN link that is up. A change is followed at once: the entry
    re-applies its printers, which restarts that printer's LAN link.
    """
    runtime = entry.runtime_data
    link = runtime.hub.printers.get(serial)
    if link is None or not usable_address(host):
        return False
    current = runtime.learned_hosts.get(serial)
    if current == host:
        return False
    if current is not None:
        if announced and link.lan_connected:
            return False
        if not announced and current in link.state.printer_addresses:
            return False
    LOGGER.debug(
        "%s: LAN address %s (%s)",
        serial,
        host,
        "announced" if announced else "reported",
    )
    runtime.learned_hosts[serial] = host
    async_dispatcher_send(hass, signal_lan_hosts(entry.entry_id))
    return True


@callback
def async_follow_addresses(hass: HomeAssistant, entry: BambuConfigEntry) -> None:
    """Learn each printer's address from its reports, now and for new printers.

    Call after the entry's printers are first applied; every listener ends
    with the entry.
    """
    runtime = entry.runtime_data
    hub = runtime.hub
    followed: dict[str, Callable[[], None]] = {}

    def follower(serial: str) -> Callable[[ChangeSet], None]:
        @callback
        def follow(changed: ChangeSet) -> None:
            link = hub.printers.get(serial)
            if link is not None and (address := link.state.printer_ip):
                async_learn_host(hass, entry, serial, address, announced=False)

        return follow

    @callback
    def sync() -> None:
        for serial in followed.keys() - hub.printers.keys():
            followed.pop(serial)()
            runtime.learned_hosts.pop(serial, None)
        for serial in hub.printers.keys() - followed.keys():
            followed[serial] = hub.listen(serial, follower(serial), ADDRESS_VIEWS)

    @callback
    def stop() -> None:
        for unlisten in followed.values():
            unlisten()
        followed.clear()

    sync()
    entry.async_on_unload(runtime.coordinator.async_add_listener(sync))
    entry.async_on_unload(stop)


class BambuDiscovery:
    """The listener shared by every loaded entry, and what it heard."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = MAX_RECENT,
    ) -> None:
        """Nothing heard yet; `async_start_discovery` starts the listener."""
        self.hass = hass
        self.users = 0
        self._clock = clock
        self._capacity = capacity
        self._lock = asyncio.Lock()
        self._listener: DiscoveryListener | None = None
        self._heard: dict[str, tuple[float, DiscoveredPrinter]] = {}
        self._flows: dict[str, float] = {}
        self._announced: dict[str, float] = {}

    def recent(self, max_age_s: float = RECENT_MAX_AGE) -> list[DiscoveredPrinter]:
        """Printers heard within ``max_age_s`` seconds, the latest first."""
        now = self._clock()
        heard = sorted(self._heard.values(), key=lambda item: item[0], reverse=True)
        return [printer for at, printer in heard if now - at <= max_age_s]

    async def async_acquire(self) -> None:
        """One more loaded entry; the first starts the listener."""
        async with self._lock:
            self.users += 1
            if self.users == 1:
                listener = DiscoveryListener(
                    library_config(Region.GLOBAL), self.async_heard
                )
                await listener.start()
                self._listener = listener

    async def async_release(self) -> None:
        """One entry fewer; the last stops the listener and forgets the printers."""
        async with self._lock:
            self.users = max(self.users - 1, 0)
            if self.users:
                return
            listener, self._listener = self._listener, None
            self._heard.clear()
            if listener is not None:
                await listener.stop()

    @callback
    def async_heard(self, printer: DiscoveredPrinter) -> None:
        """Remember a printer heard; learn its address or start a flow."""
        now = self._clock()
        serial = printer.serial
        self._heard.pop(serial, None)
        self._heard[serial] = (now, printer)
        while len(self._heard) > self._capacity:
            self._heard.pop(next(iter(self._heard)))
        if self._learnt_by_account(printer, now):
            return
        entries = self.hass.config_entries
        if (entry := entries.async_entry_for_domain_unique_id(DOMAIN, serial)) and (
            entry.source == SOURCE_IGNORE
            or entry.data.get(CONF_HOST) == printer.host
            or not usable_address(str(entry.data.get(CONF_HOST)))
        ):
            return
        if entry is None and dr.async_get(self.hass).async_get_device(
            identifiers={(DOMAIN, printer_identifier(serial))}
        ):
            # A printer of an account entry that is not loaded right now.
            return
        self._start_flow(printer, now)

    def _learnt_by_account(self, printer: DiscoveredPrinter, now: float) -> bool:
        """Learn the address for the loaded account entries that have the printer."""
        known = False
        for entry in self.hass.config_entries.async_loaded_entries(DOMAIN):
            if CONF_SERIAL in entry.data or printer.serial not in (
                entry.runtime_data.hub.printers
            ):
                continue
            known = True
            last = self._announced.get(printer.serial)
            if last is not None and now - last < ANNOUNCE_INTERVAL:
                continue
            if async_learn_host(
                self.hass, entry, printer.serial, printer.host, announced=True
            ):
                self._announced[printer.serial] = now
        return known

    def _start_flow(self, printer: DiscoveredPrinter, now: float) -> None:
        last = self._flows.get(printer.serial)
        if last is not None and now - last < FLOW_INTERVAL:
            return
        self._flows[printer.serial] = now
        while len(self._flows) > self._capacity:
            self._flows.pop(next(iter(self._flows)))
        discovery_flow.async_create_flow(
            self.hass,
            DOMAIN,
            context={"source": SOURCE_INTEGRATION_DISCOVERY},
            data=dataclasses.asdict(printer),
        )


async def async_start_discovery(hass: HomeAssistant) -> None:
    """Listen for printers while at least one entry is loaded (refcounted).

    The shared object stays in ``hass.data`` once made (a start and a stop
    racing each other meet on one lock); it hears nothing while no entry
    holds it.
    """
    discovery = hass.data.get(DATA_DISCOVERY)
    if discovery is None:
        discovery = hass.data[DATA_DISCOVERY] = BambuDiscovery(hass)
    await discovery.async_acquire()


async def async_stop_discovery(hass: HomeAssistant) -> None:
    """An entry unloaded; the last one stops the listener."""
    if (discovery := hass.data.get(DATA_DISCOVERY)) is not None:
        await discovery.async_release()


async def async_recent_printers(hass: HomeAssistant) -> list[DiscoveredPrinter]:
    """Printers heard in the last minutes; empty while nothing listens."""
    discovery = hass.data.get(DATA_DISCOVERY)
    return [] if discovery is None else discovery.recent()
