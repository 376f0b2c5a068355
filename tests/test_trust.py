"""Printer trust anchors: probed, stored per entry, refreshed; cloud context."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.bambu_cloud.bambu.config import BambuConfig, Ports, Timeouts
from custom_components.bambu_cloud.bambu.const import RegionEndpoints, lookup_model
from custom_components.bambu_cloud.bambu.hub import (
    BambuHub,
    CloudSpec,
    PrinterSpec,
    Problem,
    ProblemKind,
    TrustError,
)
from custom_components.bambu_cloud.bambu.mqtt import RetryPolicy
from custom_components.bambu_cloud.const import DOMAIN
from custom_components.bambu_cloud.trust import (
    PrinterTrust,
    async_cloud_context,
    storage_key,
)
from tools.test_pki import IssuedCert, PrinterPKI, TestPKI, server_context
from tools.virtual_printer.mosquitto import MqttBroker

from .cloud_server import TOKEN, UID

SERIAL = "01P00A000000001"
ENTRY_ID = "01JBAMBUCLOUDTESTENTRY0001"
ACCESS_CODE = "12345678"


@pytest.fixture
def printer_pki(tmp_path: Path) -> PrinterPKI:
    return PrinterPKI.create(tmp_path, SERIAL)


def trust_config(pins: frozenset[str], **changes: Any) -> BambuConfig:
    """The library's configuration of these tests: its pins, no cloud."""
    endpoints = RegionEndpoints(
        api_url="http://127.0.0.1:1",
        web_url="http://127.0.0.1:1",
        mqtt_host="127.0.0.1",
    )
    return BambuConfig(endpoints=endpoints, pins=pins, **changes)


@contextlib.contextmanager
def serve_tls(
    context: ssl.SSLContext, accepted: list[None] | None = None
) -> Iterator[int]:
    """A printer-like TLS endpoint that presents its chain, then closes.

    Every connection (a probe, here) is counted in ``accepted``.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if accepted is not None:
                accepted.append(None)
            try:
                with context.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)


@pytest.fixture
def tls_server(socket_enabled: None, printer_pki: PrinterPKI) -> Iterator[int]:
    """The real printer's TLS endpoint."""
    with serve_tls(printer_pki.server_context()) as port:
        yield port


@pytest.fixture
def other_ca(tmp_path: Path) -> IssuedCert:
    """A second pinned CA (think BBL CA2), which the printer does not use."""
    return TestPKI(tmp_path / "other").root("Other Pinned CA")


@pytest.fixture
def impostor(tmp_path: Path, other_ca: IssuedCert) -> tuple[IssuedCert, IssuedCert]:
    """A device claiming the serial: its own CA, plus a pinned CA as padding.

    Certificates are public, so anyone can present a pinned one; nobody
    without its key can present a leaf that chains to it.
    """
    pki = TestPKI(tmp_path / "impostor")
    own_ca = pki.root("Impostor CA")
    leaf = pki.server(own_ca, SERIAL, chain=[own_ca, other_ca])
    return own_ca, leaf


@pytest.fixture
def pins(printer_pki: PrinterPKI, other_ca: IssuedCert) -> frozenset[str]:
    """Pin the printer's CA and the other CA (never the impostor's own)."""
    return printer_pki.pins | {other_ca.sha256}


def stored(hass_storage: dict[str, Any], entry_id: str = ENTRY_ID) -> list[bytes]:
    """The anchors stored for SERIAL in an entry's store."""
    data = hass_storage[storage_key(entry_id)]["data"]
    return [base64.b64decode(a) for a in data[SERIAL]]


def verifies(context: ssl.SSLContext, port: int) -> bool:
    """Whether a handshake with SNI = serial verifies against context."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=SERIAL),
        ):
            return True
    except ssl.SSLCertVerificationError:
        return False


async def test_probe_once_then_reuse(
    hass: HomeAssistant, socket_enabled: None, printer_pki: PrinterPKI
) -> None:
    """The chain is probed on first use, stored, and reused afterwards."""
    config = trust_config(printer_pki.pins)
    probes: list[None] = []
    with serve_tls(printer_pki.server_context(), probes) as port:
        trust = PrinterTrust(hass, ENTRY_ID, config)
        context = await trust.context_for(SERIAL, f"127.0.0.1:{port}")
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname
        assert len(probes) == 1

        again = PrinterTrust(hass, ENTRY_ID, config)
        assert await again.context_for(SERIAL, f"127.0.0.1:{port}") is context
        assert len(probes) == 1


async def test_probe_uses_configured_port_and_timeout(
    hass: HomeAssistant, socket_enabled: None, printer_pki: PrinterPKI
) -> None:
    """A host without a port is probed on the configured printer MQTT port."""
    probes: list[None] = []
    with serve_tls(printer_pki.server_context(), probes) as port:
        config = trust_config(printer_pki.pins, ports=Ports(mqtt=port))
        await PrinterTrust(hass, ENTRY_ID, config).context_for(SERIAL, "127.0.0.1")
    assert len(probes) == 1

    # A printer that accepts but never answers: the configured probe timeout.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        config = trust_config(
            printer_pki.pins,
            ports=Ports(mqtt=silent.getsockname()[1]),
            timeouts=Timeouts(probe=0.2),
        )
        async with asyncio.timeout(5):
            with pytest.raises(TimeoutError):
                await PrinterTrust(hass, "another", config).context_for(
                    SERIAL, "127.0.0.1"
                )


async def test_unpinned_chain_refused(hass: HomeAssistant, tls_server: int) -> None:
    """A chain without a pinned certificate gives no context at all."""
    config = trust_config(frozenset({"00" * 32}))
    with pytest.raises(TrustError) as err:
        await PrinterTrust(hass, ENTRY_ID, config).context_for(
            SERIAL, f"127.0.0.1:{tls_server}"
        )
    assert err.value.kind == "unknown_ca"


async def test_stale_bundle_refused(
    hass: HomeAssistant,
    printer_pki: PrinterPKI,
    tls_server: int,
    tmp_path: Path,
) -> None:
    """A stored CA bundle that is no longer acceptable is a trust error."""
    config = trust_config(printer_pki.pins)
    stranger = TestPKI(tmp_path / "other").root("Stranger")
    with pytest.raises(TrustError):
        await PrinterTrust(hass, ENTRY_ID, config, stranger.pem).context_for(
            SERIAL, f"127.0.0.1:{tls_server}"
        )


# ------------------------------------------------- a new look at the chain


async def test_refresh_adds_pinned_anchors_presented_now(
    hass: HomeAssistant,
    pins: frozenset[str],
    hass_storage: dict[str, Any],
    printer_pki: PrinterPKI,
    other_ca: IssuedCert,
    impostor: tuple[IssuedCert, IssuedCert],
    tls_server: int,
) -> None:
    """First probe answered by an impostor; a refresh learns the real CA."""
    impostor_ca, impostor_leaf = impostor
    trust = PrinterTrust(hass, ENTRY_ID, trust_config(pins))
    with serve_tls(server_context(impostor_leaf)) as impostor_port:
        first = await trust.context_for(SERIAL, f"127.0.0.1:{impostor_port}")
        assert stored(hass_storage) == [other_ca.der]  # never the impostor's CA
        assert not await hass.async_add_executor_job(verifies, first, impostor_port)
    # Without a refresh the stored anchors are used as they are.
    same = await trust.context_for(SERIAL, f"127.0.0.1:{tls_server}")
    assert not await hass.async_add_executor_job(verifies, same, tls_server)

    fresh = await trust.context_for(SERIAL, f"127.0.0.1:{tls_server}", refresh=True)
    assert stored(hass_storage) == [other_ca.der, printer_pki.root.der]
    assert await hass.async_add_executor_job(verifies, fresh, tls_server)
    # Another look at the impostor adds nothing: its own CA is not pinned.
    with serve_tls(server_context(impostor_leaf)) as impostor_port:
        await trust.context_for(SERIAL, f"127.0.0.1:{impostor_port}", refresh=True)
    assert stored(hass_storage) == [other_ca.der, printer_pki.root.der]
    assert impostor_ca.der not in stored(hass_storage)


async def test_refresh_after_no_pinned_anchor(
    hass: HomeAssistant,
    pins: frozenset[str],
    hass_storage: dict[str, Any],
    printer_pki: PrinterPKI,
    tmp_path: Path,
    tls_server: int,
) -> None:
    """An impostor without any pinned certificate stores nothing at all."""
    pki = TestPKI(tmp_path / "bare")
    own_ca = pki.root("Bare Impostor CA")
    leaf = pki.server(own_ca, SERIAL)
    trust = PrinterTrust(hass, ENTRY_ID, trust_config(pins))
    with serve_tls(server_context(leaf)) as port, pytest.raises(TrustError):
        await trust.context_for(SERIAL, f"127.0.0.1:{port}")
    assert storage_key(ENTRY_ID) not in hass_storage
    context = await trust.context_for(SERIAL, f"127.0.0.1:{tls_server}", refresh=True)
    assert stored(hass_storage) == [printer_pki.root.der]
    assert await hass.async_add_executor_job(verifies, context, tls_server)


@pytest.mark.parametrize("impostor_pinned", [True, False])
async def test_hub_recovers_from_an_impostor_first_probe(
    hass: HomeAssistant,
    pins: frozenset[str],
    hass_storage: dict[str, Any],
    broker: MqttBroker,
    ca: IssuedCert,
    printer_pki: PrinterPKI,
    impostor: tuple[IssuedCert, IssuedCert],
    tmp_path: Path,
    impostor_pinned: bool,
) -> None:
    """End to end: impostor at the first probe, then the printer is accepted.

    The hub gets TLS ``unknown_ca`` (or no anchor at all), looks at the chain
    again with back-off, and connects once the real printer answers; the
    access code never reaches the impostor.
    """
    if impostor_pinned:
        impostor_leaf = impostor[1]
    else:
        pki = TestPKI(tmp_path / "bare")
        impostor_leaf = pki.server(pki.root("Bare CA"), SERIAL)
    fake = MqttBroker(impostor_leaf, users={"bblp": ACCESS_CODE})
    await fake.start()
    port = fake.port
    real = MqttBroker(printer_pki.leaf, port=port, users={"bblp": ACCESS_CODE})
    problems: list[Problem] = []
    fast = RetryPolicy(minimum=0.05, maximum=0.2, stable_after=1.0)
    config = trust_config(pins, retry=fast, probe_retry=fast)
    config = dataclasses.replace(
        config,
        endpoints=dataclasses.replace(config.endpoints, mqtt_port=broker.port),
    )
    trust = PrinterTrust(hass, ENTRY_ID, config)
    hub = BambuHub(
        hass.loop,
        CloudSpec(
            uid=UID,
            token=TOKEN,
            ssl_context=ssl.create_default_context(cadata=ca.pem),
        ),
        config=config,
        printer_context=trust.context_for,
        on_problem=problems.append,
    )
    try:
        hub.set_printers(
            {
                SERIAL: PrinterSpec(
                    serial=SERIAL,
                    model=lookup_model(serial=SERIAL),
                    access_code=ACCESS_CODE,
                    lan_host=f"127.0.0.1:{port}",
                )
            }
        )
        await hub.start()
        link = hub.printers[SERIAL]
        refused = Problem(ProblemKind.TLS, SERIAL, active=True, detail="unknown_ca")
        async with asyncio.timeout(10):
            while refused not in problems:  # noqa: ASYNC110 - other tasks' effect
                await asyncio.sleep(0.02)
        assert fake.connected_clients == []
        assert not fake.refused  # no credential went to the impostor
        await fake.stop()
        await real.start()
        async with asyncio.timeout(10):
            while not link.lan_connected:  # noqa: ASYNC110 - other tasks' effect
                await asyncio.sleep(0.02)
        assert Problem(ProblemKind.TLS, SERIAL, active=False) in problems
        assert printer_pki.root.der in stored(hass_storage)
        assert impostor[0].der not in stored(hass_storage)
    finally:
        await hub.stop()
        await fake.stop()
        await real.stop()


# -------------------------------------------------------- per config entry


async def test_anchors_are_stored_per_entry(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    printer_pki: PrinterPKI,
    socket_enabled: None,
) -> None:
    """Each entry has its own store; the old shared store is dropped."""
    config = trust_config(printer_pki.pins)
    hass_storage[f"{DOMAIN}.trust"] = {"version": 1, "data": {SERIAL: []}}
    probes: list[None] = []
    with serve_tls(printer_pki.server_context(), probes) as port:
        host = f"127.0.0.1:{port}"
        await PrinterTrust(hass, "entry_a", config).context_for(SERIAL, host)
        assert storage_key("entry_a") == f"{DOMAIN}.trust.entry_a"
        assert stored(hass_storage, "entry_a") == [printer_pki.root.der]
        assert f"{DOMAIN}.trust" not in hass_storage
        assert storage_key("entry_b") not in hass_storage
        assert len(probes) == 1

        # Another entry does not see entry_a's anchors: it probes for itself.
        await PrinterTrust(hass, "entry_b", config).context_for(SERIAL, host)
    assert len(probes) == 2
    assert stored(hass_storage, "entry_b") == [printer_pki.root.der]


async def test_anchors_removed_with_the_entry(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    printer_pki: PrinterPKI,
    tls_server: int,
) -> None:
    """Deleting a config entry deletes its anchors, and only its own."""
    config = trust_config(printer_pki.pins)
    entry = MockConfigEntry(domain=DOMAIN, entry_id=ENTRY_ID, unique_id=UID)
    entry.add_to_hass(hass)
    host = f"127.0.0.1:{tls_server}"
    await PrinterTrust(hass, ENTRY_ID, config).context_for(SERIAL, host)
    await PrinterTrust(hass, "another_entry", config).context_for(SERIAL, host)
    assert storage_key(ENTRY_ID) in hass_storage

    await hass.config_entries.async_remove(ENTRY_ID)
    await hass.async_block_till_done()
    assert storage_key(ENTRY_ID) not in hass_storage
    assert storage_key("another_entry") in hass_storage


async def test_cloud_context(hass: HomeAssistant, tmp_path: Path) -> None:
    """System trust in production; an extra CA only when the table says so."""
    endpoints = RegionEndpoints(api_url="x", web_url="x", mqtt_host="h")
    default = await async_cloud_context(hass, endpoints)
    assert default.verify_mode is ssl.CERT_REQUIRED
    ca = TestPKI(tmp_path).root("Cloud CA", key_usage=True)
    custom = await async_cloud_context(
        hass,
        RegionEndpoints(api_url="x", web_url="x", mqtt_host="h", mqtt_ca_pem=ca.pem),
    )
    assert custom is not default
    assert custom.check_hostname
    assert custom.verify_mode is ssl.CERT_REQUIRED
