"""Printer trust anchors: probed once, stored, reused; cloud broker context."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant

from custom_components.bambu_cloud.bambu import tls
from custom_components.bambu_cloud.bambu.const import RegionEndpoints
from custom_components.bambu_cloud.bambu.hub import TrustError
from custom_components.bambu_cloud.trust import PrinterTrust, async_cloud_context

from .bambu.certs import PrinterPKI, TestPKI

SERIAL = "01P00A000000001"


@pytest.fixture
def printer_pki(tmp_path: Path) -> PrinterPKI:
    return PrinterPKI.create(tmp_path, SERIAL)


@pytest.fixture
def tls_server(socket_enabled: None, printer_pki: PrinterPKI) -> Iterator[int]:
    """A printer-like TLS endpoint that presents its chain, then closes."""
    context = printer_pki.server_context()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(5)


async def test_probe_once_then_reuse(
    hass: HomeAssistant,
    printer_pki: PrinterPKI,
    tls_server: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chain is probed on first use, stored, and reused afterwards."""
    monkeypatch.setattr(tls, "BBL_CA_SHA256", printer_pki.pins)
    tls.clear_context_cache()
    trust = PrinterTrust(hass)
    context = await trust.context_for(SERIAL, f"127.0.0.1:{tls_server}")
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname

    again = PrinterTrust(hass)
    with patch.object(tls, "probe_printer_chain", side_effect=AssertionError):
        assert await again.context_for(SERIAL, f"127.0.0.1:{tls_server}") is context


async def test_unpinned_chain_refused(
    hass: HomeAssistant, tls_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain without a pinned certificate gives no context at all."""
    monkeypatch.setattr(tls, "BBL_CA_SHA256", frozenset({"00" * 32}))
    with pytest.raises(TrustError) as err:
        await PrinterTrust(hass).context_for(SERIAL, f"127.0.0.1:{tls_server}")
    assert err.value.kind == "unknown_ca"


async def test_stale_bundle_refused(
    hass: HomeAssistant,
    printer_pki: PrinterPKI,
    tls_server: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored CA bundle that is no longer acceptable is a trust error."""
    monkeypatch.setattr(tls, "BBL_CA_SHA256", printer_pki.pins)
    tls.clear_context_cache()
    stranger = TestPKI(tmp_path / "other").root("Stranger")
    with pytest.raises(TrustError):
        await PrinterTrust(hass, stranger.pem).context_for(
            SERIAL, f"127.0.0.1:{tls_server}"
        )


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
