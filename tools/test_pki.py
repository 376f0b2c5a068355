"""Throwaway certificate authorities shaped like Bambu Lab's, for tests and the farm.

Why the shape matters: the real 2022 "BBL CA" is a self-signed CA with
basicConstraints but NO keyUsage extension (Python 3.13's strict X.509 mode
rejects it), and printer certificates carry the serial in the subject CN with
NO subjectAltName (hostname checks must fall back to the CN). Certificates made
here reproduce both, so the test suite and the virtual farm exercise the same
code paths as real printers. One module serves both so the two never drift.

Typical use::

    pki = PrinterPKI.create(tmp_path, serial="01P00A000000001")
    server_ctx = pki.server_context()          # leaf + CA chain, like printers
    client_ctx = tls.build_printer_context([pki.root.der])

Lower level: ``TestPKI(tmp_path).root()`` / ``.intermediate(issuer)`` /
``.server(issuer, serial, chain=[...])`` return :class:`IssuedCert` objects
with PEM files on disk (keys readable by the owner only), DER bytes and
SHA-256 fingerprints; ``expired``/``not_yet_valid`` and a leaf for another
serial make the negative cases. :class:`FarmPKI` is the virtual farm's pair of
CAs (an ordinary cloud CA and a Bambu-shaped printer CA).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

type PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_ORG = "BBL Technologies Co., Ltd (test)"


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r}")


def _validity(
    *, expired: bool, not_yet_valid: bool, days: int
) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    if expired:
        return now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    if not_yet_valid:
        return now + dt.timedelta(days=1), now + dt.timedelta(days=days)
    return now - dt.timedelta(days=1), now + dt.timedelta(days=days)


def sha256_hex(der: bytes) -> str:
    """Lowercase hex SHA-256 of DER bytes (the pin format of ``tls.py``)."""
    return hashlib.sha256(der).hexdigest()


def server_context(leaf: IssuedCert) -> ssl.SSLContext:
    """TLS server context presenting ``leaf``'s chain file (leaf + chain)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(leaf.chain_path, leaf.key_path)
    return ctx


@dataclass(frozen=True)
class IssuedCert:
    """A certificate, its key, and the PEM files written for it."""

    name: str
    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path
    key_path: Path
    chain_path: Path
    """``cert_path`` followed by the chain it was issued with (leaf first)."""

    @property
    def der(self) -> bytes:
        """DER encoding of the certificate."""
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        """PEM encoding of the certificate."""
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def sha256(self) -> str:
        """SHA-256 fingerprint of the DER certificate (lowercase hex)."""
        return sha256_hex(self.der)

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context presenting this certificate and its chain."""
        return server_context(self)


@dataclass
class TestPKI:
    """Issue CA, intermediate and server certificates into ``directory``."""

    __test__ = False  # not a pytest test class despite the name

    directory: Path
    key_type: str = "ec"
    _count: int = field(default=0, init=False)

    def _write(
        self,
        name: str,
        cert: x509.Certificate,
        key: PrivateKey,
        chain: Sequence[IssuedCert] = (),
    ) -> IssuedCert:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._count += 1
        stem = self.directory / f"{self._count:02d}-{name}"
        cert_path = stem.with_suffix(".crt.pem")
        key_path = stem.with_suffix(".key.pem")
        chain_path = stem.with_suffix(".chain.pem")
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        chain_path.write_bytes(
            cert_pem
            + b"".join(c.cert.public_bytes(serialization.Encoding.PEM) for c in chain)
        )
        return IssuedCert(name, cert, key, cert_path, key_path, chain_path)

    def root(
        self,
        common_name: str = "Test BBL CA",
        *,
        key_usage: bool = False,
        expired: bool = False,
        days: int = 3650,
        key_type: str | None = None,
    ) -> IssuedCert:
        """Self-signed CA. Like the 2022 BBL CA, no keyUsage unless asked."""
        key = _new_key(key_type or self.key_type)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        start, end = _validity(expired=expired, not_yet_valid=False, days=days)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
        )
        if key_usage:
            builder = builder.add_extension(_CA_KEY_USAGE, critical=True)
        cert = builder.sign(key, hashes.SHA256())
        return self._write(common_name.replace(" ", "_"), cert, key)

    def intermediate(
        self,
        issuer: IssuedCert,
        common_name: str = "Test BBL Device CA N7-V2",
        *,
        expired: bool = False,
        days: int = 3650,
    ) -> IssuedCert:
        """CA signed by ``issuer`` (like "BBL Device CA N7-V2", with keyUsage)."""
        key = _new_key(self.key_type)
        start, end = _validity(expired=expired, not_yet_valid=False, days=days)
        cert = (
            _issued_builder(issuer, common_name, key, start, end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                critical=False,
            )
            .sign(issuer.key, hashes.SHA256())
        )
        return self._write(common_name.replace(" ", "_"), cert, key, [issuer])

    def server(
        self,
        issuer: IssuedCert,
        serial: str,
        *,
        chain: Sequence[IssuedCert] | None = None,
        expired: bool = False,
        not_yet_valid: bool = False,
        san: Sequence[str] = (),
        server_auth: bool = False,
        days: int = 825,
    ) -> IssuedCert:
        """Printer certificate: subject ``CN=<serial>``, no SAN by default.

        ``chain`` is what the server presents after the leaf; by default the
        issuer alone (printers send their CA, which is how the integration
        learns it). Pass ``[]`` for a leaf-only server. ``san`` adds IP or DNS
        names and ``server_auth`` the key usages of a public web server
        certificate (for the cloud's endpoints, not for printers).
        """
        key = _new_key(self.key_type)
        start, end = _validity(expired=expired, not_yet_valid=not_yet_valid, days=days)
        builder = _issued_builder(issuer, serial, key, start, end).add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=False
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in san]),
                critical=False,
            )
        if server_auth:
            builder = (
                builder.add_extension(_LEAF_KEY_USAGE, critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                    critical=False,
                )
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                    critical=False,
                )
            )
        cert = builder.sign(issuer.key, hashes.SHA256())
        presented = [issuer] if chain is None else list(chain)
        return self._write(f"server-{serial}", cert, key, presented)


def _general_name(name: str) -> x509.GeneralName:
    """An IP address SAN for an address, a DNS SAN otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=True,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _issued_builder(
    issuer: IssuedCert,
    common_name: str,
    key: PrivateKey,
    start: dt.datetime,
    end: dt.datetime,
) -> x509.CertificateBuilder:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )


@dataclass(frozen=True)
class PrinterPKI:
    """A ready-made printer setup: root [-> intermediate] -> leaf (CN=serial)."""

    serial: str
    root: IssuedCert
    intermediate: IssuedCert | None
    leaf: IssuedCert

    @classmethod
    def create(
        cls,
        directory: Path,
        serial: str = "01P00A000000001",
        *,
        with_intermediate: bool = False,
        key_type: str = "ec",
    ) -> PrinterPKI:
        """Build the PKI; the leaf presents every CA above it (root included)."""
        pki = TestPKI(directory, key_type=key_type)
        root = pki.root()
        inter = pki.intermediate(root) if with_intermediate else None
        if inter is None:
            leaf = pki.server(root, serial)
        else:
            leaf = pki.server(inter, serial, chain=[inter, root])
        return cls(serial, root, inter, leaf)

    @property
    def cas(self) -> list[IssuedCert]:
        """Every CA of this PKI, root first."""
        return (
            [self.root] if self.intermediate is None else [self.root, self.intermediate]
        )

    @property
    def pins(self) -> frozenset[str]:
        """Fingerprints of every CA: the printer CA pins to configure."""
        return frozenset(c.sha256 for c in self.cas)

    @property
    def ca_pem(self) -> str:
        """PEM of every CA of this PKI (root first)."""
        return "".join(c.pem for c in self.cas)

    def server_context(self) -> ssl.SSLContext:
        """TLS server context for the printer (leaf + CA chain)."""
        return server_context(self.leaf)


class FarmPKI:
    """The virtual farm's two CAs and the certificates they issue.

    * the **cloud CA**, an ordinary CA (keyUsage, key identifiers) that
      Python's strict X.509 mode accepts; it issues the certificate of the fake
      cloud's HTTPS server and of the cloud MQTT broker (``IP:127.0.0.1`` and
      ``DNS:localhost``);
    * the **printer CA**, shaped like Bambu Lab's 2022 "BBL CA" (no keyUsage).
      It issues one certificate per printer with ``CN=<serial>`` and no SAN,
      for the LAN MQTT brokers and the port-6000 camera servers, which present
      ``leaf + CA`` like real printers.
    """

    def __init__(self, directory: Path) -> None:
        """Create both CAs and the cloud server certificate (blocking)."""
        self.directory = directory
        self._pki = TestPKI(directory)
        self.cloud_ca = self._pki.root("Virtual Farm Cloud CA", key_usage=True)
        self.printer_ca = self._pki.root("Virtual Farm BBL CA")
        self.cloud_server = self._pki.server(
            self.cloud_ca, "localhost", san=["127.0.0.1", "localhost"], server_auth=True
        )

    def printer_server(self, serial: str) -> IssuedCert:
        """A printer certificate: ``CN=<serial>``, no SAN, like real printers."""
        return self._pki.server(self.printer_ca, serial)

    def cloud_client_context(self) -> ssl.SSLContext:
        """A verifying client context trusting the cloud CA (strict X.509 on)."""
        return ssl.create_default_context(cadata=self.cloud_ca.pem)

    def printer_client_context(self) -> ssl.SSLContext:
        """A verifying client context for printers (hostname = serial).

        Like the integration: only the printer CA is trusted, the CN is
        checked, and strict mode is cleared because the CA has no keyUsage.
        """
        ctx = ssl.create_default_context(cadata=self.printer_ca.pem)
        ctx.hostname_checks_common_name = True
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
        return ctx
