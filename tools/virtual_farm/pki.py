"""Throwaway certificate authorities for the virtual farm.

Two CAs are made at start-up, in a temporary directory, never in the source
tree:

* the **cloud CA**, an ordinary CA (keyUsage, key identifiers) that Python's
  strict X.509 mode accepts; it issues the certificate of the fake cloud's
  HTTPS server and of the cloud MQTT broker, with subjectAltNames
  ``IP:127.0.0.1`` and ``DNS:localhost``;
* the **printer CA**, shaped like Bambu Lab's 2022 "BBL CA": self-signed, with
  basicConstraints but NO keyUsage. It issues one certificate per printer with
  ``CN=<serial>`` and no subjectAltName, used by the LAN MQTT brokers and the
  port-6000 camera servers. Servers present ``leaf + CA`` like real printers,
  which is how the integration learns the (pinned) anchor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CA_USAGE = x509.KeyUsage(
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
_LEAF_USAGE = x509.KeyUsage(
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


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate with its key, and the PEM files written for it."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path
    chain_path: Path
    """The certificate followed by its issuer (what a server presents)."""

    @property
    def pem(self) -> str:
        """PEM of the certificate alone."""
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self) -> bytes:
        """DER of the certificate alone."""
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def sha256(self) -> str:
        """Lowercase hex SHA-256 of the DER certificate (``BBL_CA_SHA256`` form)."""
        return hashlib.sha256(self.der).hexdigest()

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context presenting this certificate and its issuer."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.chain_path, self.key_path)
        return ctx


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class FarmPKI:
    """The farm's two CAs and the certificates they issue, under ``directory``."""

    def __init__(self, directory: Path) -> None:
        """Create both CAs and the cloud server certificate."""
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self.cloud_ca = self._root("Virtual Farm Cloud CA", key_usage=True)
        self.printer_ca = self._root("Virtual Farm BBL CA", key_usage=False)
        self.cloud_server = self._cloud_leaf()

    # -- issuing -----------------------------------------------------------

    def _write(
        self,
        stem: str,
        cert: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        issuer: Issued | None,
    ) -> Issued:
        self._count += 1
        base = self.directory / f"{self._count:02d}-{stem}"
        cert_path = base.with_suffix(".crt.pem")
        key_path = base.with_suffix(".key.pem")
        chain_path = base.with_suffix(".chain.pem")
        pem = cert.public_bytes(serialization.Encoding.PEM)
        cert_path.write_bytes(pem)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        chain = pem if issuer is None else pem + issuer.pem.encode()
        chain_path.write_bytes(chain)
        return Issued(cert, key, cert_path, key_path, chain_path)

    @staticmethod
    def _validity() -> tuple[dt.datetime, dt.datetime]:
        now = dt.datetime.now(dt.UTC)
        return now - dt.timedelta(hours=1), now + dt.timedelta(days=30)

    def _root(self, common_name: str, *, key_usage: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common_name, "Virtual Farm (throwaway)")
        start, end = self._validity()
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
            builder = builder.add_extension(_CA_USAGE, critical=True)
        cert = builder.sign(key, hashes.SHA256())
        return self._write(common_name.replace(" ", "_"), cert, key, None)

    def _leaf_builder(
        self, issuer: Issued, common_name: str, key: ec.EllipticCurvePrivateKey
    ) -> x509.CertificateBuilder:
        start, end = self._validity()
        return (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, "Virtual Farm (throwaway)"))
            .issuer_name(issuer.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    issuer.key.public_key()
                ),
                critical=False,
            )
        )

    def _cloud_leaf(self) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            self._leaf_builder(self.cloud_ca, "localhost", key)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.DNSName("localhost"),
                    ]
                ),
                critical=False,
            )
            .add_extension(_LEAF_USAGE, critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                critical=False,
            )
            .sign(self.cloud_ca.key, hashes.SHA256())
        )
        return self._write("cloud-server", cert, key, self.cloud_ca)

    def printer_server(self, serial: str) -> Issued:
        """A printer certificate: ``CN=<serial>``, no SAN, like real printers."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._leaf_builder(self.printer_ca, serial, key).sign(
            self.printer_ca.key, hashes.SHA256()
        )
        return self._write(f"printer-{serial}", cert, key, self.printer_ca)

    # -- client side helpers ---------------------------------------------

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

    def write_ca_bundle(self, path: Path, base_bundle: Path | None = None) -> Path:
        """``base_bundle`` (e.g. certifi's) followed by the cloud CA, at ``path``."""
        base = base_bundle.read_text() if base_bundle is not None else ""
        if base and not base.endswith("\n"):
            base += "\n"
        path.write_text(base + self.cloud_ca.pem)
        return path
