"""Tests for the pinned printer TLS trust (custom_components/.../bambu/tls.py).

Real TLS servers on 127.0.0.1 (one thread each, stopped at the end of the
test) present certificates from a test PKI shaped like Bambu's.
"""

from __future__ import annotations

import inspect
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from custom_components.bambu_cloud.bambu import tls
from tools.test_pki import IssuedCert, PrinterPKI, TestPKI, server_context, sha256_hex

SERIAL = "01P00A391800123"
OTHER_SERIAL = "01P00A391800999"
TIMEOUT = 5.0
SHARED_CERTS = Path(__file__).resolve().parents[2].parent / "shared" / "certs"

# Real sockets on 127.0.0.1 (the Home Assistant test plugin blocks sockets by
# default and only allows connections to 127.0.0.1 once they are enabled).
pytestmark = pytest.mark.usefixtures("socket_enabled")


# --------------------------------------------------------------------------
# A small threaded TLS server that records what clients do.


@dataclass
class Connection:
    """What the server saw on one accepted connection."""

    server_name: str | None = None
    handshake_ok: bool = False
    handshake_error: BaseException | None = None
    received: bytes = b""


@dataclass
class TlsServer:
    """Accept connections one at a time; record SNI, handshake and bytes."""

    ctx: ssl.SSLContext
    reply: bytes = b"pong"
    port: int = 0
    connections: list[Connection] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sni: list[str | None] = field(default_factory=list)

    def start(self) -> None:
        def sni(_obj: object, name: str | None, _ctx: ssl.SSLContext) -> None:
            self._sni.append(name)

        self.ctx.sni_callback = sni
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self._listener.close()
        assert not self._thread.is_alive()

    def wait_for(self, count: int) -> list[Connection]:
        """Wait until ``count`` connections were fully handled."""
        for _ in range(int(TIMEOUT / 0.02)):
            if len(self.connections) >= count:
                break
            self._stop.wait(0.02)
        assert len(self.connections) >= count
        return self.connections

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._handle(raw)

    def _handle(self, raw: socket.socket) -> None:
        conn = Connection()
        self._sni.clear()
        raw.settimeout(TIMEOUT)
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as tls_sock:
                conn.handshake_ok = True
                while data := tls_sock.recv(4096):
                    conn.received += data
                    tls_sock.sendall(self.reply)
        except (OSError, ssl.SSLError) as err:
            if not conn.handshake_ok:
                conn.handshake_error = err
        finally:
            raw.close()
            conn.server_name = self._sni[0] if self._sni else None
            self.connections.append(conn)


@contextmanager
def tls_server(ctx: ssl.SSLContext) -> Iterator[TlsServer]:
    server = TlsServer(ctx)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def connect(ctx: ssl.SSLContext, port: int, serial: str) -> bytes:
    """Verified connection the way the integration makes it: IP + serial."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname=serial) as sock,
    ):
        sock.sendall(b"ping")
        return sock.recv(4)


def refused(
    ctx: ssl.SSLContext, port: int, serial: str
) -> ssl.SSLCertVerificationError:
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        connect(ctx, port, serial)
    return info.value


@pytest.fixture
def pki(tmp_path: Path) -> PrinterPKI:
    """Test PKI whose CA is the only certificate of ``pki.pins``."""
    return PrinterPKI.create(tmp_path, SERIAL)


# --------------------------------------------------------------------------
# The test PKI really is shaped like Bambu's.


def test_test_pki_shape(pki: PrinterPKI) -> None:
    root, leaf = pki.root.cert, pki.leaf.cert
    assert root.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        root.extensions.get_extension_for_class(x509.KeyUsage)
    cn = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [a.value for a in cn] == [SERIAL]
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # The server presents its CA, like printers do.
    chain = pki.leaf.chain_path.read_text()
    assert chain.count("BEGIN CERTIFICATE") == 2
    assert pki.pins == {sha256_hex(pki.root.der)}


def test_strict_mode_rejects_ca_without_key_usage(pki: PrinterPKI) -> None:
    """Why VERIFY_X509_STRICT is cleared: strict OpenSSL refuses such a CA."""
    strict = tls.build_printer_context([pki.root.der], pins=pki.pins)
    strict.verify_flags |= ssl.VERIFY_X509_STRICT
    with tls_server(pki.server_context()) as server:
        refused(strict, server.port, SERIAL)
        lenient = tls.build_printer_context([pki.root.der], pins=pki.pins)
        assert connect(lenient, server.port, SERIAL) == b"pong"


# --------------------------------------------------------------------------
# Probe: reads the chain, sends SNI = serial, sends nothing else.


def test_probe_reads_chain_and_sends_nothing(pki: PrinterPKI) -> None:
    with tls_server(pki.server_context()) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
        [conn] = server.wait_for(1)
    assert chain == [pki.leaf.der, pki.root.der]
    assert tls.pinned_anchors(chain, pins=pki.pins) == [pki.root.der]
    assert conn.server_name == SERIAL
    assert conn.received == b""


def test_probe_tls12_server(pki: PrinterPKI) -> None:
    ctx = pki.server_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with tls_server(ctx) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
        [conn] = server.wait_for(1)
    assert chain == [pki.leaf.der, pki.root.der]
    assert conn.handshake_ok
    assert conn.server_name == SERIAL
    assert conn.received == b""


def test_probe_leaf_only_server_has_no_anchor(tmp_path: Path) -> None:
    maker = TestPKI(tmp_path)
    root = maker.root()
    leaf = maker.server(root, SERIAL, chain=[])
    with tls_server(server_context(leaf)) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
    assert chain == [leaf.der]
    assert tls.pinned_anchors(chain) == []  # real pins: nothing of ours


@pytest.mark.parametrize("serial", ["", "127.0.0.1", "printer.local", "01P\u00e9"])
def test_probe_rejects_unsafe_serial(serial: str) -> None:
    with pytest.raises(ValueError, match="serial"):
        tls.probe_printer_chain("127.0.0.1", 1, serial, TIMEOUT)


def test_probe_connection_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        tls.probe_printer_chain("127.0.0.1", port, SERIAL, 1.0)


def test_probe_handles_missing_chain(
    pki: PrinterPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``get_unverified_chain()`` may return None when nothing was presented."""
    monkeypatch.setattr(ssl.SSLSocket, "get_unverified_chain", lambda _self: None)
    with tls_server(pki.server_context()) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
    assert chain == []


def test_to_der_variants(pki: PrinterPKI) -> None:
    der = pki.root.der

    class PemCert:
        def public_bytes(self) -> str:
            return pki.root.pem

    class DerCert:
        def public_bytes(self) -> bytes:
            return der

    assert tls._to_der(der) == der
    assert tls._to_der(bytearray(der)) == der
    assert tls._to_der(memoryview(der)) == der
    assert tls._to_der(pki.root.cert) == der
    assert tls._to_der(PemCert()) == der
    assert tls._to_der(DerCert()) == der

    class OddCert:
        def public_bytes(self) -> int:
            return 42

    with pytest.raises(TypeError):
        tls._to_der(42)
    with pytest.raises(TypeError):
        tls._to_der(OddCert())


# --------------------------------------------------------------------------
# Verified connections.


def test_verified_connection_sni_and_cn(pki: PrinterPKI) -> None:
    ctx = tls.build_printer_context([pki.root.der], pins=pki.pins)
    with tls_server(pki.server_context()) as server:
        assert connect(ctx, server.port, SERIAL) == b"pong"
        [conn] = server.wait_for(1)
    assert conn.handshake_ok
    assert conn.server_name == SERIAL
    assert conn.received == b"ping"


def test_probe_then_connect(pki: PrinterPKI) -> None:
    """The whole flow: probe, keep pinned anchors, verify with them."""
    with tls_server(pki.server_context()) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
        ctx = tls.printer_context(
            tls.pinned_anchors(chain, pins=pki.pins), pins=pki.pins
        )
        assert connect(ctx, server.port, SERIAL) == b"pong"
        conns = server.wait_for(2)
    assert [c.server_name for c in conns] == [SERIAL, SERIAL]


def test_serial_matched_via_common_name(pki: PrinterPKI) -> None:
    """The leaf has no SAN: only the CN fallback lets the serial match, so
    turning it off refuses the right serial (proves the setting matters)."""
    ctx = tls.build_printer_context([pki.root.der], pins=pki.pins)
    no_cn = tls.build_printer_context([pki.root.der], pins=pki.pins)
    no_cn.hostname_checks_common_name = False
    with tls_server(pki.server_context()) as server:
        assert connect(ctx, server.port, SERIAL) == b"pong"
        assert connect(ctx, server.port, SERIAL.lower()) == b"pong"
        err = refused(no_cn, server.port, SERIAL)
    assert tls.classify_tls_error(err) == "serial_mismatch"


def test_wrong_serial_refused(pki: PrinterPKI) -> None:
    ctx = tls.build_printer_context([pki.root.der], pins=pki.pins)
    with tls_server(pki.server_context()) as server:
        err = refused(ctx, server.port, OTHER_SERIAL)
        [conn] = server.wait_for(1)
    assert err.verify_code == 62
    assert tls.classify_tls_error(err) == "serial_mismatch"
    assert conn.server_name == OTHER_SERIAL
    assert not conn.handshake_ok or conn.received == b""


def test_unpinned_ca_refused(pki: PrinterPKI) -> None:
    pins = frozenset({"00" * 32})
    with tls_server(pki.server_context()) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
        anchors = tls.pinned_anchors(chain, pins=pins)
        assert anchors == []
        # Even a caller that passes the CA anyway gets nothing trusted.
        ctx = tls.build_printer_context([pki.root.der], pins=pins)
        assert ctx.get_ca_certs() == []
        err = refused(ctx, server.port, SERIAL)
    assert err.verify_code == 19  # self-signed certificate in certificate chain
    assert tls.classify_tls_error(err) == "unknown_ca"


def test_other_ca_refused(pki: PrinterPKI, tmp_path: Path) -> None:
    """A pinned CA that did not issue the printer certificate does not help."""
    maker = TestPKI(tmp_path / "other")
    other_root = maker.root("Other CA")
    leaf = maker.server(other_root, SERIAL, chain=[])
    ctx = tls.build_printer_context([pki.root.der], pins=pki.pins)
    with tls_server(server_context(leaf)) as server:
        err = refused(ctx, server.port, SERIAL)
    assert err.verify_code in {20, 21}
    assert tls.classify_tls_error(err) == "unknown_ca"


def test_expired_leaf_refused(pki: PrinterPKI, tmp_path: Path) -> None:
    maker = TestPKI(tmp_path / "expired")
    leaf = maker.server(pki.root, SERIAL, expired=True)
    ctx = tls.build_printer_context([pki.root.der], pins=pki.pins)
    with tls_server(server_context(leaf)) as server:
        err = refused(ctx, server.port, SERIAL)
    assert err.verify_code == 10
    assert tls.classify_tls_error(err) == "expired"


def test_not_yet_valid_leaf_refused(pki: PrinterPKI, tmp_path: Path) -> None:
    maker = TestPKI(tmp_path / "future")
    leaf = maker.server(pki.root, SERIAL, not_yet_valid=True)
    ctx = tls.build_printer_context([pki.root.der], pins=pki.pins)
    with tls_server(server_context(leaf)) as server:
        err = refused(ctx, server.port, SERIAL)
    assert err.verify_code == 9
    assert tls.classify_tls_error(err) == "expired"


def test_ip_address_as_hostname_refused(pki: PrinterPKI) -> None:
    ctx = tls.build_printer_context([pki.root.der], pins=pki.pins)
    with tls_server(pki.server_context()) as server:
        err = refused(ctx, server.port, "127.0.0.1")
    assert err.verify_code == 64
    assert tls.classify_tls_error(err) == "serial_mismatch"


def test_rsa_pki(tmp_path: Path) -> None:
    """The real BBL CA is RSA; make sure nothing depends on the key type."""
    rsa_pki = PrinterPKI.create(tmp_path, SERIAL, key_type="rsa")
    pins = rsa_pki.pins
    with tls_server(rsa_pki.server_context()) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
        ctx = tls.build_printer_context(tls.pinned_anchors(chain, pins=pins), pins=pins)
        assert connect(ctx, server.port, SERIAL) == b"pong"


def test_context_settings(pki: PrinterPKI) -> None:
    ctx = tls.build_printer_context([pki.root.der, pki.root.der], pins=pki.pins)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert ctx.hostname_checks_common_name
    assert not ctx.verify_flags & ssl.VERIFY_X509_STRICT
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert len(ctx.get_ca_certs()) == 1


# --------------------------------------------------------------------------
# Intermediate chains (root -> device CA -> printer), like P2S / H2* / X2D.


def test_intermediate_chain(tmp_path: Path) -> None:
    chain_pki = PrinterPKI.create(tmp_path, SERIAL, with_intermediate=True)
    assert chain_pki.intermediate is not None
    pins = frozenset({chain_pki.root.sha256})
    with tls_server(chain_pki.server_context()) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
        assert chain == [
            chain_pki.leaf.der,
            chain_pki.intermediate.der,
            chain_pki.root.der,
        ]
        anchors = tls.pinned_anchors(chain, pins=pins)
        assert anchors == [chain_pki.root.der]
        assert connect(
            tls.build_printer_context(anchors, pins=pins), server.port, SERIAL
        )
        err = refused(
            tls.build_printer_context(anchors, pins=pins), server.port, OTHER_SERIAL
        )
    assert tls.classify_tls_error(err) == "serial_mismatch"


def test_pinned_intermediate_without_root(tmp_path: Path) -> None:
    """The printer omits the root; the presented intermediate is pinned."""
    maker = TestPKI(tmp_path)
    root = maker.root("Test BBL CA2 RSA", key_usage=True)
    inter = maker.intermediate(root)
    leaf = maker.server(inter, SERIAL, chain=[inter])
    pins = frozenset({root.sha256, inter.sha256})
    with tls_server(server_context(leaf)) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
        assert chain == [leaf.der, inter.der]
        anchors = tls.pinned_anchors(chain, pins=pins)
        assert anchors == [inter.der]
        assert connect(
            tls.build_printer_context(anchors, pins=pins), server.port, SERIAL
        )


def test_unpinned_intermediate_needs_root_or_bundle(tmp_path: Path) -> None:
    """Only the root is pinned and the printer omits it: refused, until the
    user adds the root (or a chaining intermediate) as a bundle."""
    maker = TestPKI(tmp_path)
    root = maker.root()
    inter = maker.intermediate(root)
    leaf = maker.server(inter, SERIAL, chain=[inter])
    pins = frozenset({root.sha256})
    with tls_server(server_context(leaf)) as server:
        chain = tls.probe_printer_chain("127.0.0.1", server.port, SERIAL, TIMEOUT)
        assert tls.pinned_anchors(chain, pins=pins) == []
        err = refused(tls.build_printer_context([], pins=pins), server.port, SERIAL)
        assert tls.classify_tls_error(err) == "unknown_ca"
        with_root = tls.build_printer_context([], extra_pem=root.pem, pins=pins)
        assert connect(with_root, server.port, SERIAL) == b"pong"


def test_user_bundle_intermediate_with_stored_root(tmp_path: Path) -> None:
    """Printer presents only its leaf; anchors hold the root; bundle adds the
    (unpinned) intermediate that chains to it."""
    maker = TestPKI(tmp_path)
    root = maker.root()
    inter = maker.intermediate(root)
    leaf = maker.server(inter, SERIAL, chain=[])
    pins = frozenset({root.sha256})
    with tls_server(server_context(leaf)) as server:
        err = refused(
            tls.build_printer_context([root.der], pins=pins), server.port, SERIAL
        )
        assert tls.classify_tls_error(err) == "unknown_ca"
        ctx = tls.build_printer_context([root.der], extra_pem=inter.pem, pins=pins)
        assert connect(ctx, server.port, SERIAL) == b"pong"


# --------------------------------------------------------------------------
# User bundle validation.


@dataclass
class BundlePKI:
    root: IssuedCert
    inter: IssuedCert
    sub: IssuedCert
    leaf: IssuedCert
    stranger: IssuedCert
    stranger_inter: IssuedCert
    pins: frozenset[str]


@pytest.fixture
def bundle_pki(tmp_path: Path) -> BundlePKI:
    """Only ``root`` is pinned."""
    maker = TestPKI(tmp_path)
    root = maker.root()
    inter = maker.intermediate(root, "Test Device CA A")
    sub = maker.intermediate(inter, "Test Device CA B")
    leaf = maker.server(root, SERIAL)
    stranger = maker.root("Stranger CA")
    stranger_inter = maker.intermediate(stranger, "Stranger Device CA")
    pins = frozenset({root.sha256})
    return BundlePKI(root, inter, sub, leaf, stranger, stranger_inter, pins)


def test_bundle_pinned_ok(bundle_pki: BundlePKI) -> None:
    pem = bundle_pki.root.pem
    assert tls.validate_user_bundle(pem, pins=bundle_pki.pins) == [bundle_pki.root.der]
    assert tls.validate_user_bundle(pem + pem, pins=bundle_pki.pins) == [
        bundle_pki.root.der
    ]


def test_bundle_chained_ok_any_order(bundle_pki: BundlePKI) -> None:
    b = bundle_pki
    pem = b.sub.pem + b.inter.pem + b.root.pem
    assert tls.validate_user_bundle(pem, pins=bundle_pki.pins) == [
        b.sub.der,
        b.inter.der,
        b.root.der,
    ]


def test_bundle_chained_to_anchor_ok(bundle_pki: BundlePKI) -> None:
    b = bundle_pki
    assert tls.validate_user_bundle(
        b.inter.pem, [b.root.der], pins=bundle_pki.pins
    ) == [b.inter.der]
    # Anchors that are not pinned do not count.
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle(
            b.stranger_inter.pem, [b.stranger.der], pins=bundle_pki.pins
        )
    assert info.value.reason == "not_pinned"


def test_bundle_chained_without_pinned_rejected(bundle_pki: BundlePKI) -> None:
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle(bundle_pki.inter.pem, pins=bundle_pki.pins)
    assert info.value.reason == "not_pinned"
    assert info.value.cert_name == "Test Device CA A"
    assert "Test Device CA A" in str(info.value)


def test_bundle_unrelated_ca_rejected(bundle_pki: BundlePKI) -> None:
    b = bundle_pki
    for pem in (b.stranger.pem, b.root.pem + b.stranger.pem + b.stranger_inter.pem):
        with pytest.raises(tls.TlsBundleError) as info:
            tls.validate_user_bundle(pem, pins=bundle_pki.pins)
        assert info.value.reason == "not_pinned"
        assert info.value.cert_name == "Stranger CA"


def test_bundle_forged_issuer_rejected(bundle_pki: BundlePKI, tmp_path: Path) -> None:
    """Same issuer name as the pinned root, but signed by another key."""
    maker = TestPKI(tmp_path / "forged")
    fake_root = maker.root("Test BBL CA")  # same subject, different key
    assert fake_root.cert.subject == bundle_pki.root.cert.subject
    forged = maker.intermediate(fake_root, "Forged Device CA")
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle(bundle_pki.root.pem + forged.pem, pins=bundle_pki.pins)
    assert info.value.reason == "not_pinned"


def test_bundle_leaf_rejected(bundle_pki: BundlePKI) -> None:
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle(
            bundle_pki.root.pem + bundle_pki.leaf.pem, pins=bundle_pki.pins
        )
    assert info.value.reason == "not_ca"
    assert info.value.cert_name == SERIAL


def test_bundle_expired_rejected(bundle_pki: BundlePKI, tmp_path: Path) -> None:
    old = TestPKI(tmp_path / "old").intermediate(bundle_pki.root, expired=True)
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle(bundle_pki.root.pem + old.pem, pins=bundle_pki.pins)
    assert info.value.reason == "expired"


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "garbage",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "\udcff",
    ],
)
def test_bundle_garbage_rejected(bundle_pki: BundlePKI, pem: str) -> None:
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle(pem, pins=bundle_pki.pins)
    assert info.value.reason == "not_pem"
    assert info.value.cert_name is None
    assert str(info.value) == "not_pem"


def test_bundle_private_key_rejected(bundle_pki: BundlePKI) -> None:
    key_pem = bundle_pki.root.key_path.read_text()
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle(bundle_pki.root.pem + key_pem, pins=bundle_pki.pins)
    assert info.value.reason == "private_key"


def test_bundle_too_large_rejected(bundle_pki: BundlePKI) -> None:
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle("x" * (tls.MAX_BUNDLE_CHARS + 1), pins=bundle_pki.pins)
    assert info.value.reason == "too_large"
    many = bundle_pki.root.pem * (tls.MAX_BUNDLE_CERTS + 1)
    assert len(many) <= tls.MAX_BUNDLE_CHARS
    with pytest.raises(tls.TlsBundleError) as info:
        tls.validate_user_bundle(many, pins=bundle_pki.pins)
    assert info.value.reason == "too_large"


def test_build_context_revalidates_bundle(bundle_pki: BundlePKI) -> None:
    with pytest.raises(tls.TlsBundleError):
        tls.build_printer_context(
            [], extra_pem=bundle_pki.stranger.pem, pins=bundle_pki.pins
        )
    ctx = tls.build_printer_context(
        [], extra_pem=bundle_pki.root.pem, pins=bundle_pki.pins
    )
    assert len(ctx.get_ca_certs()) == 1


def test_issued_by_handles_unusual_issuers(bundle_pki: BundlePKI) -> None:
    b = bundle_pki
    assert tls._issued_by(b.inter.cert, b.root.cert)
    assert not tls._issued_by(b.inter.cert, b.stranger.cert)  # name mismatch
    assert not tls._is_ca(b.leaf.cert)


def test_cert_name_without_common_name(tmp_path: Path) -> None:
    root = TestPKI(tmp_path).root()
    name = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Org")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(root.key.public_key())
        .serial_number(1)
        .not_valid_before(root.cert.not_valid_before_utc)
        .not_valid_after(root.cert.not_valid_after_utc)
        .sign(root.key, hashes.SHA256())
    )
    assert tls._cert_name(cert) == "O=Org"
    assert not tls._is_ca(cert)  # no basicConstraints at all


# --------------------------------------------------------------------------
# Context cache.


def test_printer_context_cached(pki: PrinterPKI, tmp_path: Path) -> None:
    other = TestPKI(tmp_path / "other").root("Other")
    first = tls.printer_context([pki.root.der, other.der], pins=pki.pins)
    assert (
        tls.printer_context([other.der, pki.root.der, other.der], pins=pki.pins)
        is first
    )
    assert tls.printer_context([pki.root.der], "", pins=pki.pins) is not first
    with_bundle = tls.printer_context([pki.root.der], pki.root.pem, pins=pki.pins)
    assert (
        tls.printer_context([pki.root.der], pki.root.pem, pins=pki.pins) is with_bundle
    )
    tls.clear_context_cache()
    assert tls.printer_context([pki.root.der, other.der], pins=pki.pins) is not first


def test_printer_context_cache_follows_pins(pki: PrinterPKI) -> None:
    before = tls.printer_context([pki.root.der], pins=pki.pins)
    assert len(before.get_ca_certs()) == 1
    after = tls.printer_context([pki.root.der], pins=frozenset())
    assert after is not before
    assert after.get_ca_certs() == []


# --------------------------------------------------------------------------
# Error classification.


def _verify_error(code: int) -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_code = code
    return err


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (2, "unknown_ca"),
        (18, "unknown_ca"),
        (19, "unknown_ca"),
        (20, "unknown_ca"),
        (21, "unknown_ca"),
        (9, "expired"),
        (10, "expired"),
        (62, "serial_mismatch"),
        (64, "serial_mismatch"),
        (7, "other"),
        (92, "other"),
    ],
)
def test_classify_codes(code: int, kind: str) -> None:
    assert tls.classify_tls_error(_verify_error(code)) == kind


def test_classify_plain_ssl_error() -> None:
    assert tls.classify_tls_error(ssl.SSLError(1, "handshake failure")) == "other"
    assert tls.classify_tls_error(ssl.SSLCertVerificationError()) == "other"


def test_classify_real_handshake_failure(pki: PrinterPKI) -> None:
    """A protocol version mismatch is an "other" failure, not a CA one."""
    ctx = tls.build_printer_context([pki.root.der], pins=pki.pins)
    server_ctx = pki.server_context()
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with tls_server(server_ctx) as server, pytest.raises(ssl.SSLError) as info:
        connect(ctx, server.port, SERIAL)
    assert not isinstance(info.value, ssl.SSLCertVerificationError)
    assert tls.classify_tls_error(info.value) == "other"


# --------------------------------------------------------------------------
# The pins match the real Bambu Lab bundle (kept outside the repository).


def _load_shared(name: str) -> list[x509.Certificate]:
    path = SHARED_CERTS / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_pins_match_real_bundle() -> None:
    cas = _load_shared("bbl_ca.pem")
    intermediates = _load_shared("bbl_device_intermediates.pem")
    assert len(cas) == 5
    assert len(intermediates) == 3
    ders = [c.public_bytes(Encoding.DER) for c in cas + intermediates]
    fingerprints = {sha256_hex(d) for d in ders}
    assert fingerprints == tls.BBL_CA_SHA256
    assert len(tls.BBL_CA_SHA256) == 8
    assert all(tls.is_pinned(d) for d in ders)
    assert all(fp == fp.lower() and len(fp) == 64 for fp in tls.BBL_CA_SHA256)


def test_real_bundle_validates_and_loads() -> None:
    cas = _load_shared("bbl_ca.pem")
    pem = (SHARED_CERTS / "bbl_ca.pem").read_text()
    pem += (SHARED_CERTS / "bbl_device_intermediates.pem").read_text()
    ders = tls.validate_user_bundle(pem)
    assert len(ders) == 8
    ctx = tls.build_printer_context(ders)
    assert len(ctx.get_ca_certs()) == 8
    # The 2022 BBL CA really has no keyUsage (why strict mode is cleared).
    [bbl_ca] = [c for c in cas if tls._cert_name(c) == "BBL CA"]
    with pytest.raises(x509.ExtensionNotFound):
        bbl_ca.extensions.get_extension_for_class(x509.KeyUsage)


def test_real_intermediates_chain_to_ca2() -> None:
    """Device intermediates are signed by BBL CA2 RSA: a bundle holding only
    them validates against the pinned CA2 as anchor."""
    cas = _load_shared("bbl_ca.pem")
    intermediates = _load_shared("bbl_device_intermediates.pem")
    anchors = [c.public_bytes(Encoding.DER) for c in cas]
    for inter in intermediates:
        assert any(tls._issued_by(inter, ca) for ca in cas)
    pem = (SHARED_CERTS / "bbl_device_intermediates.pem").read_text()
    assert len(tls.validate_user_bundle(pem, anchors)) == 3


@pytest.mark.parametrize(
    "function",
    [
        tls.is_pinned,
        tls.pinned_anchors,
        tls.validate_user_bundle,
        tls.build_printer_context,
        tls.printer_context,
    ],
)
def test_pins_are_an_argument_defaulting_to_the_real_pins(
    function: Callable[..., object],
) -> None:
    """Callers choose the pins; the module constant is only the default."""
    parameter = inspect.signature(function).parameters["pins"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is tls.BBL_CA_SHA256
